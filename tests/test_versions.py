"""The framework versions a project runs on, read from its dependency files, and the SL008
finding they decide (a request session handed to a FastAPI background task)."""

import json
import os
import textwrap

import pytest
from click.testing import CliRunner

from sessionlint.cli import main
from sessionlint.project.versions import SqlalchemyTarget, VersionRange, project_versions, range_of, sqlalchemy_target


@pytest.mark.parametrize(
    "specifier, low, high",
    [
        ("==0.110.0", (0, 110, 0), (0, 110, 1)),
        ("==0.110", (0, 110, 0), (0, 110, 1)),
        ("==0.110.*", (0, 110), (0, 111)),
        (">=0.100,<0.115", (0, 100), (0, 115)),
        (">0.100.1", (0, 100, 2), None),
        ("<=0.117.1", None, (0, 117, 2)),
        ("~=0.110.2", (0, 110, 2), (0, 111)),
        ("^0.110.2", (0, 110, 2), (0, 111)),
        ("^1.4", (1, 4), (2,)),
        ("~0.110", (0, 110), (0, 111)),
        ("", None, None),
        ("*", None, None),
    ],
)
def test_range_of(specifier, low, high):
    assert range_of(specifier) == VersionRange(low, high)


def test_within_needs_both_bounds():
    assert range_of(">=0.106,<0.118").within((0, 106), (0, 118))
    assert range_of("==0.110.0").within((0, 106), (0, 118))
    assert not range_of(">=0.106").within((0, 106), (0, 118))
    assert not range_of(">=0.100,<0.110").within((0, 106), (0, 118))


