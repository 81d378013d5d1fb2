"""Fix pairs: every `tests/fixtures/fix/<codes>_<case>.py` fixed (with `--unsafe-fixes` when
`_unsafe` is in its name, with the settings of a first `# fixture-config:` line, such as a
`target-sqlalchemy`) equals its `.fixed.py` byte for byte, and passes `verify_fix`. Then
the command line: --fix writes atomically, --diff writes nothing, stdin, and failures."""

import glob
import os
import stat

import pytest
from click.testing import CliRunner
from helpers import FIXTURES, fix_bytes, fixture_settings, verify_fix

from sessionlint.cli import main

PAIRS = sorted(p for p in glob.glob(os.path.join(FIXTURES, "fix", "*.py")) if not p.endswith(".fixed.py"))
UPDATE = os.environ.get("SESSIONLINT_UPDATE_GOLDENS") == "1"


@pytest.mark.parametrize("path", PAIRS, ids=lambda p: os.path.basename(p)[:-3])
def test_fix_pair(path):
    unsafe = "_unsafe" in os.path.basename(path)
    with open(path, "rb") as handle:
        original = handle.read()
    # `# fixture-config: target-sqlalchemy = "1.3"` on the first line: the pair of a version
    settings = fixture_settings(original.decode("latin-1"))
    outcome = fix_bytes(original, os.path.basename(path), unsafe, settings)
    assert outcome.problem is None
    expected_path = path[:-3] + ".fixed.py"
    if UPDATE or not os.path.exists(expected_path):
        with open(expected_path, "wb") as handle:
            handle.write(outcome.source)
    with open(expected_path, "rb") as handle:
        assert outcome.source == handle.read()
    assert outcome.fixed, "the fixture fixed nothing"
    verify_fix(original, outcome.source, os.path.basename(path), unsafe, settings)


def test_unsafe_fixes_need_the_flag():
    with open(os.path.join(FIXTURES, "fix", "SL007_unsafe_rollback.py"), "rb") as handle:
        original = handle.read()
    assert not fix_bytes(original, "x.py", unsafe=False).fixed


