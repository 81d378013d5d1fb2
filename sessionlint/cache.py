"""Results per file, keyed by content hash, tool version, effective settings and the project
facts that cross files (the factory index), in `.sessionlint_cache/`.

A warm run over an unchanged tree runs the project pass from cached per-file scans and parses
nothing. It reads and hashes only the files whose status changed: a file's hash is trusted
from its status (modification and change times, size, inode, device) when both match what
was recorded, and a status is recorded only when the file was last changed well before the
run read it, so that a later write within the file system's clock resolution cannot keep
the same status (git's "racily clean" rule). Any change to the cross-file facts (a factory
defined, renamed or removed anywhere, a `Depends` target, an import) changes the run key and
so invalidates every entry: coarse, but never stale. What other files say of one file's own
functions (which run per request, which registries are removed elsewhere) is in that file's
key only (`file_keys`).

The cache lives in the linted tree, so it is untrusted input: a repository may commit one,
and anything may damage it. It is therefore plain JSON (whose loading runs no code), each
file a header line (format, tool version, length and BLAKE2b checksum of the body) and a
body; the header is checked first, then the checksum, then the shape of every entry. A cache
that fails any check is not used (the run is cold, with the same findings) and the run says
so in one line. Files are opened without following symbolic links, regular files only, up
to a size limit; writes go through a temporary file and an atomic rename, so concurrent runs
leave one whole file or the other. `--clean` removes only the files this module writes.
"""

import functools
import json
import os
import stat
from hashlib import blake2b
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from sessionlint import __version__
from sessionlint.cache_codecs import _CODECS, CacheError, _decode_key, _dict, _encode_key, _expect
from sessionlint.config import ConfigError

_FORMAT = 21
_MAX_ENTRIES = 200_000
# A cache file larger than this is not read (far more than the results of a large tree take).
MAX_FILE_BYTES = 512 << 20
# The stored tables, in two files: the results per file, and the project pass's scans, text
# facts, checks and call sites per content hash.
_FILES = {"results.json": ("files", "stamps", "states"), "project.json": ("scans", "texts", "checks", "calls", "requests")}
# A file's status is recorded only when its last change is this much older than the run.
RACY_NS = 2_000_000_000
# How many answers of the per-request search, and how many project states, are kept: one
# per state of a project's files, for every project a run over many of them meets (a run
# over the precision corpus meets dozens), and a few older states of each.
_MAX_PROJECT_ANSWERS = 512
_TABLES = tuple(table for tables in _FILES.values() for table in tables)
PROJECT_TABLES = _FILES["project.json"]
# What the cache directory holds besides its tables: a .gitignore and a CACHEDIR.TAG
# (https://bford.info/cachedir/), both of which mark the directory as this cache's.
_GITIGNORE = "# Created by sessionlint.\n*\n"
_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by sessionlint.\n"
_MARKERS = {".gitignore": _GITIGNORE, "CACHEDIR.TAG": _TAG}
# Files of earlier formats that `--clean` removes too.
_OLD_FILES = ("results.pickle", "project.pickle")


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


def index_summary(index: Any) -> Tuple[str, Dict[str, str]]:
    """What the results depend on of a project's index: the hash of what the project pass
    concluded across files (every file may read it), and per file the hash of what other
    files say of its own functions and registries (which of its functions run per request,
    a handler in another module calls them; which of its registries another module
    removes). A project state (`Cache.get_state`) stores both, so that a run over unchanged
    files builds no index."""
    from sessionlint.knowledge import FactoryKind

    factories = sorted(
        (path, name, factory.kind.value, factory.is_async, factory.origin.name, factory.detail)
        for path, facts in index.modules.items()
        for name, factory in facts.factories.items()
    )
    parts = (
        factories,
        sorted(index.depends_targets),
        sorted(index.async_dependencies),
        sorted(index.session_aliases.items()),
        sorted(index.imported_names),
        sorted(index.module_stems.items()),
        sorted(
            (path, sorted((n, f.kind.value, f.is_async) for n, f in facts.generators.items()), sorted(facts.registries),
             facts.builds, sorted(facts.holders.items()))
            for path, facts in index.modules.items()
        ),
        sorted(index.released_names),
        sorted((path, sorted(found.items())) for path, found in index.committers.items()),
        sorted((path, sorted(found.items())) for path, found in index.runners.items()),
        sorted((path, sorted(found)) for path, found in index.lazy_callables.items()),
        sorted((path, sorted(found)) for path, found in index.connection_properties.items()),
        sorted((path, sorted(found.items())) for path, found in index.closers.items()),
        index.serves_requests,
        sorted((name, repr(versions)) for name, versions in index.versions.items()),
        index.sqlalchemy.version,
    )
    own: Dict[str, List[Any]] = {}
    for (path, qualified), why in sorted(index.per_request.items()):
        own.setdefault(path, []).append((qualified, why))
    for path, name in sorted(index.released):
        facts = index.modules.get(path)
        factory = facts.factories.get(name) if facts is not None else None
        if factory is not None and factory.kind is FactoryKind.REGISTRY:
            own.setdefault(path, []).append(name)
    own_hashes = {path: blake2b(repr(found).encode(), digest_size=16).hexdigest() for path, found in own.items()}
    return blake2b(repr(parts).encode(), digest_size=16).hexdigest(), own_hashes


