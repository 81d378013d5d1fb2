"""The project pass kept in memory and up to date, for an editor: built once over a project's
files, then updated one changed file at a time.

Every file's facts (`IndexBuilder.file_facts`) are kept by path, and every answer the pass
asks of a file's bytes (rescan reasons, call sites) is kept by content hash in a
`MemoryCache`. When a file changes, only that file is read and scanned. If its facts are the
same as before, and it answers the questions the last pass asked of it (whether it imports
or calls a name learnt on the way, its call sites at each depth of the per-request search)
as before, the index is the same: only its record of the files CPython's parser accepted
changes. Otherwise the pass is finished again from the kept facts and answers: no file is
scanned again, but the per-request search reads the files through `read` (the workspace
holds them in memory). `tests/test_live_project.py` checks both against a full build.
"""

import ast
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from sessionlint.knowledge import is_test_path
from sessionlint.project.builder import FileFacts, IndexBuilder, Reason, StoredScan, TextFacts, rescan_reasons, scan_record
from sessionlint.project.calls import SearchMemory, Site
from sessionlint.project.model import ProjectIndex

Read = Callable[[str], Optional[bytes]]


@dataclass
class MemoryCache:
    """The project cache (builder.ProjectCache) in memory, for one server's life. It records
    which rescan questions the last pass asked of which bytes."""

    texts: Dict[str, TextFacts] = field(default_factory=dict)
    scans: Dict[str, StoredScan] = field(default_factory=dict)
    checks: Dict[Tuple[str, str], Reason] = field(default_factory=dict)
    calls: Dict[Tuple[str, str], List[Site]] = field(default_factory=dict)
    asked: Dict[str, Set[str]] = field(default_factory=dict)  # digest -> names asked of it

    @property
    def enabled(self) -> bool:
        return True

    @staticmethod
    def digest(data: bytes) -> str:
        from hashlib import blake2b

        return blake2b(data, digest_size=16).hexdigest()

    def get_text(self, digest: str) -> Optional[TextFacts]:
        return self.texts.get(digest)

    def put_text(self, digest: str, facts: TextFacts) -> None:
        self.texts[digest] = facts

    def get_scan(self, digest: str) -> Optional[StoredScan]:
        return self.scans.get(digest)

    def put_scan(self, digest: str, scan: StoredScan) -> None:
        self.scans[digest] = scan

    def get_check(self, names: str, digest: str) -> Optional[Reason]:
        self.asked.setdefault(digest, set()).add(names)
        return self.checks.get((names, digest))

    def put_check(self, names: str, digest: str, reason: Reason) -> None:
        self.checks[(names, digest)] = reason

    def get_calls(self, names: str, digest: str) -> Optional[List[Site]]:
        return self.calls.get((names, digest))

    def put_calls(self, names: str, digest: str, sites: List[Site]) -> None:
        self.calls[(names, digest)] = sites

    def get_requests(self, key: str) -> Optional[Dict[Tuple[str, str], str]]:
        return None  # the search's answers per file are kept instead (SearchMemory)

    def put_requests(self, key: str, found: Dict[Tuple[str, str], str]) -> None:
        pass


