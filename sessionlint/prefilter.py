"""The text prefilter: whether a file's bytes can hold a finding of an enabled rule, decided
before anything is parsed, and the `Project` that carries it with the project pass's index.

Most files of a project never mention a session factory, an engine or a hand-off: they are
settled by a few substring tests and one regex, never parsed. Every fixture is checked with
and without the prefilter, so it may keep a file without findings, never drop one with.
"""

import functools
import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Pattern, Tuple

from sessionlint.config import Settings
from sessionlint.knowledge import CONVENTIONAL_FACTORY_NAMES, LIBRARY_ENGINE_BUILDERS, SESSION_CLASSES
from sessionlint.project.builder import ProjectCache, build_index
from sessionlint.project.model import ProjectIndex
from sessionlint.project.text import alternation
from sessionlint.project.versions import sqlalchemy_target

# Text tests that tell whether a file can hold a finding of a rule, keyed by the names rules
# give in TRIGGERS: a regex, a word that must also occur (or None), and substrings one of
# which any match of the regex contains. The substrings are tested first: `in` on bytes is
# some twenty times faster than Python's regex engine scanning for an alternation, and
# most files fail there. "factory_call" is built per project from the factory index. The
# regexes are compiled when first used (`static_trigger`): a helper process never uses them.
STATIC_TRIGGERS: Dict[str, Tuple[bytes, Optional[bytes], Tuple[bytes, ...]]] = {
    "connection": (rb"\.(?:connect|raw_connection)\s*\(", b"engine", (b".connect", b".raw_connection")),
    # a query built in `with ... as session:` (analysis.lazy decides whether it runs after)
    "lazy_query": (
        rb"(?m)^[ \t]*with\b[^\n]*\bas\s+(?:session|db|db_session|dbsession|sess|_session|async_session)\s*:",
        b".query(",
        (b"with ",),
    ),
    # a coroutine method called on a line without `await` (SL006 reports nothing else; its
    # `with` mismatches go through "factory_call")
    "async": (
        rb"(?m)^(?![^\n]*\bawait\b)[^\n]*\.(?:commit|close|rollback|flush|refresh|execute|scalars?"
        rb"|stream|delete|merge|dispose|get_one|run_sync|exec_driver_sql)\s*\(",
        b"async ",
        (b".",),
    ),
    # commit()/flush() or a statement (knowledge.STATEMENT_METHODS) and an `except` (the
    # commit may be in a helper the `try` calls: astfilter.may_leave_failed_transaction decides)
    "commit": (
        rb"(?m)^[ \t]*except\b",
        b"except",
        (b".commit", b".flush", b".exec", b".scalar", b".async_exec"),
    ),
    "engine": (
        rb"\b(?:create_engine|create_async_engine|engine_from_config|async_engine_from_config)\s*\(",
        b"engine",
        (b"engine",),
    ),
    # (and a sessionmaker handed to a constructor: `self._Session = Session`, a parameter
    # annotated `sessionmaker`; analysis.factories._maker_parameter)
    "maker": (
        rb"(?m)\b(?:sessionmaker|async_sessionmaker|scoped_session|async_scoped_session)\s*\("
        rb"|\bself\.\w+\s*=\s*(?:Session|sessionmaker|session_class)[ \t]*(?:#|$)"
        rb"|:\s*(?:async_)?sessionmaker\s*[,)=]",
        None,
        (b"maker", b"scoped_session", b"Session", b"session_class"),
    ),
    "handoff": (
        rb"\b(?:add_task|BackgroundTask|Thread|create_task|ensure_future|run_in_executor|submit|start_soon|to_thread|apply_async|delay|StreamingResponse|EventSourceResponse)\s*\(",
        b"ession",
        (b"_task", b"BackgroundTask", b"Thread", b"ensure_future", b"run_in_executor", b"submit", b"start_soon", b"to_thread", b"apply_async", b"delay", b"Response"),
    ),
}


@functools.lru_cache(maxsize=None)
def static_trigger(name: str) -> Tuple[Pattern[bytes], Optional[bytes], Tuple[bytes, ...]]:
    """STATIC_TRIGGERS[name] with its regex compiled."""
    pattern, word, any_of = STATIC_TRIGGERS[name]
    return re.compile(pattern), word, any_of


def _cover(names: Iterable[str]) -> Tuple[bytes, ...]:
    """Substrings one of which every name in `names` contains: "ession" and "ngine" stand
    for the many session and engine names."""
    cover = set()
    for name in names:
        encoded = name.encode()
        cover.add(next((w for w in (b"ession", b"ngine") if w in encoded), encoded))
    return tuple(sorted(cover))


_ASYNC_WORD = rb"[Aa]sync(?! def\b| for\b|io\b)"  # compiled by `re`'s own cache when first used


# (the library's top-level package, the builder's name and its parenthesis) of each of
# knowledge.LIBRARY_ENGINE_BUILDERS: a file that names both may call one
_LIBRARY_BUILDER_WORDS: Tuple[Tuple[bytes, bytes], ...] = tuple(
    (dotted.split(".", 1)[0].encode(), dotted.rsplit(".", 1)[1].encode() + b"(") for dotted in LIBRARY_ENGINE_BUILDERS
)


