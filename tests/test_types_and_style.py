"""mypy (configured in pyproject.toml) reports nothing, and ruff's checks (pyflakes, import
order) pass: run as tests, so that CI runs them with the rest."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mypy_is_clean():
    pytest.importorskip("mypy", reason="mypy runs on Python 3.10+")
    completed = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_type_ignores_are_few_and_explained():
    found = []
    for directory, _, files in os.walk(os.path.join(ROOT, "sessionlint")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    for number, line in enumerate(handle, 1):
                        if "type: ignore" in line:
                            found.append((name, number, line.split("type: ignore", 1)[1]))
    assert len(found) <= 20, found
    assert all("#" in rest for _, _, rest in found), "each `type: ignore` says why, in a comment after it"


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    completed = subprocess.run([ruff, "check", "sessionlint", "tests", "scripts", "benchmarks"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
