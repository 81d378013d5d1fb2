"""The project pass: every file's text facts, the module scan of the files that can bind a
factory, function summaries, then rescans of the files that import names learnt on the way.
"""

import ast
import re
import sys
import warnings
from typing import (
    TYPE_CHECKING,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
)

from sessionlint.knowledge import CONVENTIONAL_FACTORY_NAMES
from sessionlint.project.model import Committer, Factory, ImportBinding, ModuleFacts, ProjectIndex, builder_factory, module_stem
from sessionlint.project.scan import scan_module
from sessionlint.project.summaries import summarise_functions
from sessionlint.project.text import (
    ALIAS_RE,
    CALL_TAILS,
    DEFINITION_NAMES,
    DEPENDS_RE,
    HOLDER_RE,
    RELEASE_RE,
    SERVES_RE,
    SESSION_AS_RE,
    SESSION_BASE_RE,
    WORD_BYTES,
    WORD_RE,
    alternation,
    from_import_names,
    from_imports,
)

if TYPE_CHECKING:
    from sessionlint.project.callables import CallableFacts, ClosingFacts, RunnerFacts
    from sessionlint.project.calls import SearchMemory, Site

# What the text facts of a file are: (names imported with `from x import`, `Depends()` targets,
# whether the text can bind a factory, whether it imports a framework that serves requests).
# The last item: the module-level functions of a file whose text commits or runs statements
# but was not parsed; `finish` works out which of them commit a session parameter only if
# another file imports one of these names.
TextFacts = Tuple[Tuple[str, ...], Tuple[str, ...], bool, bool, Tuple[Tuple[str, Committer], ...], "CallableFacts", Tuple[str, ...]]
# The module scan as the cache stores it: factories, imports, returned calls, session aliases,
# registries, yielded calls, star imports, released names, building functions (the scan before
# function summaries).
Calls = Dict[str, Tuple[Tuple[str, bool], ...]]
StoredScan = Tuple[
    Dict[str, Factory], Dict[str, ImportBinding], Calls, Dict[str, bool], Set[str], Calls, Tuple[Tuple[str, int], ...], Tuple[str, ...],
    Tuple[str, ...], Dict[str, bool], Calls,
]
# Why a file not scanned yet may teach the scan something about names learnt on the way:
# whether it calls one as a module attribute (`db.SessionLocal()`), and the modules it
# imports one of them from, as (module, number of leading dots).
Reason = Tuple[bool, Tuple[Tuple[str, int], ...]]


class ProjectCache(Protocol):
    """What the project pass keeps between runs, by content hash (sessionlint.cache.Cache)."""

    @property
    def enabled(self) -> bool: ...

    def digest(self, data: bytes) -> str: ...

    def get_text(self, digest: str) -> Optional[TextFacts]: ...

    def put_text(self, digest: str, facts: TextFacts) -> None: ...

    def get_scan(self, digest: str) -> Optional[StoredScan]: ...

    def put_scan(self, digest: str, scan: StoredScan) -> None: ...

    def get_check(self, names: str, digest: str) -> Optional["Reason"]: ...

    def put_check(self, names: str, digest: str, reason: "Reason") -> None: ...

    def get_calls(self, names: str, digest: str) -> Optional[List["Site"]]: ...

    def put_calls(self, names: str, digest: str, sites: List["Site"]) -> None: ...

    def get_requests(self, key: str) -> Optional[Dict[Tuple[str, str], str]]: ...

    def put_requests(self, key: str, found: Dict[Tuple[str, str], str]) -> None: ...


