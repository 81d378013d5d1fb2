"""Paths on the command line -> the Python files to lint."""

import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Set

from sessionlint.config import Settings

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


def discover(paths: Sequence[str], settings: Optional[Settings] = None) -> Discovery:
    """Files named on the command line are always linted (unless `force_exclude` and an
    exclude matches); directories are walked for `*.py` and `*.pyi`, skipping excluded
    directories, virtualenvs, the configured `exclude`/`extend-exclude` globs and, in a git
    checkout, what git ignores. Symbolic links to directories are not followed while walking
    (no loops, nothing outside the given roots)."""
    settings = settings or Settings()
    found = Discovery()
    seen = set()
    walked: List[str] = []
    excludes = settings.exclude + settings.extend_exclude

    def add(path: str, from_walk: bool) -> None:
        normal = os.path.normpath(path)
        if normal not in seen:
            seen.add(normal)
            found.files.append(normal)
            if from_walk:
                walked.append(normal)

    for given in paths:
        if os.path.isdir(given):
            if excludes and settings.force_exclude and settings.is_excluded(given):
                continue
            for directory, subdirectories, filenames in os.walk(given, followlinks=False):
                subdirectories[:] = sorted(
                    d
                    for d in subdirectories
                    if d not in EXCLUDED_DIRECTORIES
                    and not d.endswith(".egg-info")
                    and not _is_virtualenv(os.path.join(directory, d))
                    and not (excludes and settings.is_excluded(os.path.join(directory, d)))
                )
                for filename in sorted(filenames):
                    if filename.endswith(PYTHON_SUFFIXES):
                        full = os.path.join(directory, filename)
                        if excludes and settings.is_excluded(full):
                            continue
                        if os.path.isfile(full):  # skips broken links and sockets
                            add(full, True)
        elif os.path.isfile(given):
            if not (settings.force_exclude and settings.is_excluded(given)):
                add(given, False)
        elif os.path.lexists(given):
            found.errors.append(f"{given}: not a regular file or directory")
        else:
            found.errors.append(f"{given}: no such file or directory")
    if walked and settings.respect_gitignore:
        ignored = git_ignored(walked)
        if ignored:
            found.files = [f for f in found.files if f not in ignored]
    return found


def git_ignored(files: Sequence[str]) -> Set[str]:
    """The files git ignores (`.gitignore`, `.git/info/exclude`, the global excludes), asked
    of `git check-ignore` once per run; nothing when git is missing or this is no checkout."""
    import subprocess

    absolute = {os.path.abspath(f): f for f in files}
    try:
        completed = subprocess.run(
            ["git", "check-ignore", "--stdin", "-z"],
            input=b"\0".join(os.fsencode(f) for f in absolute),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=os.path.dirname(next(iter(absolute))),  # inside the checkout being linted
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError, StopIteration):
        return set()
    if completed.returncode not in (0, 1):  # 128: not a git checkout (or outside it)
        return set()
    ignored = (os.fsdecode(p) for p in completed.stdout.split(b"\0") if p)
    return {absolute[p] for p in ignored if p in absolute}


# A directory holding one of these is a project's root (the first found upward).
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_root(start: str, settings: Settings) -> Optional[str]:
    """The root of the project `start` lies in: the directory of the configuration file,
    or the nearest directory upward holding a pyproject.toml, setup.py, setup.cfg or .git;
    None outside any project."""
    if settings.config_file:
        return os.path.dirname(os.path.abspath(settings.config_file))
    directory = os.path.abspath(start)
    if not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    while True:
        if any(os.path.exists(os.path.join(directory, marker)) for marker in PROJECT_MARKERS):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def project_context(paths: Sequence[str], files: Sequence[str], settings: Settings) -> List[str]:
    """The other files of the project when only some of it is linted (a pre-commit hook
    passes the changed files): the project pass reads them too, so a factory defined in an
    unchanged module is known, and a file gets the same findings as in a run over the whole
    project. Empty when a given directory already covers the project root, or a path lies
    outside it. Paths come in the form of the given ones: relative to the current directory
    when those are relative (relative imports resolve between them)."""
    given = [p for p in paths if p != "-"]
    if not given:
        return []
    root = project_root(given[0], settings)
    if root is None:
        return []
    for path in given:
        absolute = os.path.abspath(path)
        if absolute == root or (os.path.isdir(absolute) and root.startswith(absolute + os.sep)):
            return []
        if not absolute.startswith(root + os.sep):
            return []
    linted = {os.path.abspath(f) for f in files}
    relative = not any(os.path.isabs(p) for p in given)
    context = []
    for path in discover([root], settings).files:
        absolute = os.path.abspath(path)
        if absolute not in linted:
            context.append(os.path.relpath(absolute) if relative else absolute)
    return context
