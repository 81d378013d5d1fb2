"""Each file is linted under its nearest configuration and inside its own project: a run over
several paths reports exactly the union of one run per path. Then the smaller wrong answers
of the trust issue: --stdin-filename, a SIGINT that was ignored, one definition of fixable,
the file-level `# sessionlint: noqa`."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from sessionlint.cli import main

SESSION_LEAK = textwrap.dedent(
    """\
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def leak():
        db = SessionLocal()
        db.execute("select 1")
    """
)
BOTH_LEAKS = textwrap.dedent(
    """\
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("sqlite://")
    SessionLocal = sessionmaker(bind=engine)


    def leak():
        db = SessionLocal()
        db.execute("select 1")


    def connection_leak():
        conn = engine.connect()
        conn.execute("select 1")
    """
)


def invoke(args, cwd, monkeypatch, input=None):
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("SESSIONLINT_CACHE_DIR", raising=False)
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, ["--no-cache", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def tree(tmp_path):
    """A repository with two projects: svc/ ignores SL001 in its configuration; other/ has no
    configuration of its own (the repository's root, marked by .git, is its project)."""
    (tmp_path / ".git").mkdir()
    svc = tmp_path / "svc"
    (svc / "app").mkdir(parents=True)
    (svc / "pyproject.toml").write_text('[tool.sessionlint]\nignore = ["SL001"]\n')
    (svc / "app" / "users.py").write_text(BOTH_LEAKS)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "users.py").write_text(SESSION_LEAK)
    return tmp_path


def lines(out):
    return sorted(line for line in out.splitlines() if ": SL" in line)


def test_each_file_gets_its_nearest_configuration(tree, monkeypatch):
    svc_line = "svc/app/users.py:14:12: SL010 [*] connection `conn` is never closed"
    other_line = "other/users.py:7:10: SL001 [*] session `db` is never closed"
    assert lines(invoke(["-q", "svc/app/users.py"], tree, monkeypatch)[1]) == [svc_line]
    assert lines(invoke(["-q", "other/users.py"], tree, monkeypatch)[1]) == [other_line]
    union = sorted([svc_line, other_line])
    for args in (["svc/app/users.py", "other/users.py"], ["other/users.py", "svc/app/users.py"], ["other", "svc"], ["svc", "other"], ["."]):
        code, out, err = invoke(["-q", *args], tree, monkeypatch)
        assert (code, lines(out), err) == (1, union, ""), args


def test_a_run_over_several_paths_is_the_union_of_one_run_per_path(tree, monkeypatch):
    paths = ["svc/app/users.py", "other/users.py", "svc", "other/"]
    single = {path: set(lines(invoke(["-q", path], tree, monkeypatch)[1])) for path in paths}
    for first in paths:
        for second in paths:
            together = set(lines(invoke(["-q", first, second], tree, monkeypatch)[1]))
            assert together == single[first] | single[second], (first, second)


def test_verbose_names_each_project_and_its_configuration(tree, monkeypatch):
    code, out, err = invoke(["-q", "-v", "svc", "other"], tree, monkeypatch)
    assert code == 1
    assert f"sessionlint: project {tree / 'svc'}: configuration {tree / 'svc' / 'pyproject.toml'}" in err
    assert f"sessionlint: project {tree}: configuration (none: defaults)" in err


def test_show_settings_and_show_files(tree, monkeypatch):
    code, out, err = invoke(["--show-settings", "svc/app/users.py"], tree, monkeypatch)
    assert code == 0 and err == ""
    assert out.splitlines()[:3] == [
        "Settings for: svc/app/users.py",
        f"Configuration file: {tree / 'svc' / 'pyproject.toml'}",
        f"Project root: {tree / 'svc'}",
    ]
    assert "ignore = ('SL001',)" in out.splitlines()
    assert "'SL001'" not in out.splitlines()[3]  # the enabled codes
    code, out, err = invoke(["--show-settings", "other/users.py"], tree, monkeypatch)
    assert out.splitlines()[1] == "Configuration file: (none: defaults)"
    code, out, err = invoke(["--show-files", "."], tree, monkeypatch)
    assert (code, out.splitlines()) == (0, ["other/users.py", "svc/app/users.py"])


def test_stdin_filename_without_dash_reads_stdin(tree, monkeypatch):
    code, out, err = invoke(["-q", "--stdin-filename", "other/users.py"], tree, monkeypatch, input=BOTH_LEAKS)
    assert code == 1 and err == ""
    assert lines(out) == ["other/users.py:14:12: SL010 [*] connection `conn` is never closed", "other/users.py:9:10: SL001 [*] session `db` is never closed"]
    # the piped text gets the configuration of the path it stands for
    code, out, err = invoke(["-q", "--stdin-filename", "svc/app/new.py"], tree, monkeypatch, input=BOTH_LEAKS)
    assert lines(out) == ["svc/app/new.py:14:12: SL010 [*] connection `conn` is never closed"]
    code, out, err = invoke(["-q", "--stdin-filename", "svc/app/new.py", "other"], tree, monkeypatch, input=BOTH_LEAKS)
    assert err == "sessionlint: warning: --stdin-filename reads the file from stdin; not linting other\n"


