"""The framework versions a project runs on, read from its dependency files, and the SL008
finding they decide (a request session handed to a FastAPI background task)."""

import json
import textwrap

import pytest
from click.testing import CliRunner

from sessionlint.cli import main
from sessionlint.project.versions import VersionRange, project_versions, range_of


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