class IndexBuilder:
    """The project pass, one file at a time: `add` each file's bytes as they are read (the
    text facts, and the module scan of files whose text can bind a factory), then `finish`,
    which re-reads through `read` only the files that mention names learnt on the way. No
    file's bytes are kept."""

    def __init__(
        self,
        extra_factory_names: Iterable[str] = (),
        cache: Optional["ProjectCache"] = None,
        extra_engine_names: Iterable[str] = (),
        request_decorators: Iterable[str] = (),
    ) -> None:
        self.index = ProjectIndex(
            extra_factory_names=frozenset(n.rsplit(".", 1)[-1] for n in extra_factory_names),
            extra_engine_names=frozenset(n.rsplit(".", 1)[-1] for n in extra_engine_names),
            request_decorators=frozenset(request_decorators),
        )
        self.cache = cache
        self.stems: Dict[str, List[str]] = {}
        self.depends: Set[str] = set()
        self.imported: Set[str] = set()
        self.scanned: Set[str] = set()
        # names each unscanned file imports with `from x import name` (interned): `finish`
        # rescans a file for a newly learnt factory name only if it imports the name this
        # way or calls it as an attribute (`db.SessionLocal()`)
        self.imports_of: Dict[str, Tuple[str, ...]] = {}
        self.parsed: Set[Tuple[str, bytes]] = set()
        self.digests: Dict[str, str] = {}  # path -> the hash of the bytes added, when cached
        # path -> (its module-level functions, the hash of its bytes) of the files whose
        # committing functions are worked out only if another file imports one of them
        self.deferred: Dict[str, Tuple[Tuple[str, ...], Optional[str]]] = {}
        self.serves_requests = False
        # A call of a binding or a conventional factory name: one trie regex, one scan of the
        # text.
        conventional = CONVENTIONAL_FACTORY_NAMES | self.index.extra_factory_names
        names = set(DEFINITION_NAMES) | conventional
        self.binding_call = re.compile(rb"\b" + alternation(names) + rb"\s*\(")
        # Every built-in name contains `ession` or `ngine`: `calls_a_binding` then searches for
        # those literals (a pattern starting with `\b` is tried at every position).
        self.call_names: Optional[FrozenSet[bytes]] = None
        if all("ession" in name or "ngine" in name for name in names):
            self.call_names = frozenset(name.encode() for name in names)
        # Every built-in trigger word contains one of these; configured names may not.
        self.always_search = bool(self.index.extra_factory_names)

    def add(self, path: str, data: bytes, digest: Optional[str] = None) -> None:
        """One file's text facts (from the cache by `digest`, the hash of `data`, when given
        and known) and, if its text can bind a factory, its module scan."""
        self.merge(path, self.file_facts(path, data, digest), digest)

    def file_facts(self, path: str, data: bytes, digest: Optional[str] = None, tree: Optional[ast.Module] = None) -> "FileFacts":
        """What `add` learns from one file, without changing the builder (worker processes
        compute it, `merge` takes it in): (text facts, whether they are new to the cache,
        the module scan if the text can bind a factory). `tree`: CPython's tree of `data`,
        when the caller has it (the language server parses a changed file once)."""
        cache = self.cache if not self.always_search else None
        text = cache.get_text(digest) if cache is not None and digest is not None else None
        new_text = text is None
        if text is None:
            # the functions that commit a session parameter, for the modules that import them
            # (one `ast` parse, shared with the scan, of a file whose text commits anything)
            committers: Tuple[Tuple[str, Committer], ...] = ()
            runners: RunnerFacts = ((), ())
            properties: Tuple[str, ...] = ()
            commits = b"def " in data and any(w in data for w in COMMIT_WORDS)
            closes_in_finally = b"finally" in data and (b".close(" in data or b".remove(" in data)
            returns_query = b".query(" in data and bool(RETURNS_QUERY.search(data))
            runs = closes_in_finally or returns_query
            checks_out = b"@property" in data and b".connect(" in data
            closes = b".close(" in data and (b"finally" in data or b"closing(" in data)
            closers: ClosingFacts = ()
            facts = self._text_facts(data)
            defines: Tuple[str, ...] = ()
            if (runs or checks_out or closes or (commits and (facts[2] or tree is not None))) and b"def " in data:
                tree = tree or parse_quietly(path, data)
                if tree is not None:
                    from sessionlint.project.callables import closing_functions, committing_functions, connection_properties, query_runners

                    committers = tuple(sorted(committing_functions(tree).items())) if commits else ()
                    runners = query_runners(tree, closes_in_finally, returns_query) if runs else ((), ())
                    properties = connection_properties(tree) if checks_out else ()
                    closers = closing_functions(tree) if closes else ()
            elif commits:
                # parsed in `finish` if another file imports one of its functions by name
                defines = module_functions(data)
            text = facts + (committers, runners + (properties, closers), defines)
        scan = scan_record(path, data, self.cache, digest, tree) if text[2] else None
        return text, new_text, scan

    def cached_facts(self, digest: str) -> Optional["FileFacts"]:
        """What `file_facts` would say of the bytes hashed to `digest`, when the cache knows
        it all (the text facts, and the module scan if the text can bind a factory)."""
        cache = self.cache
        if cache is None or self.always_search:
            return None
        text = cache.get_text(digest)
        if text is None:
            return None
        if not text[2]:
            return text, False, None
        stored = cache.get_scan(digest)
        return (text, False, (stored, False, None)) if stored is not None else None

    def merge(self, path: str, facts: "FileFacts", digest: Optional[str] = None) -> None:
        text, new_text, scan = facts
        if new_text and digest is not None and not self.always_search and self.cache is not None:
            self.cache.put_text(digest, text)
        imported, depends, can_bind, serves, committers, (runners, lazy, properties, closers), defines = text
        self.deferred.pop(path, None)
        if committers:
            self.index.committers[path] = dict(committers)
        elif defines:
            self.deferred[path] = (defines, digest)
        if runners:
            self.index.runners[path] = dict(runners)
        if lazy:
            self.index.lazy_callables[path] = frozenset(lazy)
        if properties:
            self.index.connection_properties[path] = frozenset(properties)
        if closers:
            self.index.closers[path] = {name: (positions, names) for name, positions, names in closers}
        self.serves_requests = self.serves_requests or serves
        if digest is not None:
            self.digests[path] = digest
        self.imported.update(imported)
        self.depends.update(depends)
        self.stems.setdefault(module_stem(path), []).append(path)
        # Every linted file is registered (relative imports resolve against it); only files
        # whose text can bind a factory are parsed.
        if can_bind and scan is not None:
            self.scanned.add(path)
            self.index.modules[path] = self._facts_of(path, scan, digest)
        elif imported:
            self.imports_of[path] = tuple(sys.intern(name) for name in imported)

    def _facts_of(self, path: str, scan: "ScanRecord", digest: Optional[str]) -> ModuleFacts:
        stored, new, accepted = scan
        if new and digest is not None and self.cache is not None:
            self.cache.put_scan(digest, stored)
        if accepted is not None:
            self.parsed.add((path, accepted))
        factories, imports, returned_calls, aliases, registries, yielded_calls, star_imports, released, builds, holders, opened_calls = stored
        facts = ModuleFacts(path, dict(factories), dict(imports), dict(returned_calls), dict(aliases), set(registries))
        facts.yielded_calls = dict(yielded_calls)
        facts.opened_calls = dict(opened_calls)
        facts.star_imports = tuple(star_imports)
        facts.released = tuple(released)
        facts.builds = tuple(builds)
        facts.holders = dict(holders)
        return facts

    def _requests_key(self, index: ProjectIndex) -> Optional[str]:
        """What the per-request search's answer depends on, hashed: every file's bytes (by
        their hashes) and the names configured; None when a file's bytes were not hashed
        (no cache). The tool's own code is in the cache file's header."""
        cache = self.cache
        if cache is None or not cache.enabled or self.always_search:
            return None
        digests = self.digests
        if any(path not in digests for path in index.paths):
            return None
        from hashlib import blake2b

        parts = (
            sorted((path, digests[path]) for path in index.paths),
            sorted(index.extra_factory_names),
            sorted(index.extra_engine_names),
            sorted(index.request_decorators),
        )
        return blake2b(repr(parts).encode(), digest_size=16).hexdigest()

    def _deferred_committers(self, read: Callable[[str], Optional[bytes]]) -> None:
        """The committing functions of the deferred files that another file imports a
        function of by name (`from app.crud import save`): the only way analysis and the
        prefilter look them up (factories.imported_committers; a module's own helpers are
        worked out from its own tree). Each is parsed once: its facts are then cached with
        its text facts."""
        imported = self.imported
        for path, (defines, digest) in sorted(self.deferred.items()):
            if imported.isdisjoint(defines):
                continue
            cache = self.cache if not self.always_search else None
            known = cache.get_text(digest) if cache is not None and digest is not None else None
            if known is not None and not known[6]:
                found = known[4]
            else:
                from sessionlint.project.callables import committing_functions

                data = read(path)
                tree = parse_quietly(path, data) if data is not None else None
                found = tuple(sorted(committing_functions(tree).items())) if tree is not None else ()
                if known is not None and cache is not None and digest is not None:
                    cache.put_text(digest, known[:4] + (found, known[5], ()))
            if found:
                self.index.committers[path] = dict(found)

    def calls_a_binding(self, data: bytes) -> bool:
        """Whether `data` calls a name of `binding_call` (the name a whole word, then `(`)."""
        names = self.call_names
        if names is None:
            return self.binding_call.search(data) is not None
        for pattern in CALL_TAILS:
            for match in pattern.finditer(data):
                start = match.start()
                head = start
                while head and data[head - 1] in WORD_BYTES:
                    head -= 1
                if data[head:start] + match.group(1) in names:
                    return True
        return False

    def _text_facts(self, data: bytes) -> Tuple[Tuple[str, ...], Tuple[str, ...], bool, bool]:
        """(names imported with `from x import`, `Depends()` targets, whether the text can
        bind a factory or release a registry, whether it imports a framework that serves
        requests): what the project pass learns from a file without parsing it."""
        imported: Set[str] = set()
        depends: Set[str] = set()
        if b"import" in data:
            for names in from_import_names(data):
                imported.update(n.decode("ascii", "replace") for n in WORD_RE.findall(names))
        if b"Depends(" in data or b"Security(" in data:
            for match in DEPENDS_RE.finditer(data):
                depends.add(match.group(1).decode("ascii", "replace").rsplit(".", 1)[-1])
        # `from db import *` passes on the factories of `db`: the scan records the star imports
        # Fixture: tests/fixtures/projects/star_import
        can_bind = (
            b"import *" in data
            or (b".remove" in data and RELEASE_RE.search(data) is not None)
            or (b"self." in data and b"class " in data and HOLDER_RE.search(data) is not None)
        ) or bool(
            (self.always_search or b"ession" in data or b"ngine" in data)
            and (self.calls_a_binding(data) or ALIAS_RE.search(data) or SESSION_BASE_RE.search(data) or SESSION_AS_RE.search(data))
        )
        serves = b"import" in data and SERVES_RE.search(data) is not None
        return tuple(sorted(imported)), tuple(sorted(depends)), can_bind, serves

    def finish(self, read: Callable[[str], Optional[bytes]], memory: Optional["SearchMemory"] = None) -> ProjectIndex:
        """The index, once every file is added: function summaries, then rescans of files
        that import or call names learnt on the way, read through `read` (`memory`: see
        `find_per_request`)."""
        index = self.index
        index.module_stems = self.stems
        index.forget_resolutions()  # anything resolved before every file was registered
        index.paths = frozenset(path for paths in self.stems.values() for path in paths)
        index.depends_targets = frozenset(self.depends)
        index.imported_names = frozenset(self.imported)
        self._deferred_committers(read)
        known_names: Set[str] = set()
        for _round in range(3):
            new_names = summarise_functions(index)
            new_names |= {n.rsplit(".", 1)[-1] for f in index.modules.values() for n in list(f.factories) + list(f.generators)}
            fresh = new_names - known_names
            if not fresh:
                break
            known_names |= fresh
            # A file the scan would learn something from about these names imports one of
            # them from a module of the project (a re-export, or `return SessionLocal()`) or
            # calls one as an attribute of a module (`return db.SessionLocal()`): what
            # scan_module and the summaries read. A name imported from elsewhere is not the
            # project's factory (a project that binds its own `Session` learns nothing about it
            # from the files that import SQLAlchemy's `Session` for their annotations), and a
            # mere mention (`session.commit()`) teaches nothing.
            candidates = [
                (path, not fresh.isdisjoint(self.imports_of.get(path, ()))) for path in sorted(index.paths - self.scanned)
            ]
            reasons = rescan_reasons(candidates, sorted(fresh), read, self.cache, self.digests)
            needed = [
                path
                for path, (attribute, modules) in reasons
                if attribute or any(index.path_of_module(path, module, level) is not None for module, level in modules)
            ]
            found = scans(needed, read, self.cache, self.digests) if needed else []
            rescanned = False
            for path, scan, digest in found:
                self.scanned.add(path)
                self.imports_of.pop(path, None)
                index.modules[path] = self._facts_of(path, scan, digest)
                rescanned = True
            if not rescanned:
                # Function summaries may still resolve through names learnt this round.
                summarise_functions(index)
                break
        index.session_aliases = {n: a for f in index.modules.values() for n, a in f.session_aliases.items()}
        index.serves_requests = self.serves_requests
        index.resolve_released()
        if any(f.builds for f in index.modules.values()):
            if memory is not None:
                memory.digests = self.digests
            key = self._requests_key(index) if memory is None else None
            known = self.cache.get_requests(key) if key is not None and self.cache is not None else None
            if known is None:
                from sessionlint.project.calls import find_per_request

                known = find_per_request(index, read, self.cache, memory)
                if key is not None and self.cache is not None:
                    self.cache.put_requests(key, known)
            index.per_request = known
        index.parsed = frozenset(self.parsed)
        return index