def test_an_ignored_sigint_stays_ignored_while_a_file_is_written(tmp_path):
    """A backgrounded `--fix` (SIGINT ignored: `&`, nohup, some CI runners) must not become
    interruptible while it writes; the handler in place before is the handler after."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from sessionlint.fixes import files
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        real = files.tempfile.mkstemp
        def interrupted(*args, **kwargs):
            made = real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGINT)
            return made
        files.tempfile.mkstemp = interrupted
        files.write_fixed({str(tmp_path / 'm.py')!r}, b"new\\n")
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        print("written")
        """
    )
    (tmp_path / "m.py").write_bytes(b"old\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "written\n", "")
    assert (tmp_path / "m.py").read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]


def test_the_handler_before_a_write_is_the_handler_after(tmp_path):
    from sessionlint.fixes import files

    before = signal.getsignal(signal.SIGINT)
    (tmp_path / "m.py").write_bytes(b"old\n")
    files.write_fixed(str(tmp_path / "m.py"), b"new\n")
    assert signal.getsignal(signal.SIGINT) is before


UNSAFE_ONLY = textwrap.dedent(
    """\
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def leak():
        db = SessionLocal()
        return db.query(User).count()


    def safe():
        db = SessionLocal()
        db.execute("select 1")
        return 1
    """
)


def test_fixable_means_the_same_in_every_format(tmp_path, monkeypatch):
    (tmp_path / "app.py").write_text(UNSAFE_ONLY)
    code, out, _ = invoke(["--isolated", "app.py"], tmp_path, monkeypatch)
    assert "[*] 1 fixable with the `--fix` option (1 hidden fix can be enabled with the `--unsafe-fixes` option)." in out
    summary = json.loads(invoke(["--isolated", "--output-format", "json", "app.py"], tmp_path, monkeypatch)[1])["summary"]
    assert summary["fixable"] == 1
    summary = json.loads(invoke(["--isolated", "--output-format", "json", "--unsafe-fixes", "app.py"], tmp_path, monkeypatch)[1])["summary"]
    assert summary["fixable"] == 2
    concise = invoke(["--isolated", "--output-format", "concise", "app.py"], tmp_path, monkeypatch)[1]
    assert [line.count("[*]") for line in concise.splitlines()] == [0, 1]
    concise = invoke(["--isolated", "--output-format", "concise", "--unsafe-fixes", "app.py"], tmp_path, monkeypatch)[1]
    assert [line.count("[*]") for line in concise.splitlines()] == [1, 1]


@pytest.mark.parametrize(
    "comment,expected",
    [
        ("# sessionlint: noqa", []),
        ("# sessionlint: noqa: SL001", ["app.py:15:12: SL010"]),
        ("# sessionlint: noqa: SL010", ["app.py:10:10: SL001"]),
        ("#sessionlint:noqa:sl001,SL010", []),
        ("# noqa", ["app.py:10:10: SL001", "app.py:15:12: SL010"]),  # a line-level noqa on its own line
    ],
)
def test_file_level_noqa(tmp_path, monkeypatch, comment, expected):
    (tmp_path / "app.py").write_text(comment + "\n" + BOTH_LEAKS)
    code, out, err = invoke(["--isolated", "-q", "app.py"], tmp_path, monkeypatch)
    assert [line.split(" [*]")[0] for line in out.splitlines()] == expected
    assert code == (1 if expected else 0)


def test_unused_file_level_noqa_is_sl100(tmp_path, monkeypatch):
    (tmp_path / "app.py").write_text("x = 1\n\n# sessionlint: noqa: SL001\n# sessionlint: noqa\n")
    code, out, err = invoke(["--isolated", "-q", "--extend-select", "SL100", "app.py"], tmp_path, monkeypatch)
    assert out.splitlines() == [
        "app.py:3:1: SL100 [*] unused suppression of `SL001`: no such finding in this file",
        "app.py:4:1: SL100 [*] unused suppression: nothing is reported in this file",
    ]


def test_a_trailing_file_noqa_is_a_line_noqa(tmp_path, monkeypatch):
    (tmp_path / "app.py").write_text(BOTH_LEAKS.replace('engine = create_engine("sqlite://")', 'engine = create_engine("sqlite://")  # sessionlint: noqa'))
    code, out, err = invoke(["--isolated", "-q", "app.py"], tmp_path, monkeypatch)
    assert len(out.splitlines()) == 2
