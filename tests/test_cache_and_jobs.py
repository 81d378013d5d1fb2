"""The result cache and the process pool: same findings as a plain run, a warm run parses
nothing, and a change to a factory in one file invalidates the results of the files that
import it."""

import os
import shutil

import pytest

import sessionlint.lint as lint
import sessionlint.runner as engine
import sessionlint.sources as sources
from sessionlint.config import Settings

DATABASE = '''
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
{binding} = sessionmaker(bind=engine)
'''

ROUTES = '''
from app.database import Maker


def leak():
    db = Maker()
    db.execute("select 1")
'''


def write_project(root, binding="Maker"):
    app = root / "app"
    app.mkdir(exist_ok=True)
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(DATABASE.format(binding=binding))
    (app / "routes.py").write_text(ROUTES)
    return app


def findings(run):
    return [(os.path.basename(d.path), d.start.line, d.code) for d in run.diagnostics]


def count_parses(monkeypatch):
    calls = []
    real = lint.parse_and_lint

    def counting(data, path, project, rules, refine=()):
        calls.append(path)
        return real(data, path, project, rules, refine)

    monkeypatch.setattr(lint, "parse_and_lint", counting)
    return calls


def reads_of(monkeypatch):
    reads = []
    real = sources.read_source

    def counting(path, limit=0):
        reads.append(os.path.basename(path))
        return real(path, limit)

    monkeypatch.setattr(engine, "read_source", counting)
    return reads


def count_index_builds(monkeypatch):
    """The project indexes a run builds (IndexBuilder.finish calls)."""
    from sessionlint.project import builder as builder_module

    built = []
    real_finish = builder_module.IndexBuilder.finish

    def finish(self, *arguments, **keywords):
        built.append(1)
        return real_finish(self, *arguments, **keywords)

    monkeypatch.setattr(builder_module.IndexBuilder, "finish", finish)
    return built


def test_warm_run_parses_nothing(tmp_path, monkeypatch):
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    cold = engine.run([str(app)], settings)
    assert findings(cold) == [("routes.py", 6, "SL001")]
    parses = count_parses(monkeypatch)
    warm = engine.run([str(app)], settings)
    assert findings(warm) == findings(cold)
    assert parses == []
    assert open(tmp_path / "cache" / ".gitignore").read().endswith("*\n")


def test_changed_file_is_linted_again(tmp_path, monkeypatch):
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    engine.run([str(app)], settings)
    (app / "routes.py").write_text(ROUTES + "\n\ndef fine():\n    with Maker() as db:\n        db.execute('x')\n")
    parses = count_parses(monkeypatch)
    warm = engine.run([str(app)], settings)
    assert [os.path.basename(p) for p in parses] == ["routes.py"]
    assert findings(warm) == [("routes.py", 6, "SL001")]


def test_factory_change_in_another_file_invalidates_dependents(tmp_path):
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    # `Maker` is no longer a sessionmaker: routes.py, unchanged, must not keep its finding.
    (app / "database.py").write_text(DATABASE.format(binding="OtherName") + "\nMaker = object\n")
    assert findings(engine.run([str(app)], settings)) == []
    # And back.
    (app / "database.py").write_text(DATABASE.format(binding="Maker"))
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]


def test_no_cache_writes_nothing(tmp_path):
    app = write_project(tmp_path)
    engine.run([str(app)], Settings(cache=False, cache_dir=str(tmp_path / "cache"), jobs=1))
    assert not (tmp_path / "cache").exists()


def test_process_pool_gives_the_same_findings(tmp_path, monkeypatch):
    app = write_project(tmp_path)
    for i in range(30):
        body = ROUTES if i % 2 else ROUTES.replace("db.execute", "with db:\n        db.execute")
        (app / f"routes_{i}.py").write_text(body)
    monkeypatch.setattr(engine, "POOL_THRESHOLD_BYTES", 0)  # these files are small
    single = engine.run([str(app)], Settings(cache=False, jobs=1))
    pooled = engine.run([str(app)], Settings(cache=False, jobs=2))
    assert findings(pooled) == findings(single)
    assert len(findings(single)) == 1 + 30 // 2