def fingerprint(settings: Any, codes: Iterable[str], index_key: str) -> str:
    """The run key: what, besides a file's own bytes, its result depends on (`index_key`:
    the first item of `index_summary`)."""
    parts = (
        __version__,
        code_key(),
        sorted(codes),
        settings.prefilter,
        sorted(settings.session_factories),
        sorted(settings.engine_factories),
        sorted(settings.request_decorators),
        index_key,
    )
    return blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def file_keys(run_key: str, own: Dict[str, str]) -> Dict[str, str]:
    """The key of each file whose findings depend on what other files say of its own
    functions and registries (`own`: the second item of `index_summary`); other files use
    the run key."""
    return {path: blake2b(repr((run_key, found)).encode(), digest_size=16).hexdigest() for path, found in own.items()}


def state_key(parts: Any) -> str:
    """The key of a project's state: everything its index is built from (the caller's
    `parts`: the root, the settings the project pass reads, every file's path and digest,
    the declared versions)."""
    return blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _header_version() -> List[Any]:
    return [__version__, code_key()]


def _checksum(body: bytes) -> str:
    return blake2b(body, digest_size=32).hexdigest()


def _read_regular_file(path: str) -> bytes:
    """The bytes of `path` if it is a regular file (a symbolic link is not followed, a FIFO
    or device never waited on) of at most MAX_FILE_BYTES; OSError otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not hasattr(os, "O_NOFOLLOW") and os.path.islink(path):
        raise OSError(f"{path} is a symbolic link")
    fd = os.open(path, flags)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        if status.st_size > MAX_FILE_BYTES:
            raise OSError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        chunks = []
        remaining = MAX_FILE_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 22))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > MAX_FILE_BYTES:
            raise OSError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        return data
    finally:
        os.close(fd)


def decode_file(data: bytes, tables: Iterable[str]) -> Optional[Dict[str, Dict[Any, Any]]]:
    """The tables stored in one cache file's bytes; None when it was written by another
    format or version of the tool (not an error: a cold run replaces it). CacheError when
    the bytes are damaged or not of this format's shape."""
    header_line, newline, body = data.partition(b"\n")
    if not newline:
        raise CacheError("no header line")
    try:
        header = json.loads(header_line)
    except (ValueError, RecursionError) as error:
        raise CacheError(f"unreadable header ({error})") from None
    _expect(type(header) is dict, "a header object")
    if header.get("format") != _FORMAT or header.get("version") != _header_version():
        return None
    _expect(header.get("length") == len(body), "the recorded length")
    _expect(header.get("checksum") == _checksum(body), "the recorded checksum")
    try:
        stored = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise CacheError(f"unreadable body ({error})") from None
    _expect(type(stored) is dict and set(stored) == set(tables), "the tables of this file")
    found: Dict[str, Dict[Any, Any]] = {}
    for table in tables:
        decode = _CODECS[table][1]
        entries = {}
        for key, value in _dict(stored[table]).items():
            entries[_decode_key(table, key)] = decode(value)
        found[table] = entries
    return found


def encode_file(tables: Dict[str, Dict[Any, Any]]) -> bytes:
    body = json.dumps(
        {table: {_encode_key(table, key): _CODECS[table][0](value) for key, value in entries.items()} for table, entries in tables.items()},
        separators=(",", ":"),
        ensure_ascii=True,  # paths that are not UTF-8 (surrogate escapes) survive as \udcxx
    ).encode("ascii")
    header = {"format": _FORMAT, "version": _header_version(), "length": len(body), "checksum": _checksum(body)}
    return json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n" + body