class LiveIndex:
    """A project's index over files that change one at a time. `read(path)` gives a file's
    current bytes (an open buffer's text, or the file on disk); it is called for every file
    once by `add`, then for rescans the kept answers do not cover."""

    def __init__(
        self,
        read: Read,
        session_factories: Iterable[str] = (),
        engine_factories: Iterable[str] = (),
        request_decorators: Iterable[str] = (),
        extra: Callable[[ProjectIndex], None] = lambda index: None,
    ) -> None:
        self.names = (tuple(session_factories), tuple(engine_factories), tuple(request_decorators))
        self.read = read
        self.extra = extra  # what the caller adds to a finished index (the framework versions)
        self.cache = MemoryCache()
        self.facts: Dict[str, Tuple[str, FileFacts]] = {}  # path -> (digest, facts), in order
        self.accepted: Dict[str, bytes] = {}  # digest -> content key, of bytes CPython's parser accepted
        self.search = SearchMemory()  # the per-request search of the last pass, its answers
        self.index: Optional[ProjectIndex] = None
        self.rebuilds = 0  # passes finished (the first one included): what tests and benchmarks count

    def add(self, path: str, data: bytes) -> None:
        """A file of the project, before the first `current()`."""
        self.facts[path] = self._facts(path, data)
        self.index = None

    def remove(self, path: str) -> None:
        previous = self.facts.pop(path, None)
        if previous is not None:
            self.index = None
            self._forget(previous[0])

    def current(self) -> ProjectIndex:
        if self.index is None:
            self.index = self._finish()
        return self.index

    def update(self, path: str, old: Optional[bytes], new: bytes, tree: Optional[ast.Module] = None) -> bool:
        """The file at `path` now holds `new` (it held `old`, when known; `tree`: CPython's
        tree of `new`, when the caller has it). Whether the index changed (it is then
        finished again when next asked for)."""
        previous = self.facts.get(path)
        digest, facts = self._facts(path, new, tree)
        self.facts[path] = (digest, facts)
        index = self.index
        if previous is not None and previous[0] == digest:
            return False
        try:
            if index is None:
                return True
            if previous is None or old is None or not self._same_answers(path, previous, old, (digest, facts), new, index):
                self.index = None
                return True
        finally:
            if previous is not None and previous[0] != digest:
                self._forget(previous[0])
        parsed = {entry for entry in index.parsed if entry[0] != path}
        key = self.accepted.get(digest)
        if key is not None and path in index.modules:
            parsed.add((path, key))
        self.index = replace(index, parsed=frozenset(parsed))
        return False

    def _forget(self, digest: str) -> None:
        """Drop what is kept for bytes no file holds any more (each keystroke makes new ones)."""
        if any(held == digest for held, _ in self.facts.values()):
            return
        cache = self.cache
        cache.texts.pop(digest, None)
        cache.scans.pop(digest, None)
        cache.asked.pop(digest, None)
        self.accepted.pop(digest, None)
        for table in (cache.checks, cache.calls):
            for key in [key for key in table if key[1] == digest]:
                del table[key]

    # --- the pass --------------------------------------------------------------------------

    def _facts(self, path: str, data: bytes, tree: Optional[ast.Module] = None) -> Tuple[str, FileFacts]:
        digest = self.cache.digest(data)
        builder = self._builder()
        facts = builder.cached_facts(digest) or builder.file_facts(path, data, digest, tree)
        text, _, scan = facts
        if scan is not None:
            stored, _, accepted = scan
            self.cache.put_scan(digest, stored)
            if accepted is not None:
                self.accepted[digest] = accepted
            scan = (stored, False, None)
        self.cache.put_text(digest, text)
        return digest, (text, False, scan)

    def _builder(self) -> IndexBuilder:
        session_factories, engine_factories, request_decorators = self.names
        return IndexBuilder(session_factories, self.cache, engine_factories, request_decorators)

    def _finish(self) -> ProjectIndex:
        builder = self._builder()
        for path, (digest, facts) in self.facts.items():
            builder.merge(path, facts, digest)
        self.cache.asked.clear()
        answers = self.search.answers
        self.search = SearchMemory()
        self.search.answers = answers
        index = builder.finish(self.read, self.search)
        # only the answers to this pass's searches can be asked again
        keys = {search.key for search in self.search.searches}
        self.search.answers = {key: answer for key, answer in answers.items() if key[0] in keys and key[1] in self.facts}
        for path, key in index.parsed:
            held = builder.digests.get(path)
            if held is not None:
                self.accepted[held] = key
        # every module scanned whose bytes CPython's parser accepted (a cached scan reports none)
        index.parsed = frozenset(
            (path, self.accepted[self.facts[path][0]]) for path in index.modules if path in self.facts and self.facts[path][0] in self.accepted
        )
        self.extra(index)
        self.rebuilds += 1
        return index

    def _same_answers(
        self, path: str, before: Tuple[str, FileFacts], old: bytes, after: Tuple[str, FileFacts], new: bytes, index: ProjectIndex
    ) -> bool:
        """Whether the last pass, asked of `new` instead of `old`, gets the same answers."""
        (old_digest, (old_text, _, old_scan)), (new_digest, (new_text, _, new_scan)) = before, after
        if old_text != new_text or (old_scan and old_scan[0]) != (new_scan and new_scan[0]):
            return False
        if old_text[6] and not index.imported_names.isdisjoint(old_text[6]):
            return False  # its committing functions, worked out from its text, are looked up
        if path in index.modules and old_scan is None:  # scanned by a rescan: scan the new bytes
            if self.cache.get_scan(old_digest) != self._scan(path, new, new_digest):
                return False
        for names in self.cache.asked.get(old_digest, ()):
            if self._reason(path, old, names, old_text) != self._reason(path, new, names, new_text):
                return False
        if not is_test_path(path):
            for search in self.search.searches:
                if self.search.answer(search, path, old, old_digest, index, self.cache) != self.search.answer(search, path, new, new_digest, index, self.cache):
                    return False
        return True

    def _scan(self, path: str, data: bytes, digest: str) -> StoredScan:
        stored, _, accepted = scan_record(path, data, self.cache, digest)
        self.cache.put_scan(digest, stored)
        if accepted is not None:
            self.accepted[digest] = accepted
        return stored

    @staticmethod
    def _reason(path: str, data: bytes, names: str, text: TextFacts) -> Reason:
        fresh = names.split(",")
        found = rescan_reasons([(path, not set(fresh).isdisjoint(text[0]))], fresh, lambda _: data, None)
        return found[0][1] if found else (False, ())