def test_many_files_start_the_pool_before_the_project_pass(tmp_path, monkeypatch):
    """A cold run over many files starts its workers first (they import libcst while this
    process does the project pass), then lints on them: the same findings as one process."""
    import sessionlint.workers as workers

    app = write_project(tmp_path)
    for i in range(30):
        body = ROUTES if i % 2 else ROUTES.replace("db.execute", "with db:\n        db.execute")
        (app / f"routes_{i}.py").write_text(body)
    monkeypatch.setattr(engine, "EARLY_POOL_FILES", 10)
    used = []
    real_submit = workers.ProcessPool.submit
    real_warm_up = workers.ProcessPool.warm_up

    def spy(self, function, item):
        used.append(function.__name__)
        return real_submit(self, function, item)

    monkeypatch.setattr(workers.ProcessPool, "submit", spy)
    monkeypatch.setattr(workers.ProcessPool, "warm_up", lambda self: used.append("warm_up") or real_warm_up(self))
    pooled = engine.run([str(app)], Settings(cache=False, jobs=2))
    assert used[0] == "warm_up" and set(used[1:]) == {"lint_batch"}
    used.clear()
    single = engine.run([str(app)], Settings(cache=False, jobs=1))
    assert used == []  # -j 1: no pool
    assert findings(pooled) == findings(single)
    assert len(findings(single)) == 1 + 30 // 2


def test_clean_removes_the_cache(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sessionlint.cli import main

    app = write_project(tmp_path)
    monkeypatch.setenv("SESSIONLINT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    # what versions before 0.2 kept in the user's cache directory
    code = tmp_path / "user" / "sessionlint" / "dataclass-code-0123456789abcdef.marshal"
    code.parent.mkdir(parents=True)
    code.write_bytes(b"compiled code of an earlier libcst import")
    (code.parent / "unrelated.txt").write_text("not ours to remove")
    runner = CliRunner()
    assert runner.invoke(main, [str(app), "-q", "-j", "1"]).exit_code == 1
    assert sorted(os.listdir(tmp_path / "cache")) == [".gitignore", "CACHEDIR.TAG", "project.json", "results.json"]
    cleaned = runner.invoke(main, ["--clean"])
    assert cleaned.exit_code == 0
    assert not (tmp_path / "cache").exists() and not code.exists()
    assert (code.parent / "unrelated.txt").exists()
    assert f"Removed {code}" in cleaned.output
    assert f"Removed {tmp_path / 'cache'}" in cleaned.output


def test_change_to_the_tools_own_code_invalidates(tmp_path, monkeypatch):
    """An editable install whose analysis changed must not read results of the old code
    under the same version number."""
    import sessionlint.cache as cache

    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    engine.run([str(app)], settings)
    monkeypatch.setattr(cache, "code_key", lambda: "changed")
    parses = count_parses(monkeypatch)
    again = engine.run([str(app)], settings)
    assert findings(again) == [("routes.py", 6, "SL001")]
    assert sorted(os.path.basename(p) for p in parses) == ["database.py", "routes.py"]  # warm: []


def test_cache_files_are_written_only_when_changed(tmp_path):
    """Results and the project pass's tables live in two files (the second is saved while a
    helper parses); a run that learns nothing new rewrites neither."""
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    engine.run([str(app)], settings)
    stored = {name: os.stat(tmp_path / "cache" / name).st_mtime_ns for name in ("results.json", "project.json")}
    os.utime(tmp_path / "cache" / "results.json", ns=(1, 1))
    os.utime(tmp_path / "cache" / "project.json", ns=(1, 1))
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    assert [os.stat(tmp_path / "cache" / name).st_mtime_ns for name in stored] == [1, 1]
    (app / "routes.py").write_text(ROUTES + "\n# edited\n")
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    assert all(os.stat(tmp_path / "cache" / name).st_mtime_ns > 1 for name in stored)


def test_a_warm_run_reads_each_file_of_the_project_once(tmp_path, monkeypatch):
    """The project pass's rescans (which files to scan again for a factory name learnt on the
    way) are answered from the cache by content hash: a warm run reads no file twice. A file
    changed since is asked again: here helpers.py stops calling the re-exported factory."""
    import shutil

    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "projects", "factory_reexport")
    shutil.copytree(fixture, tmp_path / "project")
    root = tmp_path / "project"
    (root / "pyproject.toml").write_text("")
    monkeypatch.chdir(root)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    expected = [("routes.py", 10, "SL001"), ("routes.py", 16, "SL001")]
    assert findings(engine.run(["app/routes.py"], settings)) == expected
    reads = reads_of(monkeypatch)
    (root / "app" / "routes.py").write_text((root / "app" / "routes.py").read_text() + "\n# edited\n")
    assert findings(engine.run(["app/routes.py"], settings)) == expected
    # The project's other files once each (the named, edited file is read for its lint too).
    assert sorted(r for r in reads if r != "routes.py") == ["__init__.py", "db.py", "deps.py", "helpers.py"]
    helpers = root / "app" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("return db.Maker()", "return None"))
    reads.clear()
    assert findings(engine.run(["app/routes.py"], settings)) == expected[:1]
    # Read once: its bytes are held for the rescan's question (its comment still says
    # `db.Maker()`: a call as an attribute) and its scan.
    assert reads.count("helpers.py") == 1, reads


