"""`--clean` removes only what the cache wrote, and a `cache-dir` that would make it (or a
run) touch the project is a configuration error: exit 2, nothing removed, nothing written."""

import os
import subprocess
import sys

import pytest

LEAK = "from app.db import SessionLocal\n\n\ndef leak():\n    db = SessionLocal()\n    db.execute('x')\n"


def make_project(root, cache_dir=None):
    root.mkdir(exist_ok=True)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "src").mkdir()
    (root / "src" / "leak.py").write_text(LEAK)
    setting = f"cache-dir = {cache_dir!r}\n".replace("'", '"') if cache_dir is not None else ""
    (root / "pyproject.toml").write_text("[tool.sessionlint]\n" + setting)
    return root


def sessionlint(args, cwd, **environment):
    env = {k: v for k, v in os.environ.items() if k != "SESSIONLINT_CACHE_DIR"}
    env.update(environment)
    return subprocess.run([sys.executable, "-m", "sessionlint", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def snapshot(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


@pytest.mark.parametrize("cache_dir", [".", "..", "src", "./src/../"])
@pytest.mark.parametrize("command", [["--clean"], ["."]])
def test_cache_dir_that_holds_the_project_is_a_configuration_error(tmp_path, cache_dir, command):
    root = make_project(tmp_path / "project", cache_dir)
    before = snapshot(tmp_path)
    completed = sessionlint(command, root)
    assert completed.returncode == 2, completed
    assert completed.stdout == ""
    assert completed.stderr.startswith(f"sessionlint: error: {root / 'pyproject.toml'}: `tool.sessionlint.cache-dir`: ")
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.splitlines()) == 1
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("variable", [".", "..", "src"])
def test_environment_cache_dir_is_checked_too(tmp_path, variable):
    root = make_project(tmp_path / "project")
    before = snapshot(tmp_path)
    completed = sessionlint(["--clean"], root, SESSIONLINT_CACHE_DIR=variable)
    assert completed.returncode == 2
    assert "SESSIONLINT_CACHE_DIR" in completed.stderr and len(completed.stderr.splitlines()) == 1
    assert snapshot(tmp_path) == before


def test_nul_in_cache_dir_is_a_configuration_error(tmp_path):
    root = make_project(tmp_path / "project")
    (root / "pyproject.toml").write_text('[tool.sessionlint]\ncache-dir = "a\\u0000b"\n')
    completed = sessionlint(["."], root)
    assert completed.returncode == 2
    assert "NUL" in completed.stderr and "Traceback" not in completed.stderr


def test_clean_leaves_a_directory_with_other_files_alone(tmp_path):
    root = make_project(tmp_path / "project", "cache")
    assert sessionlint(["-q", "."], root).returncode == 1
    assert sorted(os.listdir(root / "cache")) == [".gitignore", "CACHEDIR.TAG", "project.json", "results.json"]
    (root / "cache" / "notes.txt").write_text("a user's file")
    before = snapshot(tmp_path)
    completed = sessionlint(["--clean"], root)
    assert completed.returncode == 2 and "not a sessionlint cache directory" in completed.stderr
    assert snapshot(tmp_path) == before


def test_clean_removes_only_its_own_files(tmp_path):
    root = make_project(tmp_path / "project", "cache")
    assert sessionlint(["-q", "."], root).returncode == 1
    (root / "cache" / ".results.json.abc.sessionlint-tmp").write_bytes(b"left by a killed run")
    completed = sessionlint(["--clean"], root)
    assert completed.returncode == 0, completed.stderr
    assert not (root / "cache").exists()
    assert snapshot(root) == [".git/HEAD", "pyproject.toml", "src/leak.py"]


def test_cache_dir_inside_the_project_is_fine(tmp_path):
    root = make_project(tmp_path / "project", "build/lint-cache")
    completed = sessionlint(["-q", "."], root)
    assert completed.returncode == 1 and completed.stderr == ""
    assert (root / "build" / "lint-cache" / "results.json").is_file()