def build_index(
    sources: Mapping[str, bytes],
    extra_factory_names: Iterable[str] = (),
    cache: Optional["ProjectCache"] = None,
    extra_engine_names: Iterable[str] = (),
    request_decorators: Iterable[str] = (),
) -> ProjectIndex:
    """Build the project index from the files about to be linted, all in memory."""
    builder = IndexBuilder(extra_factory_names, cache, extra_engine_names, request_decorators)
    for path, data in sources.items():
        builder.add(path, data)
    return builder.finish(sources.get)


# The module scan of one file as the cache stores it (factories, imports, returned calls,
# session aliases, registries: the scan before function summaries), whether it is new to
# the cache, and the hash of the bytes if CPython's parser accepted them (else None).
ScanRecord = Tuple["StoredScan", bool, Optional[bytes]]
# What IndexBuilder.file_facts learns from one file.
FileFacts = Tuple["TextFacts", bool, Optional[ScanRecord]]


def content_key(data: bytes) -> bytes:
    """A short, stable hash of a file's bytes (the same in every process, unlike `hash`)."""
    from hashlib import blake2b

    return blake2b(data, digest_size=8).digest()


# what a file that commits or runs a statement on a session parameter contains
COMMIT_WORDS = (b".commit(", b".flush(", b".execute(", b".query(", b".scalar", b".exec(")
# a module-level `def` (or `async def`): callables.committing_functions looks at no other
_MODULE_FUNCTION = re.compile(rb"(?m)^\x0c*(?:async[ \t]+)?def[ \t]+(\w+)")