PROJECTS = os.path.join(os.path.dirname(__file__), "fixtures", "projects")


def every_finding(run):
    return sorted((os.path.relpath(d.path), d.start.line, d.start.column, d.code, d.message) for d in run.diagnostics)


@pytest.mark.parametrize("project", sorted(os.listdir(PROJECTS)))
def test_a_warm_run_after_an_edit_elsewhere_equals_a_cold_run(tmp_path, monkeypatch, project):
    """The cached results of unchanged files hold only while what the project pass concluded
    across files holds: each file of each project fixture in turn is emptied, linted warm,
    restored and linted warm again, and both warm runs report what a cold run reports (a
    handler in one module makes a builder in another per request)."""
    tree = tmp_path / project
    shutil.copytree(os.path.join(PROJECTS, project), tree)
    monkeypatch.chdir(tmp_path)
    warm = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    cold = Settings(cache=False, jobs=1)
    engine.run([project], warm)
    for path in sorted(p for p in tree.rglob("*.py")):
        original = path.read_bytes()
        path.write_bytes(b"")
        assert every_finding(engine.run([project], warm)) == every_finding(engine.run([project], cold)), path
        path.write_bytes(original)
        assert every_finding(engine.run([project], warm)) == every_finding(engine.run([project], cold)), path


BUILDER = """
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


def reporting_session(url):
    engine = create_engine(url)
    return sessionmaker(bind=engine)()
"""

HANDLER = """
from flask import Flask

from app.database import reporting_session

app = Flask(__name__)

{decorator}
def report():
    db = reporting_session("sqlite://")
    try:
        return db.execute("select 1").scalar()
    finally:
        db.close()
"""


