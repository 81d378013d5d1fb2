"""The command line through click's CliRunner: stdout, stderr and exit code against golden
files in tests/cli/ (NO_COLOR). Set SESSIONLINT_UPDATE_GOLDENS=1 to rewrite them."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from sessionlint import __version__
from sessionlint.cli import main

CLI_DIR = os.path.join(os.path.dirname(__file__), "cli")
UPDATE = os.environ.get("SESSIONLINT_UPDATE_GOLDENS") == "1"


def invoke(args, monkeypatch):
    monkeypatch.chdir(CLI_DIR)
    monkeypatch.setenv("NO_COLOR", "1")
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def check_golden(name, args, monkeypatch):
    code, out, err = invoke(args, monkeypatch)
    text = f"$ sessionlint {' '.join(args)}\n--- exit: {code}\n--- stdout:\n{out}--- stderr:\n{err}"
    path = os.path.join(CLI_DIR, f"{name}.golden")
    if UPDATE or not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(path, encoding="utf-8") as handle:
        assert text == handle.read()
    return code


@pytest.mark.parametrize(
    "name,args,expected_exit",
    [
        ("project_text", ["project"], 1),
        ("project_quiet", ["project", "--quiet"], 1),
        ("project_exit_zero", ["project", "--exit-zero", "-q"], 0),
        ("project_ignore", ["project", "--ignore", "SL001"], 0),
        ("project_select_prefix", ["project", "--select", "SL0", "-q"], 1),
        ("clean_file", ["project/pkg/db.py"], 0),
        ("syntax_error", ["broken"], 1),
        ("missing_path", ["no/such/dir"], 2),
        ("unknown_selector", ["project", "--select", "XY9"], 2),
        ("list_rules", ["--list-rules"], 0),
    ],
)
def test_cli_golden(name, args, expected_exit, monkeypatch):
    assert check_golden(name, args, monkeypatch) == expected_exit


def test_missing_path_does_not_stop_other_files(monkeypatch):
    code, out, err = invoke(["project", "no/such/file.py", "-q"], monkeypatch)
    assert code == 2
    assert "no/such/file.py: no such file or directory" in err
    assert "project/pkg/users.py:5:10: SL001" in out


def test_unreadable_file_is_an_error_and_others_are_linted(monkeypatch):
    import sessionlint.sources as engine

    real_open = open

    def guarded_open(path, *args, **kwargs):
        if str(path).endswith("users.py"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(engine, "open", guarded_open, raising=False)
    # Without the cache: a cached status would stand for the file's bytes (a real `chmod`
    # changes the status; this patched `open` does not).
    code, out, err = invoke(["project", "broken/leak.py", "-q", "--no-cache"], monkeypatch)
    assert code == 2
    assert err == "sessionlint: error: project/pkg/users.py: cannot read file: Permission denied\n"
    assert out == "broken/leak.py:5:10: SL001 [*] session `db` is never closed\n"


def test_explain(monkeypatch):
    code, out, _ = invoke(["--explain", "SL001"], monkeypatch)
    assert code == 0
    assert out.startswith("# SL001 session-not-closed\n")
    assert "## Why is this bad?" in out
    code, _, err = invoke(["--explain", "SL999"], monkeypatch)
    assert code == 2 and "unknown rule `SL999`" in err


def test_version(monkeypatch):
    code, out, _ = invoke(["--version"], monkeypatch)
    assert (code, out) == (0, f"sessionlint {__version__}\n")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["--list-rules"]])
def test_light_commands_do_not_import_libcst(args):
    """`import libcst` costs 0.16 s: commands that do not lint must not pay it."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sessionlint", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line}
    assert "libcst" not in imported
    assert "rich" not in imported


def test_a_clean_run_does_not_import_rich(tmp_path):
    """A hook run over files without findings prints its summary without rich (about 0.02 s);
    nor does it import libcst when no file needs parsing."""
    clean = tmp_path / "clean.py"
    clean.write_text("def add(a, b):\n    return a + b\n")
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sessionlint", str(clean), "--no-cache"],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert (completed.returncode, completed.stdout) == (0, "All checks passed!\n")
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line}
    assert "rich" not in imported and "libcst" not in imported