def module_functions(data: bytes) -> Tuple[str, ...]:
    """The names of the functions `data` may define at module level (more, never fewer)."""
    return tuple(sorted({m.decode("ascii", "replace") for m in _MODULE_FUNCTION.findall(data)}))


# a `return` of a query on one line: what a lazy callable looks like (callables.query_runners)
RETURNS_QUERY = re.compile(rb"return [^\n]*\.query\(")


def parse_quietly(path: str, data: bytes) -> Optional[ast.Module]:
    """CPython's tree of `data`, or None when it does not parse (the lint reports that)."""
    try:
        with warnings.catch_warnings():  # SyntaxWarnings in the linted code are not ours to print
            warnings.simplefilter("ignore")
            return ast.parse(data, filename=path)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def scan_record(path: str, data: bytes, cache: Optional["ProjectCache"], digest: Optional[str] = None, tree: Optional[ast.Module] = None) -> ScanRecord:
    """The module-level facts of one file, from the cache when its bytes were seen before
    (`tree`: CPython's tree of `data`, when the caller parsed it already)."""
    if digest is not None and cache is not None:
        stored = cache.get_scan(digest)
        if stored is not None:
            return stored, False, None
    accepted = None
    try:
        if tree is None:
            with warnings.catch_warnings():  # SyntaxWarnings in the linted code are not ours to print
                warnings.simplefilter("ignore")
                tree = ast.parse(data, filename=path)
        accepted = content_key(data)
        facts = scan_module(path, tree, may_release=b".remove" in data or b".close" in data or b".aclose" in data)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        facts = text_scan(path, data)
    # `_facts_of` copies these into the ModuleFacts that function summaries extend later.
    stored = (
        facts.factories, facts.imports, facts.returned_calls, facts.session_aliases, facts.registries,
        facts.yielded_calls, facts.star_imports, facts.released, facts.builds, facts.holders, facts.opened_calls,
    )
    return stored, True, accepted


