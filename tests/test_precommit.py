"""The real pre-commit, on a temporary git repository whose `.pre-commit-config.yaml` uses
this checkout's `.pre-commit-hooks.yaml` at its current commit: it fails on a leaking file,
`sessionlint-fix` fixes it, and the check then passes. Slow (pre-commit installs the hook's
environment from the checkout); CI runs it."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAK = "from myapp.db import SessionLocal\n\n\ndef leak():\n    db = SessionLocal()\n    db.execute('select 1')\n"


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.slow
def test_pre_commit_hooks(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not available")
    try:
        head = git("rev-parse", "HEAD", cwd=ROOT)
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout")
    pre_commit = [sys.executable, "-m", "pre_commit"]
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "app.py").write_text(LEAK)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {ROOT}\n    rev: {head}\n    hooks:\n      - id: sessionlint\n"
    )
    git("add", ".", cwd=repo)
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    failing = subprocess.run([*pre_commit, "run", "--all-files"], cwd=repo, capture_output=True, text=True, env=env)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "app.py:5:10: SL001 [*] session `db` is never closed" in failing.stdout

    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {ROOT}\n    rev: {head}\n    hooks:\n      - id: sessionlint-fix\n"
    )
    git("add", ".", cwd=repo)
    subprocess.run([*pre_commit, "run", "--all-files"], cwd=repo, capture_output=True, text=True, env=env)
    assert "with SessionLocal() as db:" in (repo / "app.py").read_text()
    git("add", ".", cwd=repo)
    passing = subprocess.run([*pre_commit, "run", "--all-files"], cwd=repo, capture_output=True, text=True, env=env)
    assert passing.returncode == 0, passing.stdout + passing.stderr
