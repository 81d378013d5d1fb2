"""Paths on the command line -> the Python files to lint."""

import os
from dataclasses import dataclass, field
from typing import List, Sequence

# Directories never entered when walking: VCS data, caches, build output, dependencies.
EXCLUDED_DIRECTORIES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "build",
        "dist",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".sessionlint_cache",
        ".eggs",
        "site-packages",
    }
)
PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass
class Discovery:
    files: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)  # one line each: path and what is wrong


def _is_virtualenv(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "pyvenv.cfg"))


def discover(paths: Sequence[str]) -> Discovery:
    """Files named on the command line are always linted; directories are walked for `*.py`
    and `*.pyi`, skipping excluded directories and virtualenvs. Symbolic links to directories
    are not followed while walking (no loops, nothing outside the given roots)."""
    found = Discovery()
    seen = set()

    def add(path: str) -> None:
        normal = os.path.normpath(path)
        if normal not in seen:
            seen.add(normal)
            found.files.append(normal)

    for given in paths:
        if os.path.isdir(given):
            for directory, subdirectories, filenames in os.walk(given, followlinks=False):
                subdirectories[:] = sorted(
                    d
                    for d in subdirectories
                    if d not in EXCLUDED_DIRECTORIES
                    and not d.endswith(".egg-info")
                    and not _is_virtualenv(os.path.join(directory, d))
                )
                for filename in sorted(filenames):
                    if filename.endswith(PYTHON_SUFFIXES):
                        full = os.path.join(directory, filename)
                        if os.path.isfile(full):  # skips broken links and sockets
                            add(full)
        elif os.path.isfile(given):
            add(given)
        elif os.path.lexists(given):
            found.errors.append(f"{given}: not a regular file or directory")
        else:
            found.errors.append(f"{given}: no such file or directory")
    return found
