"""`[tool.sessionlint]` configuration, discovery and excludes, through the command line."""

import os
import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from sessionlint.cli import main

LEAK = textwrap.dedent(
    """\
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def leak():
        db = SessionLocal()
        db.execute("select 1")
    """
)


def invoke(args, cwd, monkeypatch, input=None):
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("SESSIONLINT_CACHE_DIR", raising=False)
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, ["--no-cache", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def project(tmp_path, config=None, files=None):
    if config is not None:
        (tmp_path / "pyproject.toml").write_text(textwrap.dedent(config))
    for name, text in (files or {"app/leak.py": LEAK}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_no_config_reports(tmp_path, monkeypatch):
    root = project(tmp_path)
    code, out, _ = invoke(["-q"], root, monkeypatch)
    assert (code, out) == (1, "app/leak.py:7:10: SL001 [*] session `db` is never closed\n")


def test_pyproject_ignore_and_discovery_from_a_subdirectory(tmp_path, monkeypatch):
    root = project(tmp_path, '[tool.sessionlint]\nignore = ["SL001"]\n')
    code, out, _ = invoke(["-q", "."], root / "app", monkeypatch)
    assert (code, out) == (0, "")


def test_command_line_overrides_the_file(tmp_path, monkeypatch):
    root = project(tmp_path, '[tool.sessionlint]\nselect = ["SL004"]\n')
    assert invoke(["-q"], root, monkeypatch)[0] == 0
    code, out, _ = invoke(["-q", "--select", "SL001"], root, monkeypatch)
    assert (code, out) == (1, "app/leak.py:7:10: SL001 [*] session `db` is never closed\n")


def test_per_file_ignores_and_excludes(tmp_path, monkeypatch):
    config = """\
        [tool.sessionlint]
        extend-exclude = ["legacy/"]
        [tool.sessionlint.per-file-ignores]
        "tests/*" = ["SL001"]
    """
    root = project(tmp_path, config, {"app/leak.py": LEAK, "tests/test_x.py": LEAK, "legacy/old.py": LEAK})
    code, out, _ = invoke(["-q"], root, monkeypatch)
    assert (code, out) == (1, "app/leak.py:7:10: SL001 [*] session `db` is never closed\n")
    # Named on the command line, an excluded file is linted, unless --force-exclude.
    code, out, _ = invoke(["-q", "legacy/old.py"], root, monkeypatch)
    assert (code, out) == (1, "legacy/old.py:7:10: SL001 [*] session `db` is never closed\n")
    code, out, _ = invoke(["-q", "--force-exclude", "legacy/old.py"], root, monkeypatch)
    assert (code, out) == (0, "")


def test_explicit_config_file(tmp_path, monkeypatch):
    root = project(tmp_path)
    (root / "lint.toml").write_text('ignore = ["SL0"]\n')
    code, out, _ = invoke(["-q", "--config", "lint.toml"], root, monkeypatch)
    assert (code, out) == (0, "")


@pytest.mark.parametrize(
    "config,message",
    [
        ('[tool.sessionlint]\nselct = ["SL001"]\n', "pyproject.toml: `tool.sessionlint.selct`: unknown setting"),
        ('[tool.sessionlint]\nselect = "SL001"\n', "pyproject.toml: `tool.sessionlint.select`: must be a list of strings"),
        ('[tool.sessionlint]\nselect = ["XY1"]\n', "pyproject.toml: `tool.sessionlint.select`: unknown rule selector `XY1`"),
        ('[tool.sessionlint]\nforce-exclude = "yes"\n', "pyproject.toml: `tool.sessionlint.force-exclude`: must be true or false"),
        ('[tool.sessionlint\nselect = 1\n', "pyproject.toml: invalid TOML"),
        ('[tool.sessionlint.per-file-ignores]\n"a/*" = "SL001"\n', "`tool.sessionlint.per-file-ignores.a/*`: must be a list of rule codes"),
        ('[tool.sessionlint]\nsession-factories = ["not a name"]\n', "`not a name` is not a name or dotted name"),
        (
            '[tool.sessionlint]\ntarget-sqlalchemy = 1.4\n',
            '`tool.sessionlint.target-sqlalchemy`: must be a SQLAlchemy version as a string, such as "1.3" or "2.0" (write it quoted: "1.4")',
        ),
        ('[tool.sessionlint]\ntarget-sqlalchemy = "latest"\n', "such as \"1.3\" or \"2.0\", not 'latest'"),
        ('[tool.sessionlint]\ntarget-sqlalchemy = ">=1.3"\n', "such as \"1.3\" or \"2.0\", not '>=1.3'"),
        ('[tool.sessionlint]\ntarget-sqlalchemy = "14.0"\n', "`tool.sessionlint.target-sqlalchemy`: must be a SQLAlchemy version as a string, such as \"1.3\" or \"2.0\": SQLAlchemy 14.0 does not exist"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path, monkeypatch, config, message):
    root = project(tmp_path, config)
    code, out, err = invoke([], root, monkeypatch)
    assert code == 2 and out == ""
    assert err.startswith("sessionlint: error: ") and message in err and err.count("\n") == 1


def test_isolated_ignores_the_file(tmp_path, monkeypatch):
    root = project(tmp_path, '[tool.sessionlint]\nselct = 1\n')
    assert invoke(["-q", "--isolated"], root, monkeypatch)[0] == 1


def test_gitignore_is_respected_in_a_checkout(tmp_path, monkeypatch):
    root = project(tmp_path, None, {"app/leak.py": LEAK, "generated/leak.py": LEAK})
    if subprocess.run(["git", "init", "-q", str(root)], capture_output=True).returncode != 0:
        pytest.skip("git is not available")
    (root / ".gitignore").write_text("generated/\n")
    code, out, _ = invoke(["-q"], root, monkeypatch)
    assert out == "app/leak.py:7:10: SL001 [*] session `db` is never closed\n"
    code, out, _ = invoke(["-q", "--no-respect-gitignore"], root, monkeypatch)
    assert out.count("SL001") == 2
    code, out, _ = invoke(["-q", os.path.join("generated", "leak.py")], root, monkeypatch)
    assert out == "generated/leak.py:7:10: SL001 [*] session `db` is never closed\n"


def test_configured_engine_factories_and_request_decorators(tmp_path, monkeypatch):
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import sessionmaker
        from myapp.db import get_primary, job


        def count():
            conn = get_primary().connect()
            return conn.exec_driver_sql("select 1").scalar()


        @job
        def nightly():
            maker = sessionmaker()
            with maker() as db:
                db.execute("select 1")
        """
    )
    root = project(tmp_path, None, {"app/jobs.py": source})
    assert invoke(["-q"], root, monkeypatch)[1] == ""
    (root / "pyproject.toml").write_text(
        '[tool.sessionlint]\nengine-factories = ["myapp.db.get_primary"]\nrequest-decorators = ["job"]\n'
    )
    code, out, _ = invoke(["-q"], root, monkeypatch)
    assert out == (
        "app/jobs.py:6:12: SL010 connection `conn` is never closed\n"
        "app/jobs.py:12:13: SL005 `sessionmaker()` is built again on every request: "
        "`nightly` runs per request (`@job`, configured)\n"
    )