def test_a_function_made_a_handler_elsewhere_relints_the_builder(tmp_path, monkeypatch):
    """database.py is unchanged, and so are the imports and factories of the project; only
    which of its functions run per request changes (a decorator added in another module),
    so its cached result must not be reused."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(BUILDER)
    monkeypatch.chdir(tmp_path)
    warm = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    per_request = [("database.py", 7, "SL004"), ("database.py", 8, "SL005")]
    for decorator, expected in (("", []), ('@app.route("/report")', per_request), ("", [])):
        (app / "handlers.py").write_text(HANDLER.format(decorator=decorator))
        assert findings(engine.run(["app"], warm)) == expected


def test_a_warm_run_over_unchanged_files_reuses_the_per_request_search(tmp_path, monkeypatch):
    """The per-request search's answer is kept under the hash of every file's bytes: a warm
    run over the same files does not search again; an edit anywhere searches again."""
    from sessionlint.project import calls as calls_module

    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(BUILDER)
    (app / "handlers.py").write_text(HANDLER.format(decorator='@app.route("/report")'))
    monkeypatch.chdir(tmp_path)
    warm = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    searches = []
    real = calls_module.find_per_request

    def counting(*arguments, **keywords):
        searches.append(1)
        return real(*arguments, **keywords)

    monkeypatch.setattr(calls_module, "find_per_request", counting)
    expected = [("database.py", 7, "SL004"), ("database.py", 8, "SL005")]
    assert findings(engine.run(["app"], warm)) == expected and len(searches) == 1
    assert findings(engine.run(["app"], warm)) == expected and len(searches) == 1
    (app / "other.py").write_text("X = 1\n")
    assert findings(engine.run(["app"], warm)) == expected and len(searches) == 2


def test_a_warm_run_reads_no_file_whose_status_is_unchanged(tmp_path, monkeypatch):
    """A file's recorded status (times, size, inode) stands for its bytes: a warm run reads
    none of the unchanged files, and reads again a file rewritten to the same size with its
    modification time put back (its change time moved)."""
    import sessionlint.cache as cache_module

    monkeypatch.setattr(cache_module, "RACY_NS", 0)
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    reads = reads_of(monkeypatch)
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    assert reads == []
    routes = app / "routes.py"
    before = os.stat(routes)
    text = ROUTES.replace("    db.execute", "    db.close()\n#").replace("select 1", "")
    text = text + " " * (before.st_size - len(text.encode()))
    routes.write_text(text)
    os.utime(routes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(routes).st_size == before.st_size and os.stat(routes).st_mtime_ns == before.st_mtime_ns
    assert findings(engine.run([str(app)], settings)) == []
    assert "routes.py" in reads


def test_a_file_changed_just_before_the_run_is_hashed_again(tmp_path, monkeypatch):
    """A status is not recorded for a file changed within RACY_NS of the run: a second write
    in the same clock tick could keep its status and change its bytes."""
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    engine.run([str(app)], settings)
    reads = reads_of(monkeypatch)
    engine.run([str(app)], settings)
    assert sorted(reads) == ["__init__.py", "database.py", "routes.py"]


def test_a_warm_run_over_unchanged_files_builds_no_index(tmp_path, monkeypatch):
    """The cache keeps what the index of each state of a project's files said that results
    depend on: a run over the same files (old enough for their status to be trusted) builds
    no index and reads no project.json; a run after an edit builds it again."""
    import sessionlint.cache as cache_module

    monkeypatch.setattr(cache_module, "RACY_NS", 0)
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    built, loaded = count_index_builds(monkeypatch), []
    real_load = cache_module.Cache._load

    def load(self, name):
        loaded.append(name)
        return real_load(self, name)

    monkeypatch.setattr(cache_module.Cache, "_load", load)
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    assert built == [] and loaded == ["results.json"]
    (app / "database.py").write_text(DATABASE.format(binding="Maker") + "\n# edited\n")
    assert findings(engine.run([str(app)], settings)) == [("routes.py", 6, "SL001")]
    assert built == [1] and loaded == ["results.json", "results.json", "project.json"]


def test_a_changed_dependency_declaration_is_a_new_project_state(tmp_path, monkeypatch):
    """The SQLAlchemy version a project declares (its fixes and help are written for it) is
    part of the project's state: changing it in pyproject.toml gives the results of a cold
    run, though no Python file changed."""
    write_project(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "app"\ndependencies = ["sqlalchemy>=1.3,<1.4"]\n')
    monkeypatch.chdir(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)

    def helps(run):
        return [(os.path.basename(d.path), d.start.line, d.help) for d in run.diagnostics]

    old = helps(engine.run(["app"], settings))
    pyproject.write_text('[project]\nname = "app"\ndependencies = ["sqlalchemy>=2.0"]\n')
    warm = helps(engine.run(["app"], settings))
    cold = helps(engine.run(["app"], Settings(cache=False, jobs=1)))
    assert warm == cold and warm != old


def test_a_warm_run_over_many_projects_builds_no_index(tmp_path, monkeypatch):
    """Each project of a run keeps its state: with more projects than the cache kept
    states before (8), a warm run over all of them still builds no index."""
    import sessionlint.cache as cache_module

    monkeypatch.setattr(cache_module, "RACY_NS", 0)
    roots = []
    for number in range(12):
        root = tmp_path / f"project{number}"
        root.mkdir()
        (root / "pyproject.toml").write_text("")
        write_project(root)
        roots.append(str(root))
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    expected = [("routes.py", 6, "SL001")] * 12
    assert findings(engine.run(roots, settings)) == expected
    built = count_index_builds(monkeypatch)
    assert findings(engine.run(roots, settings)) == expected
    assert built == []
