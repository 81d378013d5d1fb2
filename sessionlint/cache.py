"""Results per file, keyed by content hash, tool version, effective settings and the project
facts that cross files (the factory index), in `.sessionlint_cache/`.

A warm run over an unchanged tree reads every file (to hash it), runs the project pass from
cached per-file scans, and parses nothing. Any change to the cross-file facts (a factory
defined, renamed or removed anywhere, a `Depends` target, an import) changes the run key and
so invalidates every entry: coarse, but never stale.
"""

import functools
import os
import pickle
import tempfile
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from sessionlint import __version__
from sessionlint.fixes.files import blake2b, interrupts_held

_FORMAT = 5
_MAX_ENTRIES = 200_000
# The stored tables, in two files: the results per file, and the project pass's scans and
# text facts per content hash (the larger part: a run saves it while its helper still parses).
_FILES = {"results.pickle": ("files",), "project.pickle": ("scans", "texts", "checks")}
_TABLES = tuple(table for tables in _FILES.values() for table in tables)
PROJECT_TABLES = _FILES["project.pickle"]


@functools.lru_cache(maxsize=None)
def code_key() -> str:
    """The tool's own code: sizes and modification times of the package's modules, so that
    an editable install or a checkout that changes the analysis never reads stale results
    under an unchanged version number (about 40 stat calls)."""
    package = os.path.dirname(os.path.abspath(__file__))
    parts = []
    for directory, _, files in os.walk(package):
        for name in sorted(files):
            if name.endswith(".py"):
                try:
                    status = os.stat(os.path.join(directory, name))
                except OSError:
                    continue
                parts.append((os.path.relpath(os.path.join(directory, name), package), status.st_size, status.st_mtime_ns))
    return blake2b(repr(sorted(parts)).encode(), digest_size=8).hexdigest()


def fingerprint(settings: Any, codes: Iterable[str], index: Any) -> str:
    """The run key: what, besides a file's own bytes, its result depends on."""
    factories = sorted(
        (path, name, factory.kind.value, factory.is_async, factory.origin)
        for path, facts in index.modules.items()
        for name, factory in facts.factories.items()
    )
    parts = (
        __version__,
        code_key(),
        sorted(codes),
        settings.prefilter,
        sorted(settings.session_factories),
        sorted(settings.engine_factories),
        sorted(settings.request_decorators),
        factories,
        sorted(index.depends_targets),
        sorted(index.async_dependencies),
        sorted(index.session_aliases.items()),
        sorted(index.imported_names),
        sorted(index.module_stems.items()),
    )
    return blake2b(repr(parts).encode(), digest_size=16).hexdigest()


class Cache:
    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory
        self.files: Dict[str, Tuple[str, str, Any]] = {}  # path -> (run key, digest, FileResult)
        self.scans: Dict[str, Any] = {}  # digest -> project-pass scan of that content
        self.texts: Dict[str, Any] = {}  # digest -> project-pass text facts of that content
        # (learnt factory names, digest) -> why the project pass may rescan that content for
        # those names (analysis.index.rescan_reasons)
        self.checks: Dict[Tuple[str, str], Any] = {}
        self.dirty: Set[str] = set()  # the tables changed since loaded or saved

    @classmethod
    def disabled(cls) -> "Cache":
        return cls(None)

    @classmethod
    def open(cls, directory: str) -> "Cache":
        cache = cls(directory)
        for name, tables in _FILES.items():
            try:
                with open(os.path.join(directory, name), "rb") as handle:
                    stored = pickle.load(handle)
                if stored.get("format") == _FORMAT and stored.get("version") == (__version__, code_key()):
                    for table in tables:
                        setattr(cache, table, stored[table])
            except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError, ImportError):
                pass  # no cache, or one from another version: start empty
        return cache

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    @staticmethod
    def digest(data: bytes) -> str:
        return blake2b(data, digest_size=16).hexdigest()

    def get(self, run_key: str, path: str, digest: str) -> Optional[Any]:
        entry = self.files.get(path)
        if entry is not None and entry[0] == run_key and entry[1] == digest:
            return entry[2]
        return None

    def put(self, run_key: str, path: str, digest: str, result: Any) -> None:
        if self.enabled:
            self.files[path] = (run_key, digest, result)
            self.dirty.add("files")

    def get_scan(self, digest: str) -> Optional[Any]:
        return self.scans.get(digest)

    def put_scan(self, digest: str, scan: Any) -> None:
        if self.enabled:
            self.scans[digest] = scan
            self.dirty.add("scans")

    def get_text(self, digest: str) -> Optional[Any]:
        return self.texts.get(digest)

    def put_text(self, digest: str, facts: Any) -> None:
        if self.enabled:
            self.texts[digest] = facts
            self.dirty.add("texts")

    def get_check(self, names: str, digest: str) -> Optional[Any]:
        return self.checks.get((names, digest))

    def put_check(self, names: str, digest: str, reason: Any) -> None:
        if self.enabled and self.checks.get((names, digest)) != reason:
            self.checks[(names, digest)] = reason
            self.dirty.add("checks")

    def save(self, tables: Iterable[str] = _TABLES) -> None:
        """Write the files holding the changed ones of `tables`, each atomically (temporary
        file + rename) so an interrupted run leaves the old file or the new one, never half
        of one. A cache that cannot be written is skipped."""
        if not self.enabled:
            return
        wanted = self.dirty & set(tables)
        directory = self.directory
        assert directory is not None
        for name, stored in _FILES.items():
            if not wanted & set(stored):
                continue
            try:
                os.makedirs(directory, exist_ok=True)
                ignore = os.path.join(directory, ".gitignore")
                if not os.path.exists(ignore):
                    with open(ignore, "w") as handle:
                        handle.write("# Created by sessionlint.\n*\n")
                payload: Dict[str, Any] = {"format": _FORMAT, "version": (__version__, code_key())}
                for table in stored:  # the newest entries of each, up to the limit
                    entries = getattr(self, table)
                    if len(entries) > _MAX_ENTRIES:
                        setattr(self, table, dict(list(entries.items())[-_MAX_ENTRIES:]))
                    payload[table] = getattr(self, table)
                with interrupts_held():
                    handle_fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
                    try:
                        with os.fdopen(handle_fd, "wb") as handle:
                            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
                        os.replace(temporary, os.path.join(directory, name))
                    except BaseException:
                        os.unlink(temporary)
                        raise
            except OSError:
                continue
            self.dirty -= set(stored)


def clean(directory: str) -> bool:
    """Remove the cache directory; True if there was one."""
    import shutil

    if os.path.isdir(directory):
        shutil.rmtree(directory, ignore_errors=True)
        return True
    return False
