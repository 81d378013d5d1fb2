"""A run on the process pool (`workers.ProcessPool`): its workers do the project pass's facts,
its rescans, the prefilter and the lint, and this process merges. Everything it reports and
caches must be what the run in one process reports and caches."""

import os

import pytest
from helpers import FIXTURES

import sessionlint.prefilter as prefilter
import sessionlint.runner as engine
import sessionlint.workers as workers
from sessionlint.cache import Cache
from sessionlint.config import Settings
from sessionlint.diagnostics import ErrorKind

PROJECTS = os.path.join(FIXTURES, "projects")


def findings(run):
    return sorted((d.path, d.start.line, d.start.column, d.code, d.message) for d in run.diagnostics)


def errors(run):
    return sorted((f.path, f.error.kind, f.error.message) for f in run.files if f.error is not None)


@pytest.fixture
def pool_calls(monkeypatch):
    """Every run takes the pool from one file on; the functions run on the pool."""
    monkeypatch.setattr(engine, "EARLY_POOL_FILES", 1)
    calls = []
    real = workers.ProcessPool.submit

    def spy(self, function, item):
        calls.append(function.__name__)
        return real(self, function, item)

    monkeypatch.setattr(workers.ProcessPool, "submit", spy)
    return calls


@pytest.mark.parametrize("target", [FIXTURES, os.path.join(PROJECTS, "factory_reexport")], ids=["all-fixtures", "reexport"])
def test_pool_run_reports_what_one_process_reports(target, pool_calls):
    one = engine.run([target], Settings(select=("ALL",), cache=False, jobs=1))
    assert pool_calls == []  # -j 1: no pool
    pooled = engine.run([target], Settings(select=("ALL",), cache=False, jobs=2))
    assert set(pool_calls) == {"lint_batch"}
    assert findings(pooled) == findings(one)
    assert errors(pooled) == errors(one)
    assert pooled.suppressed == one.suppressed
    assert len(findings(one)) >= (100 if target == FIXTURES else 2)


def test_pool_run_caches_what_one_process_caches(tmp_path, pool_calls):
    target = os.path.join(PROJECTS, "factory_reexport")
    one_dir, pool_dir = tmp_path / "one", tmp_path / "pool"
    one = engine.run([target], Settings(select=("ALL",), cache_dir=str(one_dir), jobs=1))
    pooled = engine.run([target], Settings(select=("ALL",), cache_dir=str(pool_dir), jobs=2))
    assert pool_calls  # the cold run with a cache took the pool path
    assert findings(pooled) == findings(one)

    def tables(directory):
        cache = Cache.open(str(directory))
        cache.load_project_tables()
        return {path: entry[1:] for path, entry in cache.files.items()}, cache.scans, cache.texts, cache.checks

    assert len(tables(one_dir)[0]) == 5 and all(tables(one_dir)[1:])
    assert tables(pool_dir) == tables(one_dir)
    # Warm: nothing parsed, nothing sent to a pool, the same findings.
    del pool_calls[:]
    warm = engine.run([target], Settings(select=("ALL",), cache_dir=str(pool_dir), jobs=2))
    assert pool_calls == [] and findings(warm) == findings(one)


def test_piped_text_stands_for_the_file_on_disk(tmp_path, pool_calls):
    app = tmp_path / "app"
    app.mkdir()
    (app / "clean.py").write_text("from app.db import SessionLocal\n\n\ndef ok():\n    with SessionLocal() as s:\n        s.execute(1)\n")
    (app / "db.py").write_text("from sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n")
    piped = b"from app.db import SessionLocal\n\n\ndef leak():\n    s = SessionLocal()\n    s.execute(1)\n"
    stdin = (str(app / "clean.py"), piped)
    one = engine.run([str(app)], Settings(select=("ALL",), cache=False, jobs=1), stdin=stdin)
    pooled = engine.run([str(app)], Settings(select=("ALL",), cache=False, jobs=2), stdin=stdin)
    assert pool_calls
    assert findings(pooled) == findings(one) == [(str(app / "clean.py"), 5, 9, "SL001", findings(one)[0][4])]
    assert pooled.sources[str(app / "clean.py")] == piped