# `Name = sessionmaker(` at the start of a line (and the other builders, `sqlalchemy.orm.`
# prefixes allowed)
_TEXT_BINDING = re.compile(rb"(?m)^([A-Za-z_]\w*)[ \t]*=[ \t]*(?:[\w.]+\.)?(sessionmaker|async_sessionmaker|scoped_session|async_scoped_session|create_engine|create_async_engine|engine_from_config)[ \t]*\(")


_TEXT_RELEASE = re.compile(rb"([A-Za-z_][\w.]*)\.remove(?:\(\s*\)|\s*[),\]])")


def text_scan(path: str, data: bytes) -> ModuleFacts:
    """The module-level builders of a file CPython's parser rejects (Python 2 code in an
    old tree), from its text: `Session = sessionmaker(...)` at the start of a line still
    binds a factory that the project's other modules call.
    Fixture: tests/fixtures/projects/python2_module"""
    facts = ModuleFacts(path=path)
    for match in _TEXT_BINDING.finditer(data):
        factory = builder_factory(match.group(2).decode("ascii"))
        if factory is not None:
            facts.factories[match.group(1).decode("ascii")] = factory
    # what it imports and releases (`db_session.remove()` in a Python 2 teardown)
    for module, names in from_imports(data):
        dotted = module.decode("ascii", "replace")
        stripped = dotted.lstrip(".")
        for part in names.strip(b"()").split(b","):
            words = part.split()
            if len(words) == 3 and words[1] == b"as":
                original, local = words[0], words[2]
            elif len(words) == 1:
                original = local = words[0]
            else:
                continue
            if original != b"*":
                facts.imports[local.decode("ascii", "replace")] = ImportBinding(stripped, len(dotted) - len(stripped), original.decode("ascii", "replace"))
    known = set(facts.imports) | set(facts.factories)
    facts.released = tuple(
        sorted({m.group(1).decode("ascii") for m in _TEXT_RELEASE.finditer(data) if m.group(1).split(b".")[0].decode("ascii") in known})
    )
    return facts


