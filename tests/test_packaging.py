"""The package builds (sdist and wheel), passes `twine check`, carries one version, and a
release is one command (scripts/release.py, tried on a clone of this repository)."""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from sessionlint import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build(source: str, out: str) -> list:
    subprocess.run([sys.executable, "-m", "build", "--outdir", out, source], check=True, capture_output=True, timeout=600)
    return sorted(os.path.join(out, name) for name in os.listdir(out))


@pytest.mark.slow
def test_sdist_and_wheel_build_and_pass_twine_check(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("twine")
    built = _build(ROOT, str(tmp_path))
    assert [os.path.basename(p) for p in built] == [f"sessionlint-{__version__}-py3-none-any.whl", f"sessionlint-{__version__}.tar.gz"]
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *built], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with zipfile.ZipFile(built[0]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"sessionlint-{__version__}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"sessionlint-{__version__}.dist-info/entry_points.txt").decode()
    assert "sessionlint/rules/session_not_closed.py" in names and not any(n.startswith("tests/") for n in names)
    assert f"Version: {__version__}\n" in metadata and "License-Expression: MIT\n" in metadata
    assert "sessionlint = sessionlint.cli:entry" in entry_points
    with tarfile.open(built[1]) as sdist:
        members = sdist.getnames()
    assert f"sessionlint-{__version__}/LICENSE" in members and f"sessionlint-{__version__}/README.md" in members


@pytest.mark.slow
def test_release_is_one_command(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("twine")
    if not os.path.isdir(os.path.join(ROOT, ".git")) or shutil.which("git") is None:
        pytest.skip("needs a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    for key, value in (("user.name", "Release Test"), ("user.email", "release@test.invalid")):
        subprocess.run(["git", "config", key, value], cwd=clone, check=True)
    script = [sys.executable, "scripts/release.py"]
    refused = subprocess.run([*script, "0.0.1"], cwd=clone, capture_output=True, text=True, timeout=60)
    assert (refused.returncode, refused.stderr) == (2, f"release: error: 0.0.1 is not newer than {__version__}\n")
    released = subprocess.run([*script, "99.0.0", "--date", "2030-01-02"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert released.returncode == 0, released.stdout + released.stderr
    assert '__version__ = "99.0.0"' in (clone / "sessionlint" / "__init__.py").read_text()
    assert "## Unreleased\n\n## 99.0.0 (2030-01-02)\n" in (clone / "CHANGELOG.md").read_text()
    assert sorted(os.listdir(clone / "dist")) == ["sessionlint-99.0.0-py3-none-any.whl", "sessionlint-99.0.0.tar.gz"]
    tag = subprocess.run(["git", "describe", "--tags"], cwd=clone, capture_output=True, text=True, check=True).stdout
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=clone, capture_output=True, text=True, check=True).stdout
    assert (tag, status) == ("v99.0.0\n", "")