def test_lock_file_wins_over_declared_range(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["fastapi>=0.100", "SQLAlchemy[asyncio]>=2.0"]\n')
    (tmp_path / "uv.lock").write_text('version = 1\n[[package]]\nname = "fastapi"\nversion = "0.112.4"\n')
    found = project_versions(str(tmp_path))
    assert found["fastapi"] == VersionRange((0, 112, 4), (0, 112, 5))
    assert found["sqlalchemy"] == VersionRange((2, 0), None)


def test_requirements_poetry_and_pipfile(tmp_path):
    (tmp_path / "requirements-prod.txt").write_text("# pins\n-r base.txt\nfastapi[all]==0.115.2 ; python_version > '3.8'\n")
    assert project_versions(str(tmp_path))["fastapi"] == VersionRange((0, 115, 2), (0, 115, 3))
    poetry = tmp_path / "poetry"
    poetry.mkdir()
    (poetry / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.11"\nFastAPI = {version = "^0.109.1"}\n')
    assert project_versions(str(poetry))["fastapi"] == VersionRange((0, 109, 1), (0, 110))
    pipenv = tmp_path / "pipenv"
    pipenv.mkdir()
    (pipenv / "Pipfile.lock").write_text(json.dumps({"default": {"fastapi": {"version": "==0.119.0"}}}))
    assert project_versions(str(pipenv))["fastapi"] == VersionRange((0, 119, 0), (0, 119, 1))


def test_broken_files_say_nothing(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project\ndependencies = [")
    (tmp_path / "uv.lock").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "Pipfile.lock").write_text("{" * 100000)
    assert project_versions(str(tmp_path)) == {}
    assert project_versions(None) == {}
    assert project_versions(str(tmp_path / "missing")) == {}


HANDLER = textwrap.dedent(
    """\
    from fastapi import APIRouter, BackgroundTasks, Depends
    from sqlalchemy.orm import Session

    from app.db import get_db, reindex

    router = APIRouter()


    @router.post("/reindex")
    def start(background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
        background_tasks.add_task(reindex, db)
    """
)


@pytest.mark.parametrize(
    "requirement, expected",
    [
        ("fastapi==0.110.0", "is closed by the request before the background task runs: FastAPI 0.110.0"),
        ("fastapi>=0.106,<0.118", "is closed by the request before the background task runs: FastAPI >=0.106,<0.118"),
        ("fastapi>=0.118", "of the request is handed to a background task: it stays open"),
        ("", "of the request is handed to a background task: it stays open"),
    ],
)
def test_background_task_message_follows_the_fastapi_version(tmp_path, monkeypatch, requirement, expected):
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "svc"\ndependencies = ["{requirement}"]\n' if requirement else "")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "api.py").write_text(HANDLER)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--no-cache", "--output-format", "json", "app"], catch_exceptions=False)
    (finding,) = json.loads(result.output)["diagnostics"]
    assert (finding["code"], finding["location"]["line"], finding["location"]["column"]) == ("SL008", 11, 5)
    assert expected in finding["message"], finding["message"]
    assert finding["confidence"] == ("high" if "closed by" in expected else "medium")


STREAMING = textwrap.dedent(
    """\
    from fastapi import APIRouter, Depends
    from fastapi.responses import StreamingResponse
    from sqlalchemy.orm import Session

    from app.db import get_db, stream_rows

    router = APIRouter()


    @router.get("/rows")
    def rows(db: Session = Depends(get_db)):
        return StreamingResponse(stream_rows(db))
    """
)


@pytest.mark.parametrize(
    "requirement, expected",
    [
        ("fastapi==0.109.2", "is closed by the request before the streaming response's body runs: FastAPI 0.109.2 ends"),
        ("fastapi>=0.100", "of the request is used by a streaming response's body, which runs after the handler returned"),
        ("", "of the request is used by a streaming response's body, which runs after the handler returned"),
        ("fastapi>=0.118", None),
        ("fastapi<0.106", None),
    ],
)
def test_streaming_body_finding_follows_the_fastapi_version(tmp_path, monkeypatch, requirement, expected):
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "svc"\ndependencies = ["{requirement}"]\n' if requirement else "")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "api.py").write_text(STREAMING)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--no-cache", "--output-format", "json", "app"], catch_exceptions=False)
    found = json.loads(result.output)["diagnostics"]
    if expected is None:
        assert found == []
        return
    (finding,) = found
    assert (finding["code"], finding["location"]["line"], finding["location"]["column"]) == ("SL008", 12, 30)
    assert expected in finding["message"], finding["message"]
    assert finding["confidence"] == ("high" if "closed by" in expected else "medium")
# --- target-sqlalchemy: the oldest version the project supports ------------------------------


def target_of(tmp_path, files, configured=None):
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    target = sqlalchemy_target(str(tmp_path), configured, str(tmp_path / "pyproject.toml") if configured else None)
    return target.version, target.source.replace(str(tmp_path) + os.sep, "")


@pytest.mark.parametrize(
    "files, version, source",
    [
        ({"requirements.txt": "sqlalchemy>=1.3,<1.4\n"}, (1, 3), "declared in requirements.txt: sqlalchemy >=1.3,<1.4"),
        ({"requirements.txt": "SQLAlchemy==1.3.24\n"}, (1, 3, 24), "declared in requirements.txt: sqlalchemy ==1.3.24"),
        ({"requirements-dev.txt": "sqlalchemy~=1.4\n"}, (1, 4), "declared in requirements-dev.txt: sqlalchemy ~=1.4"),
        (
            {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["sqlalchemy[asyncio]>=2"]\n'},
            (2,),
            "declared in pyproject.toml: sqlalchemy >=2",
        ),
        # flask-sqlalchemy and sqlalchemy-utils are other packages
        ({"requirements.txt": "flask-sqlalchemy==2.5.1\nSQLAlchemy_Utils<0.40\n"}, (2, 0), "default: nothing configured or declared"),
        # a requirement without a version declares none
        ({"requirements.txt": "sqlalchemy\n"}, (2, 0), "default: nothing configured or declared"),
        # no lower bound: the oldest releases are allowed
        ({"requirements.txt": "sqlalchemy<2.0\n"}, (0,), "declared in requirements.txt: sqlalchemy <2.0"),
        (
            {"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.9"\nSQLAlchemy = "^1.3"\n'},
            (1, 3),
            "declared in pyproject.toml: sqlalchemy ^1.3",
        ),
        (
            {"setup.cfg": "[metadata]\nname = x\n[options]\ninstall_requires =\n    requests\n    SQLAlchemy >=1.2.19, <1.4\n"},
            (1, 2, 19),
            "declared in setup.cfg: sqlalchemy >=1.2.19, <1.4",
        ),
        ({"Pipfile": '[packages]\nsqlalchemy = "==1.4.52"\n'}, (1, 4, 52), "declared in Pipfile: sqlalchemy ==1.4.52"),
        # the lowest over every declaration: the library allows 1.3, its dev pin is 2.0
        (
            {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["SQLAlchemy>=1.3"]\n', "requirements-dev.txt": "sqlalchemy==2.0.36\n"},
            (1, 3),
            "declared in pyproject.toml: sqlalchemy >=1.3",
        ),
        # a lock file decides only when nothing declares a bound
        ({"requirements.txt": "sqlalchemy\n", "uv.lock": 'version = 1\n[[package]]\nname = "sqlalchemy"\nversion = "1.4.54"\n'}, (1, 4, 54), "locked in uv.lock: sqlalchemy 1.4.54"),
    ],
    ids=lambda value: None,
)
def test_declared_sqlalchemy_target(tmp_path, files, version, source):
    assert target_of(tmp_path, files) == (version, source)


def test_configured_target_wins(tmp_path):
    files = {"requirements.txt": "sqlalchemy==1.3.24\n"}
    assert target_of(tmp_path, files, configured=(1, 4)) == ((1, 4), "configured in pyproject.toml")
    assert sqlalchemy_target(None, None) == SqlalchemyTarget((2, 0), "default: nothing configured or declared")
    assert sqlalchemy_target(str(tmp_path / "missing"), None).version == (2, 0)


def test_show_settings_names_the_target_and_its_source(tmp_path, monkeypatch):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "db.py").write_text("x = 1\n")
    (tmp_path / "setup.cfg").write_text("[options]\ninstall_requires = SQLAlchemy==1.3.24\n")
    monkeypatch.chdir(tmp_path)
    output = CliRunner().invoke(main, ["--show-settings", "app/db.py"], catch_exceptions=False).output
    assert f"target-sqlalchemy = '1.3.24' (declared in {tmp_path / 'setup.cfg'}: sqlalchemy ==1.3.24)" in output.splitlines()
    (tmp_path / "pyproject.toml").write_text('[tool.sessionlint]\ntarget-sqlalchemy = "1.4"\n')
    output = CliRunner().invoke(main, ["--show-settings", "app/db.py"], catch_exceptions=False).output
    assert f"target-sqlalchemy = '1.4' (configured in {tmp_path / 'pyproject.toml'})" in output.splitlines()
    (tmp_path / "pyproject.toml").write_text("[tool.sessionlint]\n")
    (tmp_path / "setup.cfg").unlink()
    output = CliRunner().invoke(main, ["--show-settings", "app/db.py"], catch_exceptions=False).output
    assert "target-sqlalchemy = '2.0' (default: nothing configured or declared)" in output.splitlines()


LEAK = "from app.db import SessionLocal\n\n\ndef rename(user, name):\n    db = SessionLocal()\n    db.merge(user).name = name\n    db.commit()\n"


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"requirements.txt": "SQLAlchemy==1.3.24\n"}, "    db = SessionLocal()\n    try:\n        db.merge(user).name = name\n        db.commit()\n    finally:\n        db.close()\n"),
        ({"requirements.txt": "SQLAlchemy>=1.4\n"}, "    with SessionLocal() as db:\n        db.merge(user).name = name\n        db.commit()\n"),
        # configured wins over declared
        (
            {"requirements.txt": "SQLAlchemy>=1.4\n", "pyproject.toml": '[tool.sessionlint]\ntarget-sqlalchemy = "1.3"\n'},
            "    db = SessionLocal()\n    try:\n        db.merge(user).name = name\n        db.commit()\n    finally:\n        db.close()\n",
        ),
    ],
    ids=["declared-1.3", "declared-1.4", "configured-1.3"],
)
def test_fix_follows_the_project_target(tmp_path, monkeypatch, files, expected):
    (tmp_path / "setup.py").write_text("")  # marks the project root, where declarations are read
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "users.py").write_text(LEAK)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--no-cache", "--fix", "app/users.py"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "app" / "users.py").read_text() == LEAK.split("    db = SessionLocal()\n")[0] + expected


def test_cached_results_follow_a_changed_target(tmp_path, monkeypatch):
    """The target is part of the cache's run key: results linted for one target are not
    answered for another."""
    (tmp_path / "pyproject.toml").write_text('[tool.sessionlint]\ntarget-sqlalchemy = "1.4"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "users.py").write_text(LEAK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SESSIONLINT_CACHE_DIR", str(tmp_path / "cache"))

    def help_text():
        result = CliRunner().invoke(main, ["--output-format", "json", "app"], catch_exceptions=False)
        (finding,) = json.loads(result.output)["diagnostics"]
        return finding["help"]

    assert help_text() == "Use `with SessionLocal() as db:`"
    assert (tmp_path / "cache" / "results.json").is_file()
    (tmp_path / "pyproject.toml").write_text('[tool.sessionlint]\ntarget-sqlalchemy = "1.3"\n')
    assert help_text() == "Put the code after `db = SessionLocal()` in `try:` and call `db.close()` in `finally:`"