NO_REASON: Reason = (False, ())  # most files' answer, one object for all of them


def rescan_reasons(
    candidates: Iterable[Tuple[str, bool]],
    fresh: Sequence[str],
    read: Callable[[str], Optional[bytes]],
    cache: Optional["ProjectCache"],
    digests: Optional[Mapping[str, str]] = None,
) -> List[Tuple[str, Reason]]:
    """The reasons of the files among `candidates` (path, whether its text facts say it
    imports a name of `fresh`) that import a name of `fresh` or call one as a module
    attribute; `IndexBuilder.finish` decides which to scan. A file's reason depends only on
    its bytes and `fresh`: the cache keeps it by the hash of the bytes added (`digests`), so
    a warm run reads none of these files again."""
    # One regex, which the regex engine searches for by its leading `.`.
    attribute_call = re.compile(rb"\.(?:" + b"|".join(re.escape(n.encode()) for n in sorted(fresh)) + rb")\s*\(")
    fresh_names = frozenset(fresh)
    found = []
    use = cache if cache is not None and cache.enabled else None
    names = ",".join(fresh)
    for path, imports_fresh in candidates:
        added = digests.get(path) if use is not None and digests is not None else None
        reason = use.get_check(names, added) if use is not None and added is not None else None
        if reason is None:
            data = read(path)
            if data is None:
                continue
            attribute = attribute_call.search(data) is not None
            modules = _modules_importing(data, fresh_names) if imports_fresh else ()
            reason = (attribute, modules) if attribute or modules else NO_REASON
            if use is not None:
                use.put_check(names, use.digest(data), reason)
        if reason[0] or reason[1]:
            found.append((path, reason))
    return found


def _modules_importing(data: bytes, names: FrozenSet[str]) -> Tuple[Tuple[str, int], ...]:
    """The modules of the `from module import ...` lines of `data` that import one of
    `names` (under any alias: every word of the names part counts, as in the text facts)."""
    modules = []
    for module, imported in from_imports(data):
        if not names.isdisjoint(n.decode("ascii", "replace") for n in WORD_RE.findall(imported)):
            dotted = module.decode("ascii", "replace")
            stripped = dotted.lstrip(".")
            modules.append((stripped, len(dotted) - len(stripped)))
    return tuple(sorted(set(modules)))


def scans(
    paths: Iterable[str],
    read: Callable[[str], Optional[bytes]],
    cache: Optional["ProjectCache"],
    digests: Optional[Mapping[str, str]] = None,
) -> List[Tuple[str, ScanRecord, Optional[str]]]:
    """The module scans of `paths`, from the cache by the hash of the bytes added
    (`digests`) when it has them, else of the bytes `read` returns."""
    found: List[Tuple[str, ScanRecord, Optional[str]]] = []
    use = cache if cache is not None and cache.enabled else None
    for path in paths:
        added = digests.get(path) if use is not None and digests is not None else None
        stored = use.get_scan(added) if use is not None and added is not None else None
        if stored is not None:
            found.append((path, (stored, False, None), added))
            continue
        data = read(path)
        if data is None:
            continue
        digest = use.digest(data) if use is not None else None
        found.append((path, scan_record(path, data, cache, digest), digest))
    return found