class Cache:
    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory
        self.files: Dict[str, Tuple[str, str, Any]] = {}  # path -> (run key, digest, FileResult)
        # path -> (its status when read, the digest of its bytes, whether SL100 may report in it)
        self.stamps: Dict[str, Tuple[Tuple[int, ...], str, bool]] = {}
        self.scans: Dict[str, Any] = {}  # digest -> project-pass scan of that content
        self.texts: Dict[str, Any] = {}  # digest -> project-pass text facts of that content
        # (learnt factory names, digest) -> why the project pass may rescan that content for
        # those names (project.builder.rescan_reasons)
        self.checks: Dict[Tuple[str, str], Any] = {}
        # (names searched, digest) -> the call sites of those names in that content
        # (project.calls.find_per_request)
        self.calls: Dict[Tuple[str, str], Any] = {}
        # the hash of a project's files and settings -> the per-request search's answer
        # (project.calls.find_per_request)
        self.requests: Dict[str, Any] = {}
        # the key of a project's state (`state_key`) -> what `index_summary` said of its index
        self.states: Dict[str, Tuple[str, Dict[str, str]]] = {}
        # project.json, read when one of its tables is first asked for (a run over unchanged
        # files answers from results.json alone)
        self.unread: Optional[str] = None
        self.dirty: Set[str] = set()  # the tables changed since loaded or saved
        # Why the stored cache was not used (damaged, not a regular file...), for one line
        # of the run's output; None when it was used, missing, or from another version.
        self.problem: Optional[str] = None

    @classmethod
    def disabled(cls) -> "Cache":
        return cls(None)

    @classmethod
    def open(cls, directory: str) -> "Cache":
        cache = cls(directory)
        if os.path.islink(directory):
            cache.problem = f"the cache directory {directory} is a symbolic link; it is not used"
            cache.directory = None
            return cache
        cache._load("results.json")
        cache.unread = "project.json"
        return cache

    def _load(self, name: str) -> None:
        """Read the tables of one cache file; a file that cannot be used leaves them empty
        and says why in `problem`."""
        assert self.directory is not None
        path = os.path.join(self.directory, name)
        try:
            data = _read_regular_file(path)
        except FileNotFoundError:
            return
        except OSError as error:
            if os.path.lexists(path):
                self.problem = f"cannot read the cache file {path} ({error.strerror or error}); it is not used"
            return
        try:
            stored = decode_file(data, _FILES[name])
        except (CacheError, ValueError, TypeError, KeyError) as error:
            self.problem = f"the cache file {path} is damaged ({error}); linting without it"
            return
        if stored is not None:
            for table, entries in stored.items():
                setattr(self, table, entries)

    def load_project_tables(self) -> None:
        """Read project.json if it was not read yet (its tables are asked for)."""
        if self.unread is not None and self.directory is not None:
            name, self.unread = self.unread, None
            self._load(name)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    @staticmethod
    def digest(data: bytes) -> str:
        return blake2b(data, digest_size=16).hexdigest()

    def get(self, run_key: str, path: str, digest: str) -> Optional[Any]:
        entry = self.files.get(path)
        if entry is not None and entry[0] == run_key and entry[1] == digest and entry[2].path == path:
            return entry[2]
        return None

    def put(self, run_key: str, path: str, digest: str, result: Any) -> None:
        if self.enabled:
            self.files[path] = (run_key, digest, result)
            self.dirty.add("files")

    @staticmethod
    def stamp(path: str) -> Optional[Tuple[int, ...]]:
        """The status of the regular file at `path` that identifies its bytes, or None."""
        try:
            return Cache.stamp_of(os.stat(path))
        except (OSError, ValueError):
            return None

    @staticmethod
    def stamp_of(status: os.stat_result) -> Optional[Tuple[int, ...]]:
        if not stat.S_ISREG(status.st_mode):
            return None
        return (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino, status.st_dev)

    def get_stamp(self, path: str, stamp: Optional[Tuple[int, ...]]) -> Optional[Tuple[str, bool]]:
        """(digest, SL100 mark) of `path`'s bytes when its status is the one recorded."""
        entry = self.stamps.get(path)
        if entry is None or stamp is None or entry[0] != stamp:
            return None
        return entry[1], entry[2]

    def put_stamp(self, path: str, stamp: Optional[Tuple[int, ...]], digest: str, mark: bool, started_ns: int) -> None:
        """Record the status `path` had before its bytes (hashed to `digest`) were read, if
        its last change is old enough, compared to `started_ns` (the run's start, before any
        read), that a later write must change it."""
        if not self.enabled or stamp is None:
            return
        if max(stamp[0], stamp[1]) > started_ns - RACY_NS:
            return
        entry = (stamp, digest, mark)
        if self.stamps.get(path) != entry:
            self.stamps[path] = entry
            self.dirty.add("stamps")

    def get_scan(self, digest: str) -> Optional[Any]:
        self.load_project_tables()
        return self.scans.get(digest)

    def put_scan(self, digest: str, scan: Any) -> None:
        self.load_project_tables()
        if self.enabled:
            self.scans[digest] = scan
            self.dirty.add("scans")

    def get_text(self, digest: str) -> Optional[Any]:
        self.load_project_tables()
        return self.texts.get(digest)

    def put_text(self, digest: str, facts: Any) -> None:
        self.load_project_tables()
        if self.enabled:
            self.texts[digest] = facts
            self.dirty.add("texts")

    def get_check(self, names: str, digest: str) -> Optional[Any]:
        self.load_project_tables()
        return self.checks.get((names, digest))

    def put_check(self, names: str, digest: str, reason: Any) -> None:
        self.load_project_tables()
        if self.enabled and self.checks.get((names, digest)) != reason:
            self.checks[(names, digest)] = reason
            self.dirty.add("checks")

    def get_calls(self, names: str, digest: str) -> Optional[Any]:
        self.load_project_tables()
        return self.calls.get((names, digest))

    def put_calls(self, names: str, digest: str, sites: Any) -> None:
        self.load_project_tables()
        if self.enabled and self.calls.get((names, digest)) != sites:
            self.calls[(names, digest)] = sites
            self.dirty.add("calls")

    def get_requests(self, key: str) -> Optional[Any]:
        self.load_project_tables()
        return self.requests.get(key)

    def put_requests(self, key: str, found: Any) -> None:
        self.load_project_tables()
        self._put_newest("requests", key, found)

    def get_state(self, key: str) -> Optional[Tuple[str, Dict[str, str]]]:
        return self.states.get(key)

    def put_state(self, key: str, summary: Tuple[str, Dict[str, str]]) -> None:
        self._put_newest("states", key, summary)

    def _put_newest(self, table: str, key: str, value: Any) -> None:
        """Store `value` as the newest entry of a table of whole-project answers, dropping
        the oldest beyond _MAX_PROJECT_ANSWERS."""
        entries: Dict[str, Any] = getattr(self, table)
        if self.enabled and entries.get(key) != value:
            entries.pop(key, None)
            entries[key] = value
            while len(entries) > _MAX_PROJECT_ANSWERS:
                del entries[next(iter(entries))]
            self.dirty.add(table)

    def save(self, tables: Iterable[str] = _TABLES) -> None:
        """Write the files holding the changed ones of `tables`, each atomically (temporary
        file + rename) so an interrupted run leaves the old file or the new one, never half
        of one. A cache that cannot be written is skipped."""
        if not self.enabled:
            return
        wanted = self.dirty & set(tables)
        directory = self.directory
        assert directory is not None
        if not wanted:
            return
        from sessionlint.fixes import files

        try:
            _prepare_directory(directory)
        except OSError:
            return
        for name, stored in _FILES.items():
            if not wanted & set(stored):
                continue
            payload: Dict[str, Dict[Any, Any]] = {}
            for table in stored:  # the newest entries of each, up to the limit
                entries = getattr(self, table)
                if len(entries) > _MAX_ENTRIES:
                    setattr(self, table, dict(list(entries.items())[-_MAX_ENTRIES:]))
                payload[table] = getattr(self, table)
            try:
                files.write_atomically(os.path.join(directory, name), encode_file(payload))
            except OSError:
                continue
            self.dirty -= set(stored)


