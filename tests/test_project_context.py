"""Linting some files of a project (a pre-commit hook passes the changed ones) gives them the
findings a run over the whole project gives: the project pass reads the project's other
files too."""

import os
import shutil

import pytest

from sessionlint.config import Settings
from sessionlint.discovery import project_context, project_root
from sessionlint.runner import run

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "projects", "factory_import")


def findings(paths):
    result = run(paths, Settings(cache=False))
    return sorted((os.path.basename(f.path), d.code, d.start.line) for f in result.files for d in f.diagnostics)


def make_project(root):
    shutil.copytree(FIXTURE, root)
    (root / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    return root


WHOLE = [("routes.py", "SL001", 15), ("routes.py", "SL001", 21), ("routes.py", "SL001", 27)]


def test_one_file_gets_the_findings_of_the_whole_project(tmp_path, monkeypatch):
    project = make_project(tmp_path / "shop")
    monkeypatch.chdir(project)
    assert findings(["."]) == WHOLE
    # line 21 needs app/database.py, which is not passed: `get_session()` returns a session
    assert findings(["app/routes.py"]) == WHOLE
    assert findings([str(project / "app" / "routes.py")]) == WHOLE
    monkeypatch.chdir(project / "app")
    assert findings(["routes.py"]) == WHOLE


def test_the_context_is_the_rest_of_the_project(tmp_path, monkeypatch):
    project = make_project(tmp_path / "shop")
    monkeypatch.chdir(project)
    settings = Settings()
    root = project_root("app/routes.py", settings)
    assert root == str(project)
    context = project_context(root, ["app/routes.py"], ["app/routes.py"], settings)
    assert sorted(context) == ["app/__init__.py", "app/database.py", "app/jobs.py", "app/models.py", "app/registry.py"]
    assert project_context(root, ["."], ["app/routes.py"], settings) == []  # the whole project is linted
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    # a path outside the project does not change what this project's pass reads
    found = project_context(root, ["app/routes.py", str(outside)], ["app/routes.py", str(outside)], settings, relative=True)
    assert sorted(found) == sorted(context)


def test_a_file_outside_any_project_is_linted_alone(tmp_path):
    lone = tmp_path / "lone" / "script.py"
    lone.parent.mkdir()
    lone.write_text("x = 1\n")
    above = [str(p) for p in lone.parents if any((p / m).exists() for m in ("pyproject.toml", "setup.py", "setup.cfg", ".git"))]
    if above:
        pytest.skip(f"a project marker above the temporary directory: {above[0]}")
    assert project_root(str(lone), Settings()) is None


def test_packages_sharing_a_name_resolve_to_the_one_beside_the_importer(tmp_path, monkeypatch):
    # services/a/app and services/b/app: `from app.database import get_session` in
    # services/a is services/a/app/database.py, in a run over the repository and in a run
    # over one changed file alike.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").mkdir()
    shutil.copytree(FIXTURE, repo / "services" / "a")
    shutil.copytree(os.path.join(FIXTURE, "app"), repo / "services" / "b" / "app")
    monkeypatch.chdir(repo)
    both = findings(["."])
    assert both == sorted(WHOLE * 2)
    assert findings(["services/a/app/routes.py"]) == WHOLE


def test_text_piped_by_an_editor_gets_the_project_too(tmp_path, monkeypatch):
    project = make_project(tmp_path / "shop")
    monkeypatch.chdir(project)
    text = (project / "app" / "routes.py").read_bytes()
    result = run(["-"], Settings(cache=False), stdin=("app/routes.py", text))
    assert sorted((d.code, d.start.line) for f in result.files for d in f.diagnostics) == [(c, line) for _, c, line in WHOLE]


def test_a_learnt_name_imported_from_outside_the_project_is_not_rescanned():
    """Airflow's settings.py binds its own `Session`; 57 of its files import `Session` from
    sqlalchemy.orm for their annotations. For a name it learns, the project pass rescans only
    the files that import it from a module of the project (absolute or relative) or call it
    as a module attribute: the others cannot re-export the project's factory."""
    from sessionlint.knowledge import FactoryKind
    from sessionlint.project.builder import build_index

    sources = {
        "app/__init__.py": b"",
        "app/settings.py": b"from sqlalchemy.orm import scoped_session, sessionmaker\n\nSession = scoped_session(sessionmaker())\n",
        "app/annotated.py": b"from sqlalchemy.orm import Session\n\n\ndef count(session: Session) -> int:\n    return session.query(1).count()\n",
        "app/reexport.py": b"from app.settings import Session\n",
        "app/relative.py": b"from .settings import Session\n",
    }
    index = build_index(sources)
    assert sorted(index.modules) == ["app/reexport.py", "app/relative.py", "app/settings.py"]
    for path in ("app/reexport.py", "app/relative.py"):
        assert index.lookup(path, "Session").kind is FactoryKind.REGISTRY  # type: ignore[union-attr]


def test_committing_functions_are_worked_out_only_for_imported_modules(monkeypatch):
    """A module whose text commits on a session parameter is parsed for its committing
    functions only if another file imports one of its module-level functions by name (the
    only way the analysis and the prefilter look them up); once worked out, they are kept
    with its text facts, so the next pass parses nothing."""
    from sessionlint.project import builder as builder_module
    from sessionlint.project.builder import IndexBuilder, build_index
    from sessionlint.project.live import MemoryCache

    sources = {
        "app/__init__.py": b"",
        "app/crud.py": b"def save(db, row):\n    db.add(row)\n    db.commit()\n\n\ndef peek(db):\n    return db.info\n",
        "app/other.py": b"def store(db, row):\n    db.add(row)\n    db.commit()\n",
        "app/jobs.py": b"from app.crud import save\n\n\ndef job(db, row):\n    try:\n        save(db, row)\n    except Exception:\n        pass\n",
    }
    parsed = []
    real = builder_module.parse_quietly

    def counting(path, data):
        parsed.append(path)
        return real(path, data)

    monkeypatch.setattr(builder_module, "parse_quietly", counting)
    cache = MemoryCache()

    def build():
        builder = IndexBuilder(cache=cache)
        for path, data in sources.items():
            builder.add(path, data, cache.digest(data))
        return builder.finish(sources.get)

    index = build()
    assert parsed == ["app/crud.py"]
    assert sorted(index.committers) == ["app/crud.py"]
    assert sorted(index.committers["app/crud.py"]) == ["save"]
    assert index == build_index(sources)
    parsed.clear()
    assert build() == index
    assert parsed == []
