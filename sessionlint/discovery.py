"""Paths on the command line -> the Python files to lint."""

import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

from sessionlint.config import Configuration, Settings, nearest_upward

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


def discover(paths: Sequence[str], settings: Union[Settings, Configuration, None] = None) -> Discovery:
    """Files named on the command line are always linted (unless `force_exclude` and an
    exclude matches); directories are walked for `*.py` and `*.pyi`, skipping excluded
    directories, virtualenvs, the configured `exclude`/`extend-exclude` globs and, in a git
    checkout, what git ignores. Each path is judged by the settings that apply to it (its
    nearest configuration). Symbolic links to directories are not followed while walking (no
    loops, nothing outside the given roots). A file reached twice (a path given twice, once
    relative and once absolute) is linted once, under the first name."""
    configuration = settings if isinstance(settings, Configuration) else Configuration.fixed(settings or Settings())
    found = Discovery()
    seen = set()
    walked: List[str] = []

    def add(path: str, from_walk: bool) -> None:
        normal = os.path.normpath(path)
        key = os.path.abspath(normal)
        if key not in seen:
            seen.add(key)
            found.files.append(normal)
            if from_walk:
                walked.append(normal)

    for given in paths:
        if os.path.isdir(given):
            top = configuration.for_path(given)
            if top.force_exclude and top.is_excluded(given):
                continue
            for directory, subdirectories, filenames in _walk(given):
                here = configuration.for_path(directory, is_file=False)
                excludes = here.exclude + here.extend_exclude
                subdirectories[:] = sorted(
                    d
                    for d in subdirectories
                    if d not in EXCLUDED_DIRECTORIES
                    and not d.endswith(".egg-info")
                    and not _is_virtualenv(os.path.join(directory, d))
                    and not (excludes and configuration.for_path(os.path.join(directory, d), is_file=False).is_excluded(os.path.join(directory, d)))
                )
                for filename in sorted(filenames):
                    full = os.path.join(directory, filename)
                    if excludes and here.is_excluded(full):
                        continue
                    add(full, True)
        elif os.path.isfile(given):
            settings_here = configuration.for_path(given)
            if not (settings_here.force_exclude and settings_here.is_excluded(given)):
                add(given, False)
        elif os.path.lexists(given):
            found.errors.append(f"{given}: not a regular file or directory")
        else:
            found.errors.append(f"{given}: no such file or directory")
    respecting = [f for f in walked if configuration.for_path(f, is_file=True).respect_gitignore]
    if respecting:
        ignored = git_ignored(respecting)
        if ignored:
            found.files = [f for f in found.files if f not in ignored]
    return found


def _walk(top: str) -> Iterator[Tuple[str, List[str], List[str]]]:
    """(directory, its subdirectories, its Python files) from `top` down, as `os.walk`
    walks them (the caller may prune the subdirectories in place), without following
    symbolic links to directories. A file is a regular file or a link to one (broken links
    and sockets are left out), told from the directory entry without a stat where the file
    system says its type."""
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        subdirectories: List[str] = []
        files: List[str] = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.name)
                elif entry.name.endswith(PYTHON_SUFFIXES) and entry.is_file():
                    files.append(entry.name)
            except OSError:
                continue
        yield directory, subdirectories, files
        pending.extend(os.path.join(directory, d) for d in reversed(subdirectories))


def git_ignored(files: Sequence[str]) -> Set[str]:
    """The files git ignores (`.gitignore`, `.git/info/exclude`, the global excludes), asked
    of `git check-ignore` once per repository the files lie in; nothing for files outside a
    checkout or when git is missing."""
    by_repository: Dict[str, List[str]] = {}
    for path in files:
        top = _git_top(os.path.dirname(os.path.abspath(path)))
        if top is not None:
            by_repository.setdefault(top, []).append(path)
    ignored: Set[str] = set()
    for top, members in by_repository.items():
        ignored |= _check_ignore(top, members)
    return ignored


_GIT_TOPS: Dict[str, Optional[str]] = {}


def _git_top(directory: str) -> Optional[str]:
    """The nearest directory at or above `directory` holding `.git` (a directory, or the
    file of a worktree or submodule)."""
    return nearest_upward(directory, _GIT_TOPS, lambda d: d if os.path.exists(os.path.join(d, ".git")) else None)


def _check_ignore(top: str, files: Sequence[str]) -> Set[str]:
    import subprocess

    absolute = {os.path.abspath(f): f for f in files}
    try:
        completed = subprocess.run(
            ["git", "check-ignore", "--stdin", "-z"],
            input=b"\0".join(os.fsencode(f) for f in absolute),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=top,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    if completed.returncode not in (0, 1):  # 128: not a git checkout after all
        return set()
    ignored = (os.fsdecode(p) for p in completed.stdout.split(b"\0") if p)
    return {absolute[p] for p in ignored if p in absolute}


# A directory holding one of these is a project's root (the first found upward).
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


_ROOTS: Dict[str, Optional[str]] = {}


def project_root(start: str, settings: Settings, is_file: bool = False) -> Optional[str]:
    """The root of the project `start` lies in: the directory of the configuration file,
    or the nearest directory upward holding a pyproject.toml, setup.py, setup.cfg or .git;
    None outside any project. `is_file`: the caller knows `start` is a file (no stat)."""
    if settings.config_file:
        return os.path.dirname(os.path.abspath(settings.config_file))
    directory = os.path.abspath(start)
    if is_file or not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    return nearest_upward(directory, _ROOTS, _marked)


def _marked(directory: str) -> Optional[str]:
    try:
        names = set(os.listdir(directory))
    except OSError:
        return None
    return directory if not names.isdisjoint(PROJECT_MARKERS) else None


def project_context(
    root: str, given: Sequence[str], linted: Sequence[str], settings: Union[Settings, Configuration], relative: Optional[bool] = None
) -> List[str]:
    """The other files of the project at `root` when only some of it is linted (a pre-commit
    hook passes the changed files): the project pass reads them too, so a factory defined in
    an unchanged module is known, and a file gets the findings a run over the whole project
    gives it. Empty when a given directory covers the project root (then every file of the
    project is linted). Paths are relative to the current directory when `relative` (by
    default: when no given path is absolute), so that relative imports resolve between them
    and the linted files."""
    given = [p for p in given if p != "-"]
    for path in given:
        absolute = os.path.abspath(path)
        if absolute == root or (os.path.isdir(absolute) and root.startswith(absolute.rstrip(os.sep) + os.sep)):
            return []
    linted_here = {os.path.abspath(f) for f in linted}
    if relative is None:
        relative = not any(os.path.isabs(p) for p in given)
    context = []
    for path in discover([root], settings).files:
        absolute = os.path.abspath(path)
        if absolute not in linted_here:
            context.append(_relative_or_absolute(absolute, relative))
    return context


def _relative_or_absolute(absolute: str, relative: bool) -> str:
    if not relative:
        return absolute
    try:
        return os.path.relpath(absolute)
    except ValueError:  # another drive on Windows
        return absolute