def invoke(args, cwd, monkeypatch, input=None):
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NO_COLOR", "1")
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, ["--no-cache", "--isolated", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes if hasattr(result, "stdout_bytes") else result.stdout, result.stderr


LEAK = b"from myapp.db import SessionLocal\n\n\ndef leak():\n    db = SessionLocal()\n    db.execute('select 1')\n"
FIXED = b"from myapp.db import SessionLocal\n\n\ndef leak():\n    with SessionLocal() as db:\n        db.execute('select 1')\n"


def test_fix_rewrites_in_place_keeping_permissions(tmp_path, monkeypatch):
    target = tmp_path / "app.py"
    target.write_bytes(LEAK)
    os.chmod(target, 0o640)
    code, out, err = invoke(["--fix", "app.py"], tmp_path, monkeypatch)
    assert code == 0
    assert target.read_bytes() == FIXED
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert b"Found 1 problem (1 fixed, 0 remaining)." in out
    assert [p.name for p in tmp_path.iterdir()] == ["app.py"]  # no temporary file left


def test_diff_writes_nothing(tmp_path, monkeypatch):
    target = tmp_path / "app.py"
    target.write_bytes(LEAK)
    code, out, err = invoke(["--diff", "app.py"], tmp_path, monkeypatch)
    assert code == 1
    assert target.read_bytes() == LEAK
    assert b"\n-    db = SessionLocal()\n" in out and b"\n+    with SessionLocal() as db:\n" in out
    assert err == "Would fix 1 error.\n"
    target.write_bytes(FIXED)
    assert invoke(["--diff", "app.py"], tmp_path, monkeypatch)[:2] == (0, b"")


def test_fix_from_stdin_writes_the_source_to_stdout(tmp_path, monkeypatch):
    code, out, err = invoke(["--fix", "-", "--stdin-filename", "app.py"], tmp_path, monkeypatch, input=LEAK)
    assert (code, out) == (0, FIXED)


def test_noqa_is_not_fixed(tmp_path, monkeypatch):
    target = tmp_path / "app.py"
    source = LEAK.replace(b"db = SessionLocal()", b"db = SessionLocal()  # noqa: SL001")
    target.write_bytes(source)
    assert invoke(["--fix", "app.py"], tmp_path, monkeypatch)[0] == 0
    assert target.read_bytes() == source


def test_file_changed_on_disk_is_not_overwritten(tmp_path, monkeypatch):
    import sessionlint.fixes.apply as apply

    target = tmp_path / "app.py"
    target.write_bytes(LEAK)
    real = apply.fix_source

    def fix_and_edit(*args, **kwargs):
        outcome = real(*args, **kwargs)
        target.write_bytes(LEAK + b"# edited meanwhile\n")
        return outcome

    monkeypatch.setattr(apply, "fix_source", fix_and_edit)
    code, _, err = invoke(["--fix", "app.py"], tmp_path, monkeypatch)
    assert code == 2
    assert "app.py: the file changed on disk while it was being fixed; not written" in err
    assert target.read_bytes() == LEAK + b"# edited meanwhile\n"


def test_write_failure_keeps_the_original(tmp_path, monkeypatch):
    import sessionlint.fixes.files as files

    target = tmp_path / "app.py"
    target.write_bytes(LEAK)

    def failing_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    code, _, err = invoke(["--fix", "app.py"], tmp_path, monkeypatch)
    assert code == 2
    assert "app.py: cannot write: No space left on device" in err
    assert target.read_bytes() == LEAK
    assert [p.name for p in tmp_path.iterdir()] == ["app.py"]


def test_a_fix_that_breaks_the_code_is_not_written(tmp_path, monkeypatch):
    import sessionlint.fixes.apply as apply

    target = tmp_path / "app.py"
    target.write_bytes(LEAK)
    monkeypatch.setattr(apply, "verify", lambda data, path: "SyntaxError: invented for the test")
    code, _, err = invoke(["--fix", "app.py"], tmp_path, monkeypatch)
    assert code == 2
    assert "a fix for SL001 produced invalid code (SyntaxError: invented for the test)" in err
    assert target.read_bytes() == LEAK


def test_read_only_file_is_not_written(tmp_path, monkeypatch):
    target = tmp_path / "app.py"
    target.write_bytes(LEAK)
    os.chmod(target, 0o444)
    code, out, err = invoke(["--fix", "app.py"], tmp_path, monkeypatch)
    assert code == 2
    assert err == "sessionlint: error: app.py: the file is read-only; not written\n"
    assert target.read_bytes() == LEAK
    assert b"app.py:5:10: SL001 [*] session `db` is never closed" in out


NO_FIX = sorted(glob.glob(os.path.join(FIXTURES, "nofix", "*.py")))


@pytest.mark.parametrize("path", NO_FIX, ids=lambda p: os.path.basename(p)[:-3])
def test_no_fix_where_it_would_change_the_mechanics(path):
    """Shapes where a fix would change what the code does at run time (a detached object, a
    lost commit, an added commit, two engines under one name, a rollback on None, before a
    savepoint's or before a retry): reported exactly as annotated, never rewritten, even
    with --unsafe-fixes."""
    from helpers import compare, fixture_settings, parse_expectations

    from sessionlint.api import fix_source, lint_source

    with open(path, "rb") as handle:
        original = handle.read()
    text = original.decode()
    settings = fixture_settings(text)
    found = lint_source(original, os.path.basename(path), settings).diagnostics
    missing, unexpected = compare(parse_expectations(text), found)
    assert not missing and not unexpected, (missing, unexpected)
    outcome = fix_source(original, os.path.basename(path), settings, unsafe=True)
    assert outcome.source == original and not outcome.fixed