def _prepare_directory(directory: str) -> None:
    """Create the cache directory with its markers (never through a symbolic link), and
    remove the temporary files that killed runs left there."""
    os.makedirs(directory, exist_ok=True)
    if os.path.islink(directory) or not os.path.isdir(directory):
        raise OSError(f"{directory} is not a directory")
    for name, text in _MARKERS.items():
        path = os.path.join(directory, name)
        if os.path.lexists(path):
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:  # a concurrent run wrote it
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    from sessionlint.fixes.files import remove_stale_temporaries

    remove_stale_temporaries(directory)


def is_own_directory(directory: str) -> bool:
    """Whether `directory` is a cache this module wrote: a real directory (not a link)
    holding its CACHEDIR.TAG or its .gitignore, and nothing but files it writes."""
    if os.path.islink(directory) or not os.path.isdir(directory):
        return False
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    marked = False
    for name in names:
        path = os.path.join(directory, name)
        if name in _MARKERS:
            try:
                marked = marked or _read_regular_file(path).decode("utf-8", "replace") == _MARKERS[name]
            except OSError:
                return False
        elif not _is_own_file_name(name) or os.path.islink(path) or not os.path.isfile(path):
            return False
    return marked


def _is_own_file_name(name: str) -> bool:
    from sessionlint.fixes.files import TEMPORARY_SUFFIX

    return name in _FILES or name in _OLD_FILES or (name.startswith(".") and name.endswith(TEMPORARY_SUFFIX))