@dataclass(frozen=True)
class Project:
    """What every file's lint needs from the project pass. Plain data."""

    index: ProjectIndex
    # The patterns are kept as sources and compiled when a file is first tested (`_compiled`):
    # a run whose results are all cached tests none.
    factory_call: bytes
    session_alias: Optional[bytes] = None  # the project's async session type aliases
    # names of the project's async factories and engines, and async dependencies
    async_names: Optional[bytes] = None

    factory_words: Tuple[bytes, ...] = ()  # substrings one of which every factory name holds
    # names of the project's functions that commit a session they are given (SL007's check)
    committer_names: FrozenSet[str] = frozenset()
    # a call of one of them (`\bname\s*\(`), for the "commit" trigger
    committer_call: Optional[bytes] = None
    # names of the project's query runners (SL003's check through a runner)
    runner_names: FrozenSet[str] = frozenset()
    # names of properties that check out a new connection on every access (SL010)
    connection_property_names: FrozenSet[str] = frozenset()

    def may_have_findings(self, data: bytes, triggers: Iterable[str]) -> bool:
        return self.triage(data, triggers) is not None

    def triage(self, data: bytes, triggers: Iterable[str]) -> Optional[Tuple[str, ...]]:
        """None: no rule can report anything in `data`. Otherwise the file is parsed: `()`
        with libcst, or a tuple of triggers (all in astfilter.REFINED_TRIGGERS) whose `ast`
        checks decide whether libcst is needed."""
        from sessionlint.analysis.astfilter import REFINED_TRIGGERS

        refined: List[str] = []
        for trigger in sorted(triggers, key=lambda t: t in REFINED_TRIGGERS):
            if self._matches(data, trigger):
                if trigger not in REFINED_TRIGGERS:
                    return ()
                refined.append(trigger)
        return tuple(refined) if refined else None

    def _matches(self, data: bytes, trigger: str) -> bool:
        if trigger == "factory_call":
            return any(w in data for w in self.factory_words) and bool(_compiled(self.factory_call).search(data))
        if trigger == "async":
            if b"async" not in data:
                return False
            if self.session_alias is not None and _compiled(self.session_alias).search(data):
                return True
            if not self._async_object_named(data):
                return False
        if trigger == "commit" and self.committer_call is not None and b"except" in data and _compiled(self.committer_call).search(data):
            return bool(static_trigger(trigger)[0].search(data))
        if trigger == "engine" and any(root in data and name in data for root, name in _LIBRARY_BUILDER_WORDS):
            return True
        if trigger == "connection" and any(b"." + n.encode() + b"." in data for n in self.connection_property_names):
            return True
        if trigger == "lazy_query" and self.runner_names and b".query" in data and any(n.encode() in data for n in self.runner_names):
            return True
        pattern, word, any_of = static_trigger(trigger)
        return (word is None or word in data) and any(w in data for w in any_of) and bool(pattern.search(data))

    def _async_object_named(self, data: bytes) -> bool:
        """Whether the file can name an async session, connection or engine: an `Async...`
        type, `async with`, an `async_...`/`...async...` name, or one of the project's async
        factories. `async def` and `asyncio` alone do not: a sync session's `commit()` in a
        file with coroutines is no finding."""
        return bool(re.search(_ASYNC_WORD, data)) or (self.async_names is not None and bool(_compiled(self.async_names).search(data)))


def build_project(sources: Mapping[str, bytes], settings: Settings, cache: Optional["ProjectCache"] = None) -> Project:
    """The project pass over sources held in memory (no project root: the SQLAlchemy
    target is the configured one or the default)."""
    index = build_index(sources, settings.session_factories, cache, settings.engine_factories, settings.request_decorators)
    index.sqlalchemy = sqlalchemy_target(None, settings.target_sqlalchemy, settings.config_file)
    return project_of(index, settings)


def project_of(index: ProjectIndex, settings: Settings) -> Project:
    """The prefilter's trigger patterns for a finished project index."""
    names = set(CONVENTIONAL_FACTORY_NAMES) | {n.rsplit(".", 1)[-1] for n in settings.session_factories}
    names |= {dotted.rsplit(".", 1)[-1] for dotted in SESSION_CLASSES}
    for facts in index.modules.values():
        # a method `Class.method` is called as `obj.method(`; `next(get_db())` names the generator
        names |= {name.rsplit(".", 1)[-1] for name in facts.factories} | set(facts.generators)
    async_names = set(index.async_dependencies)
    for facts in index.modules.values():
        async_names |= {name.rsplit(".", 1)[-1] for name, factory in facts.factories.items() if factory.is_async}
    async_aliases = [name for name, is_async in index.session_aliases.items() if is_async]
    committers = frozenset(name for found in index.committers.values() for name in found)
    runners = frozenset(name for found in index.runners.values() for name in found)
    properties = frozenset(name for found in index.connection_properties.values() for name in found)
    committer_call = rb"\b" + alternation(committers) + rb"\s*\(" if committers else None
    return Project(
        index, trigger_source(names), _words(async_aliases), _words(async_names), _cover(names), committers, committer_call, runners, properties
    )


@functools.lru_cache(maxsize=64)
def _compiled(pattern: bytes) -> Pattern[bytes]:
    return re.compile(pattern)


def _words(names: Iterable[str]) -> Optional[bytes]:
    ordered = sorted(set(names))
    return rb"\b" + alternation(ordered) + rb"\b" if ordered else None


def trigger_pattern(names: Iterable[str]) -> Pattern[bytes]:
    return _compiled(trigger_source(names))


def trigger_source(names: Iterable[str]) -> bytes:
    """A file can hold a finding only if it calls a factory (`Name(`, `mod.Name(`) or imports
    one under another name (`Name as Alias`), or calls a sessionmaker kept under a key of an
    application's state (`app.state["session_maker_class"]()`, analysis.factories; real-bug
    corpus: kodosumi's operator guard)."""
    return (
        rb"\b" + alternation(names) + rb"\s*(?:\(|as\b)"
        rb"|(?i:\[\s*[\"'](?:async_*)?session_*(?:maker|local)\w*[\"']\s*\]\s*\()"
    )