def test_unreadable_file_is_reported_and_the_rest_linted(tmp_path, monkeypatch, pool_calls):
    """A file that cannot be read when the workers come to it (here: gone since discovery)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "leak.py").write_text("from sqlalchemy.orm import Session\n\n\ndef leak(engine):\n    s = Session(engine)\n    s.execute(1)\n")
    real_discover = engine.discover

    def discover(paths, configuration):
        found = real_discover(paths, configuration)
        found.files.append(str(app / "gone.py"))
        return found

    monkeypatch.setattr(engine, "discover", discover)
    pooled = engine.run([str(app)], Settings(select=("ALL",), cache=False, jobs=2))
    assert pool_calls
    assert errors(pooled) == [(str(app / "gone.py"), ErrorKind.IO, "cannot read file: No such file or directory")]
    assert [(os.path.basename(p), line, code) for p, line, _, code, _ in findings(pooled)] == [("leak.py", 5, "SL001")]


def test_unused_suppression_is_reported_from_the_pool(tmp_path, pool_calls):
    app = tmp_path / "app"
    app.mkdir()
    (app / "quiet.py").write_text("x = 1  # sessionlint: ignore[SL001]\n")
    (app / "other.py").write_text("y = 2  # noqa: E501\n")
    one = engine.run([str(app)], Settings(select=("ALL",), cache=False, jobs=1))
    pooled = engine.run([str(app)], Settings(select=("ALL",), cache=False, jobs=2))
    assert pool_calls
    assert [(os.path.basename(p), line, code) for p, line, _, code, _ in findings(pooled)] == [("quiet.py", 1, "SL100")]
    assert findings(pooled) == findings(one)


def test_trie_alternation_matches_what_the_flat_one_matches():
    """index.alternation builds the factory trigger as a trie: it must find a match exactly
    where the plain alternation of the names does."""
    import random
    import re

    rng = random.Random(7)
    alphabet = "sSe_ion.L(a "
    for _ in range(300):
        names = {"".join(rng.choice("sSeion_La") for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(1, 8))}
        flat = re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(names)) + rb")\s*(?:\(|as\b)")
        trie = prefilter.trigger_pattern(names)
        words = re.compile(prefilter._words(names))
        flat_words = re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(names)) + rb")\b")
        for _ in range(40):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))).encode()
            found, expected = trie.search(text), flat.search(text)
            assert (found and found.start()) == (expected and expected.start()), (names, text)
            assert bool(words.search(text)) == bool(flat_words.search(text)), (names, text)


def test_the_binding_call_test_matches_where_its_two_flat_regexes_did():
    """The project pass's test for a file that can bind a factory (a binding call such as
    `sessionmaker(` or a conventional factory name called) is one trie regex; it must match
    exactly where the two flat alternations it replaced matched, configured names too."""
    import random
    import re

    from sessionlint.knowledge import CONVENTIONAL_FACTORY_NAMES
    from sessionlint.project.builder import IndexBuilder
    from sessionlint.project.text import DEFINITION_NAMES as _DEFINITION_NAMES

    def flat(names):
        return re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(names)) + rb")\s*\(")

    rng = random.Random(11)
    for extra in ((), ("get_db", "Sess"), ("my_session_source",)):
        builder = IndexBuilder(extra_factory_names=extra)
        # Literal-first search when every name says `ession` or `ngine`, else the trie regex.
        assert (builder.call_names is None) == (extra == ("get_db", "Sess"))
        definition, conventional = flat(_DEFINITION_NAMES), flat(CONVENTIONAL_FACTORY_NAMES | set(extra))
        words = list(_DEFINITION_NAMES) + sorted(CONVENTIONAL_FACTORY_NAMES) + list(extra) + ["session", "x", "Local", "ngine", "é"]
        for _ in range(3000):
            text = "".join(rng.choice(words + [" ", "(", ".", "_", "\n", " ("]) for _ in range(rng.randint(0, 8))).encode()
            expected = bool(definition.search(text) or conventional.search(text))
            assert bool(builder.binding_call.search(text)) == expected, text
            assert builder.calls_a_binding(text) == expected, text


def test_from_imports_are_found_where_the_line_anchored_regex_found_them():
    """The project pass finds `from x import names` by the literal `from`, keeping matches
    that start a line; it must find what `(?m)^[ \\t]*from...` finds, in order."""
    import random
    import re

    from sessionlint.project.text import from_import_names

    anchored = re.compile(rb"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)", re.MULTILINE)
    rng = random.Random(5)
    prefixes = ["", "", "    ", "\t", "x = ", "# ", "data", '"""', "\r"]
    names = ["a", "a, b", "(a,\n b)", "(a", "b)", "(\nfrom m import c\n)", ""]
    seps = [" ", "\t", "", "  "]
    for _ in range(3000):
        lines = []
        for _ in range(rng.randint(0, 5)):
            line = rng.choice(prefixes) + "from" + rng.choice(seps) + rng.choice(["m", "a.b", ".", ""])
            line += rng.choice(seps) + rng.choice(["import", "imp"]) + rng.choice(seps) + rng.choice(names)
            lines.append(line)
        text = rng.choice(["\n", "\r\n"]).join(lines).encode()
        assert from_import_names(text) == [m.group(1) for m in anchored.finditer(text)], text