def clean(directory: str) -> Tuple[List[str], Optional[str]]:
    """Remove the files of the cache in `directory` and then the directory if it is empty:
    (the paths removed, why the directory was left alone or None). Nothing is removed from
    a directory that `is_own_directory` does not recognise, and nothing but the files this
    module writes is ever removed."""
    if not os.path.lexists(directory):
        return [], None
    if not is_own_directory(directory):
        return [], f"{directory} is not a sessionlint cache directory (it holds other files, or no marker); nothing removed"
    removed = []
    for name in sorted(os.listdir(directory)):
        if name in _MARKERS or _is_own_file_name(name):
            path = os.path.join(directory, name)
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                continue
    try:
        os.rmdir(directory)
        removed.append(directory)
    except OSError:
        pass
    return removed, None


def clean_legacy_user_files() -> List[str]:
    """Remove what versions before 0.2 kept in the user's cache directory (the compiled code
    of the libcst import, `dataclass-code-*.marshal`), and that folder if it is then empty."""
    import glob

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "sessionlint")
    removed = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), "dataclass-code-*.marshal"))):
        try:
            if not os.path.islink(path) and os.path.isfile(path):
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue
    try:
        if removed:
            os.rmdir(folder)
    except OSError:
        pass
    return removed


# What makes a directory a source directory, which a cache must never be.
_SOURCE_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def check_cache_dir(cache_dir: str, source: str, root: str, paths: Sequence[str] = ()) -> None:
    """A cache directory `--clean` may empty and a run fills: never the project's root, a
    directory above it or above a linted path, nor a directory of sources; ConfigError
    (naming `source`, the file or variable that set it) otherwise."""
    if source == "SESSIONLINT_CACHE_DIR":
        key, where = source, "the environment"
    else:
        key = ("tool.sessionlint." if os.path.basename(source) == "pyproject.toml" else "") + "cache-dir"
        where = source
    if "\0" in cache_dir:
        raise ConfigError(key, where, "must not contain a NUL character")
    try:
        target = os.path.realpath(cache_dir)
    except (OSError, ValueError) as error:
        raise ConfigError(key, where, f"not a usable path ({error})") from None
    guarded = [root, os.getcwd()] + [p for p in paths if p and p != "-"]
    for path in guarded:
        real = os.path.realpath(path)
        if real == target or real.startswith(target.rstrip(os.sep) + os.sep):
            raise ConfigError(key, where, f"`{cache_dir}` is the project directory or contains it; use a directory of its own such as `.sessionlint_cache`")
    if os.path.isdir(target):
        if is_own_directory(cache_dir):
            return
        if _holds_sources(target):
            raise ConfigError(key, where, f"`{cache_dir}` is a directory of sources; use a directory of its own such as `.sessionlint_cache`")


def _holds_sources(directory: str, depth: int = 3, budget: int = 5000) -> bool:
    """Whether `directory` (or one below it, `depth` levels down, looking at up to `budget`
    entries) holds Python files or a project's markers."""
    pending = [(directory, 0)]
    while pending and budget > 0:
        current, level = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            budget -= 1
            if entry.name in _SOURCE_MARKERS or entry.name.endswith((".py", ".pyi")):
                return True
            if level < depth and entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, level + 1))
    return False
