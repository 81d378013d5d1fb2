"""The lint run: discovery, the project pass, then one parse and one traversal per file."""

import functools
import itertools
import os
import re
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Pattern, Sequence, Tuple

from sessionlint.config import Settings
from sessionlint.diagnostics import (
    Diagnostic,
    ErrorKind,
    FileError,
    FileResult,
    Location,
    RunResult,
)
from sessionlint.discovery import discover, project_context
from sessionlint.registry import RuleInfo, rule_classes, select_rules

if TYPE_CHECKING:
    from sessionlint.analysis.index import IndexBuilder
    from sessionlint.cache import Cache


def _debug(message: str, *args: object) -> None:
    """Log an internal error (`--verbose` shows it). `logging` is imported only then: a
    helper that imports this module spends its start-up on libcst."""
    import logging

    logging.getLogger(__name__).debug(message, *args, exc_info=True)


# Text tests that tell whether a file can hold a finding of a rule, keyed by the names rules
# give in TRIGGERS: a regex, a word that must also occur (or None), and substrings one of
# which any match of the regex contains. The substrings are tested first: `in` on bytes is
# some twenty times faster than Python's regex engine scanning for an alternation, and
# most files fail there. "factory_call" is built per project from the factory index. The
# regexes are compiled when first used (`static_trigger`): a helper process never uses them.
STATIC_TRIGGERS: Dict[str, Tuple[bytes, Optional[bytes], Tuple[bytes, ...]]] = {
    "connection": (rb"\.(?:connect|raw_connection)\s*\(", b"engine", (b".connect", b".raw_connection")),
    # a coroutine method called on a line without `await` (SL006 reports nothing else; its
    # `with` mismatches go through "factory_call")
    "async": (
        rb"(?m)^(?![^\n]*\bawait\b)[^\n]*\.(?:commit|close|rollback|flush|refresh|execute|scalars?"
        rb"|stream|delete|merge|dispose|get_one|run_sync|exec_driver_sql)\s*\(",
        b"async ",
        (b".",),
    ),
    # commit()/flush() followed within a few lines by an `except`
    "commit": (
        rb"\.(?:commit|flush)\s*\([^\n]*\n(?:[^\n]*\n){0,12}?[ \t]*except\b",
        b"except",
        (b".commit", b".flush"),
    ),
    "engine": (
        rb"\b(?:create_engine|create_async_engine|engine_from_config|async_engine_from_config)\s*\(",
        b"engine",
        (b"engine",),
    ),
    "maker": (
        rb"\b(?:sessionmaker|async_sessionmaker|scoped_session|async_scoped_session)\s*\(",
        None,
        (b"maker", b"scoped_session"),
    ),
    "handoff": (
        rb"\b(?:add_task|Thread|create_task|ensure_future|run_in_executor|submit|start_soon|to_thread|apply_async|delay)\s*\(",
        b"ession",
        (b"_task", b"Thread", b"ensure_future", b"run_in_executor", b"submit", b"start_soon", b"to_thread", b"apply_async", b"delay"),
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


@dataclass(frozen=True)
class Project:
    """What every file's lint needs from the project pass. Plain data."""

    index: object  # analysis.factories.ProjectIndex
    factory_call: Pattern[bytes]
    session_alias: Optional[Pattern[bytes]] = None  # the project's async session type aliases
    # names of the project's async factories and engines, and async dependencies
    async_names: Optional[Pattern[bytes]] = None

    factory_words: Tuple[bytes, ...] = ()  # substrings one of which every factory name holds

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
            return any(w in data for w in self.factory_words) and bool(self.factory_call.search(data))
        if trigger == "async":
            if b"async" not in data:
                return False
            if self.session_alias is not None and self.session_alias.search(data):
                return True
            if not self._async_object_named(data):
                return False
        pattern, word, any_of = static_trigger(trigger)
        return (word is None or word in data) and any(w in data for w in any_of) and bool(pattern.search(data))

    def _async_object_named(self, data: bytes) -> bool:
        """Whether the file can name an async session, connection or engine: an `Async...`
        type, `async with`, an `async_...`/`...async...` name, or one of the project's async
        factories. `async def` and `asyncio` alone do not: a sync session's `commit()` in a
        file with coroutines is no finding."""
        return bool(re.search(_ASYNC_WORD, data)) or (self.async_names is not None and bool(self.async_names.search(data)))


def read_sources(files: Sequence[str]) -> Tuple[Dict[str, bytes], List[FileResult]]:
    """Every file's bytes, in memory (for scripts and tests; a run reads through
    `SourceFiles`)."""
    sources: Dict[str, bytes] = {}
    failures: List[FileResult] = []
    for path in files:
        data, failure = _read(path)
        if failure is not None:
            failures.append(failure)
        else:
            sources[path] = data  # type: ignore[assignment]
    return sources, failures


def _read(path: str) -> Tuple[Optional[bytes], Optional[FileResult]]:
    try:
        with open(path, "rb") as handle:
            return handle.read(), None
    except OSError as error:
        reason = error.strerror or str(error)
        return None, FileResult(path, error=FileError(ErrorKind.IO, path, f"cannot read file: {reason}"))


class SourceFiles:
    """The files of a run, read from disk when asked rather than held: a run over a large
    tree keeps only the bytes of the files it parses, has findings in, or fixes (those are
    pinned, as is stdin). Reading a file a second time costs less than holding every file."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths: List[str] = list(dict.fromkeys(paths))
        self.known = set(self.paths)  # membership: `paths` is a list, in order
        self.pinned: Dict[str, bytes] = {}
        # Once the project pass has read every file: those that can hold a suppression
        # SL100 reports without any finding in the file (None: not known, read them all).
        self.marked: Optional[set] = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.known

    def __setitem__(self, path: str, data: bytes) -> None:
        if path not in self.known:
            self.paths.append(path)
            self.known.add(path)
        self.pinned[path] = data

    def __getitem__(self, path: str) -> bytes:
        data = self.get(path)
        if data is None:
            raise KeyError(path)
        return data

    def get(self, path: str, default: Optional[bytes] = None) -> Optional[bytes]:
        data = self.pinned.get(path)
        if data is not None:
            return data
        if path not in self.known:
            return default
        data, _ = _read(path)
        return default if data is None else data

    def remove(self, path: str) -> None:
        self.pinned.pop(path, None)
        if path in self.known:
            self.known.discard(path)
            self.paths.remove(path)


def build_project(sources: Mapping[str, bytes], settings: Settings, cache: Optional[object] = None) -> Project:
    """The project pass over sources held in memory."""
    from sessionlint.analysis.index import build_index

    index = build_index(sources, settings.session_factories, cache, settings.engine_factories, settings.request_decorators)
    return project_of(index, settings)


def project_of(index: object, settings: Settings) -> Project:
    """The prefilter's trigger patterns for a finished project index."""
    from sessionlint.analysis.index import CONVENTIONAL_FACTORY_NAMES, SESSION_CLASSES

    names = set(CONVENTIONAL_FACTORY_NAMES) | {n.rsplit(".", 1)[-1] for n in settings.session_factories}
    names |= {dotted.rsplit(".", 1)[-1] for dotted in SESSION_CLASSES}
    for facts in index.modules.values():  # type: ignore[attr-defined]
        names |= set(facts.factories)
    async_names = set(index.async_dependencies)  # type: ignore[attr-defined]
    for facts in index.modules.values():  # type: ignore[attr-defined]
        async_names |= {name for name, factory in facts.factories.items() if factory.is_async}
    async_aliases = [name for name, is_async in index.session_aliases.items() if is_async]  # type: ignore[attr-defined]
    return Project(index, trigger_pattern(names), _words(async_aliases), _words(async_names), _cover(names))  # type: ignore[attr-defined]


def _words(names: Iterable[str]) -> Optional[Pattern[bytes]]:
    from sessionlint.analysis.index import alternation

    ordered = sorted(set(names))
    return re.compile(rb"\b" + alternation(ordered) + rb"\b") if ordered else None


def trigger_pattern(names: Iterable[str]) -> Pattern[bytes]:
    """A file can hold a finding only if it calls a factory (`Name(`, `mod.Name(`) or imports
    one under another name (`Name as Alias`)."""
    from sessionlint.analysis.index import alternation

    return re.compile(rb"\b" + alternation(names) + rb"\s*(?:\(|as\b)")


def lint_source(
    data: bytes, path: str, project: Project, rules: Sequence[type], prefilter: bool = True
) -> FileResult:
    """Lint one file's bytes. Never raises for bad input: a parse failure or a rule crash is
    recorded on the result."""
    refine: Tuple[str, ...] = ()
    if prefilter:
        triage = project.triage(data, {t for rule in rules for t in rule.TRIGGERS})  # type: ignore[attr-defined]
        if triage is None:
            return FileResult(path)
        refine = triage
    return parse_and_lint(data, path, project, rules, refine)


# CPython's parser refuses these nestings outright; the code cannot run, so it is reported
# as CPython reports it, and libcst never sees it.
_NESTING_LIMITS = ("too many nested parentheses", "too many levels of indentation", "too many statically nested blocks")
# libcst's native parser recurses on the C stack: a few thousand nested operators overflow
# the main thread's 8 MiB (a segmentation fault, not an exception). It runs on a thread of
# its own with this much stack, and only after CPython's own parser, which turns deeper
# nesting into a RecursionError, has accepted the file (or rejected it for newer syntax).
PARSER_STACK_BYTES = 512 * 1024 * 1024


class _ParserThread:
    """One thread with PARSER_STACK_BYTES of stack that runs what it is given, one call at a
    time, while the caller waits: a ThreadPoolExecutor of one, without importing
    `concurrent.futures` (0.006 s of a helper's start)."""

    def __init__(self) -> None:
        import threading
        from _queue import SimpleQueue

        self.calls: "SimpleQueue[Optional[Tuple[Callable, Tuple[object, ...]]]]" = SimpleQueue()
        self.answers: "SimpleQueue[Tuple[bool, object]]" = SimpleQueue()
        previous = threading.stack_size(PARSER_STACK_BYTES)
        try:
            self.thread = threading.Thread(target=self._serve, name="sessionlint-parser", daemon=True)
            self.thread.start()
        finally:
            threading.stack_size(previous)

    def _serve(self) -> None:
        while True:
            call = self.calls.get()
            if call is None:
                return
            function, args = call
            try:
                answer: Tuple[bool, object] = (True, function(*args))
            except BaseException as error:  # noqa: B036 - re-raised in the caller's thread
                answer = (False, error)
            del call, function, args
            self.answers.put(answer)
            del answer

    def run(self, function: Callable, args: Tuple[object, ...]) -> object:
        self.calls.put((function, args))
        succeeded, value = self.answers.get()
        if not succeeded:
            raise value  # type: ignore[misc]
        return value

    def stop(self) -> None:
        self.calls.put(None)
        self.thread.join()


_PARSER: Dict[str, _ParserThread] = {}


def _reset_parser_after_fork() -> None:
    _PARSER.clear()  # the parent's thread does not exist in a forked child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_parser_after_fork)


def _stop_parser_thread() -> None:
    """Join the parser thread: a process about to fork has no other thread."""
    parser = _PARSER.pop("thread", None)
    if parser is not None:
        parser.stop()


def _run_on_big_stack(function: Callable, *args: object) -> object:
    """`function(*args)` on the parser thread (its result, or its exception re-raised)."""
    parser = _PARSER.get("thread")
    if parser is None:
        parser = _PARSER["thread"] = _ParserThread()
    return parser.run(function, args)


# CPython 3.11+ refuses ASTs deeper than this itself (RecursionError); older versions build
# them, and libcst then takes minutes on them. Checked by hand there.
MAX_AST_DEPTH = 2900


def _cpython_parse(data: bytes, path: str) -> object:
    import ast
    import sys

    with warnings.catch_warnings():  # SyntaxWarnings are the code's business, not ours
        warnings.simplefilter("ignore")
        tree = ast.parse(data, filename=path)
    if sys.version_info < (3, 11):
        stack = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_AST_DEPTH:
                raise RecursionError("maximum AST depth exceeded")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def parse_and_lint(
    data: bytes,
    path: str,
    project: Project,
    rules: Sequence[type],
    refine: Tuple[str, ...] = (),
    module: Optional[object] = None,
) -> FileResult:
    """The part of linting that needs libcst: parse, one traversal, diagnostics. With
    `refine` (triggers of astfilter.REFINED_TRIGGERS), CPython's tree decides first whether
    libcst is needed at all. `module`: libcst's tree of `data`, when it was parsed already
    (`_parse_ahead`)."""
    import sys

    tree = None
    try:
        # CPython's parser accepted the file in the project pass already: the check below
        # cannot fail (before 3.11 it also measures the AST's depth, so it runs there).
        if refine or sys.version_info < (3, 11) or (path, hash(data)) not in project.index.parsed:  # type: ignore[attr-defined]
            # On the big stack too: Python 3.9's AST construction has no recursion guard and
            # overflows the main thread's stack on a few thousand nested operators.
            tree = _run_on_big_stack(_cpython_parse, data, path)
    except (RecursionError, MemoryError) as error:
        return FileResult(path, error=FileError(ErrorKind.SYNTAX, path, f"file too deeply nested to parse: {type(error).__name__}", 1, 1))
    except SyntaxError as error:
        if any(limit in str(error.msg) for limit in _NESTING_LIMITS):
            return FileResult(path, error=FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {error.msg}", error.lineno or 1, error.offset or 1))
        # Possibly syntax newer than this Python: libcst decides.
    except ValueError:  # a NUL byte: libcst reports it as a syntax error below
        pass
    if refine and tree is not None:
        from sessionlint.analysis.astfilter import REFINED_TRIGGERS

        if not any(REFINED_TRIGGERS[trigger](tree) for trigger in refine):
            return FileResult(path)
    del tree
    import libcst as cst

    try:
        if module is None:
            module = _run_on_big_stack(cst.parse_module, data)
    except cst.ParserSyntaxError as error:
        return FileResult(path, error=_syntax_error(data, path, error))
    except (UnicodeDecodeError, LookupError, SyntaxError) as error:
        return FileResult(path, error=FileError(ErrorKind.ENCODING, path, f"cannot decode file: {error}"))
    except (RecursionError, MemoryError) as error:
        return FileResult(path, error=FileError(ErrorKind.SYNTAX, path, f"file too deeply nested to parse: {type(error).__name__}"))
    try:
        mentions = b"sqlalchemy" in data or b"sqlmodel" in data
        return _lint_module(module, path, project, rules, mentions)
    except Exception as error:  # a bug in sessionlint: one file's internal error, not a crash
        if os.environ.get("SESSIONLINT_STRICT") == "1":
            raise
        _debug("internal error in %s", path)
        return FileResult(
            path,
            error=FileError(
                ErrorKind.INTERNAL,
                path,
                f"internal error: {type(error).__name__}: {error} (please report it with this file)",
            ),
            parsed=True,
        )


def _syntax_error(data: bytes, path: str, error: Exception) -> FileError:
    """CPython's own message and position when it rejects the file too (libcst's native
    parser often points past the real error); libcst's otherwise."""
    import ast

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(data, filename=path)
    except SyntaxError as cpython:
        return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {cpython.msg}", cpython.lineno or 1, cpython.offset or 1)
    except (ValueError, RecursionError, MemoryError) as other:
        return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {other}", 1, 1)
    message = str(getattr(error, "message", "") or error).strip().splitlines()[0]
    line = getattr(error, "raw_line", 1)
    column = getattr(error, "raw_column", 0) + 1
    return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {message} (libcst)", line, column)


def _lint_module(
    module: object, path: str, project: Project, rules: Sequence[type], mentions_sqlalchemy: bool
) -> FileResult:
    context = run_rules(module, path, project, rules, mentions_sqlalchemy)
    diagnostics = tuple(d for d, _ in diagnostics_with_plans(context))
    crashes = context.crashes  # type: ignore[attr-defined]
    if crashes:
        codes = ", ".join(code for code, _ in crashes)
        details = "; ".join(f"{code}: {problem}" for code, problem in crashes)
        error = FileError(
            ErrorKind.INTERNAL,
            path,
            f"internal error in rule {codes} ({details}); the other rules ran. Please report it with this file",
        )
        return FileResult(path, diagnostics, error=error, parsed=True)
    return FileResult(path, diagnostics, parsed=True)


def run_rules(module: object, path: str, project: Project, rules: Sequence[type], mentions_sqlalchemy: bool) -> object:
    """The one traversal of `module` with the analysis collectors and every rule; returns
    the file context holding the rules' reports (with their fix plans)."""
    import libcst as cst

    from sessionlint.analysis.tree import SCOPE_TYPES, traverse
    from sessionlint.rules.base import FileContext

    context = FileContext(module, path, project.index, mentions_sqlalchemy)  # type: ignore[arg-type]
    instances = [cls(context) for cls in rules]
    visit_table: Dict[type, List[Callable]] = {}
    leave_table: Dict[type, List[Callable]] = {}
    for instance in instances:
        for class_name, methods in type(instance).callbacks().items():
            node_type = getattr(cst, class_name, None)
            if node_type is None:
                continue
            for method in methods:
                table = visit_table if method.startswith("visit_") else leave_table
                table.setdefault(node_type, []).append(getattr(instance, method))

    lifecycle = context.lifecycle
    frameworks = context.frameworks
    ancestors: List[object] = []
    scope_types = SCOPE_TYPES + (cst.Module,)
    try_types = (cst.Try,) + ((cst.TryStar,) if hasattr(cst, "TryStar") else ())
    call_type = cst.Call
    with_type = cst.With

    function_type = cst.FunctionDef
    class_type = cst.ClassDef
    global_type = cst.Global
    yield_type = cst.Yield
    assign_type = cst.Assign
    import_from_type = cst.ImportFrom
    resolver = context.resolver  # type: ignore[attr-defined]

    def visit(node: object) -> None:
        node_type = type(node)
        if node_type is call_type:
            lifecycle.on_call(node, ancestors)  # type: ignore[arg-type]
            frameworks.on_call(node)  # type: ignore[arg-type]
        elif node_type in scope_types:
            lifecycle.enter_scope(node)  # type: ignore[arg-type]
            if node_type is function_type:
                frameworks.enter_function(node)  # type: ignore[arg-type]
                resolver.enter_function()
            elif node_type is class_type:
                frameworks.enter_class(node)  # type: ignore[arg-type]
        elif node_type is assign_type:
            lifecycle.on_assign(node)  # type: ignore[arg-type]
        elif node_type is import_from_type:
            resolver.on_import_from(node)  # type: ignore[arg-type]
        elif node_type is yield_type:
            lifecycle.on_yield()
        elif node_type is global_type:
            frameworks.on_global(node)  # type: ignore[arg-type]
            lifecycle.on_global(node)  # type: ignore[arg-type]
        elif node_type in try_types:
            lifecycle.enter_try()
        elif node_type is with_type:
            lifecycle.on_with(node)  # type: ignore[arg-type]
        callbacks = visit_table.get(node_type)
        if callbacks:
            for callback in callbacks:
                _call_rule(callback, node, context)
        ancestors.append(node)

    def leave(node: object) -> None:
        ancestors.pop()
        node_type = type(node)
        if node_type in scope_types:
            lifecycle.leave_scope(node)  # type: ignore[arg-type]
            if node_type is function_type:
                frameworks.leave_function()
                resolver.leave_function()
            elif node_type is class_type:
                frameworks.leave_class()
        elif node_type in try_types:
            lifecycle.leave_try()
        callbacks = leave_table.get(node_type)
        if callbacks:
            for callback in callbacks:
                _call_rule(callback, node, context)

    traverse(module, visit, leave)  # type: ignore[arg-type]
    return context


def _call_rule(callback: Callable, node: object, context: object) -> None:
    """One rule's callback. A crash in it (a bug in sessionlint) disables that rule for the
    rest of this file and is recorded with the rule's code; the other rules go on."""
    rule = callback.__self__  # type: ignore[attr-defined]
    if rule.crashed is not None:
        return
    try:
        callback(node)
    except Exception as error:
        if os.environ.get("SESSIONLINT_STRICT") == "1":
            raise
        _debug("rule %s crashed on %s", rule.code, context.path)  # type: ignore[attr-defined]
        rule.crashed = f"{type(error).__name__}: {error}"
        context.crashes.append((rule.code, rule.crashed))  # type: ignore[attr-defined]


def diagnostics_with_plans(context: object) -> List[Tuple[Diagnostic, object]]:
    """The context's reports as diagnostics (positions resolved once, for reported nodes
    only), each with its fix plan (or None), in source order."""
    reports = context.reports  # type: ignore[attr-defined]
    if not reports:
        return []
    positions = context.positions  # type: ignore[attr-defined]
    wanted = [r.node for r in reports]
    for report in reports:
        for ref in report.refs.values():
            wanted.append(ref[1] if isinstance(ref, tuple) else ref)
    positions.resolve(wanted)
    found = []
    for report in reports:
        (start_line, start_column), (end_line, end_column) = positions.span(report.node)
        lines = {}
        for key, ref in report.refs.items():
            if isinstance(ref, tuple):
                lines[key] = positions.span(ref[1])[1][0]
            else:
                lines[key] = positions.line(ref)
        message = report.message.format(**lines) if lines else report.message
        diagnostic = Diagnostic(
            code=report.code,
            name=report.name,
            message=message,
            path=context.path,  # type: ignore[attr-defined]
            start=Location(start_line, start_column + 1),
            end=Location(end_line, end_column + 1),
            help=report.help,
            fix=report.fix.as_fix() if report.fix is not None else None,
            confidence=report.confidence,
        )
        found.append((diagnostic, report.fix))
    found.sort(key=lambda pair: pair[0].sort_key)
    return found


def run(
    paths: Sequence[str],
    settings: Settings,
    stdin: Optional[Tuple[str, bytes]] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    fix: Optional[str] = None,
) -> RunResult:
    """Lint `paths` with `settings`: discovery, the project pass, the prefilter, cached results,
    then one parse and one traversal per remaining file, on a process pool when it pays; then
    per-file ignores and inline suppressions. `stdin` is (path to report, bytes) for `-`.
    `fix` ("safe" or "unsafe") applies fixes in memory: the fixed bytes are in `result.fixes`
    and the findings are those of the fixed text; writing is the caller's."""
    import gc

    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _run(paths, settings, stdin, progress, fix)
    finally:
        gc.set_threshold(*thresholds)


# libcst's parser makes millions of short-lived objects, none in reference cycles, and
# CPython's cyclic collector, at its default thresholds (700, 10, 10), ran some 25,000 times
# per worker on the whole corpus, 12 s of each worker's 85 s (gc.callbacks). At these it
# ran 5,000 times, 1.7 s. Processes of sessionlint's own (workers, helpers) also freeze
# what they hold for good (libcst, the rules, the project) out of the collector's sight.
GC_THRESHOLDS = (50_000, 20, 20)


def _settle_gc() -> None:
    """In a worker or helper process: what it holds now stays; thresholds for parsing."""
    import gc

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _run(
    paths: Sequence[str],
    settings: Settings,
    stdin: Optional[Tuple[str, bytes]],
    progress: Optional[Callable[[int, int], None]],
    fix: Optional[str],
) -> RunResult:
    result = RunResult()
    discovered = discover([p for p in paths if p != "-"], settings)
    result.usage_errors.extend(discovered.errors)
    all_infos: List[RuleInfo] = select_rules(settings.effective_select, settings.ignore)
    infos = [info for info in all_infos if info.class_name]  # SL1xx come from the engine
    sources = SourceFiles(discovered.files)
    if stdin is not None and not (settings.force_exclude and settings.is_excluded(stdin[0])):
        sources[stdin[0]] = stdin[1]
    enabled = frozenset(info.code for info in all_infos)
    if not infos:
        for path in list(sources):
            failure = None if path in sources.pinned else _read(path)[1]
            if failure is not None:
                sources.remove(path)
            result.files.append(failure or FileResult(path))
    else:
        # The file an editor pipes in (`-` with --stdin-filename) anchors the project too; its
        # copy on disk is not read, the piped text stands for it.
        anchors = [p for p in paths if p != "-"] or ([stdin[0]] if stdin is not None else [])
        linted = list(discovered.files) + ([stdin[0]] if stdin is not None else [])
        helper = _Helper.start_for(sources, settings, infos)
        try:
            context = project_context(anchors, linted, settings)
            project = _lint_sources(sources, settings, infos, result, progress, context, helper)
        finally:
            if helper is not None:
                helper.close()
        if fix is not None:
            _fix_sources(sources, settings, infos, result, project, fix == "unsafe", enabled)
    _apply_suppressions(result, sources, settings, enabled)
    for file_result in result.files:
        if file_result.diagnostics:
            data = sources.get(file_result.path)
            if data is not None:
                result.sources[file_result.path] = data
    result.files.sort(key=lambda r: r.path)
    return result


def _filter(
    path: str, data: bytes, diagnostics: Sequence[Diagnostic], settings: Settings, enabled: frozenset, report_unused: bool
) -> Tuple[Tuple[Diagnostic, ...], int]:
    """Per-file ignores from the configuration, then `# noqa` / `# sessionlint: ignore`
    comments (and SL100 for comments that suppress nothing, when `report_unused`); the kept
    findings and how many comments suppressed."""
    from sessionlint import suppression
    from sessionlint.registry import by_code, matches

    ignored = settings.ignored_codes(path) if settings.per_file_ignores else ()

    def not_ignored(found: Sequence[Diagnostic]) -> Tuple[Diagnostic, ...]:
        if not ignored:
            return tuple(found)
        return tuple(d for d in found if not any(matches(s, by_code(d.code)) for s in ignored))  # type: ignore[arg-type]

    kept = not_ignored(diagnostics)
    marks = suppression.parse(data) if (kept or report_unused) else None
    if marks is None:
        return kept, 0
    kept, count = suppression.apply(path, kept, marks, enabled, report_unused)
    return not_ignored(kept), count


def visible(path: str, data: bytes, diagnostics: Sequence[Diagnostic], settings: Settings, enabled: frozenset) -> Tuple[Diagnostic, ...]:
    """The findings that neither a per-file ignore nor an inline suppression hides (what the
    fixes may touch)."""
    return _filter(path, data, diagnostics, settings, enabled, False)[0]


def _fix_sources(
    sources: SourceFiles,
    settings: Settings,
    infos: List[RuleInfo],
    result: RunResult,
    project: Project,
    unsafe: bool,
    enabled: frozenset,
) -> None:
    """Fix rounds for every file with an applicable, unsuppressed fix, in this process."""
    from sessionlint.fixes.apply import fix_source, is_applied_fix

    classes = rule_classes(infos)
    for index, file_result in enumerate(result.files):
        path = file_result.path
        data = sources.get(path)
        if data is None or not any(is_applied_fix(d, unsafe) for d in file_result.diagnostics):
            continue

        def allowed(diagnostics: Sequence[Diagnostic], text: bytes, path: str = path) -> Tuple[Diagnostic, ...]:
            return visible(path, text, diagnostics, settings, enabled)

        outcome = fix_source(data, path, project, classes, unsafe=unsafe, allowed=allowed)
        if outcome.problem is not None:
            result.fix_problems.append((path, outcome.problem))
        if outcome.changed:
            result.fixes[path] = (data, outcome.data, dict(outcome.fixed))
            # What to report if the fixed file cannot be written: the original's findings.
            result.unfixed[path] = replace(file_result, diagnostics=visible(path, data, file_result.diagnostics, settings, enabled))
            sources[path] = outcome.data
            result.files[index] = outcome.result


def _apply_suppressions(result: RunResult, sources: SourceFiles, settings: Settings, enabled: frozenset) -> None:
    """Per-file ignores and inline suppressions on every file's findings."""
    from sessionlint.suppression import UNUSED_CODE

    report_unused = UNUSED_CODE in enabled
    marked = sources.marked
    for index, file_result in enumerate(result.files):
        path = file_result.path
        if not file_result.diagnostics:
            if not report_unused:
                continue
            if marked is not None and path not in marked and path not in sources.pinned:
                continue  # read in the project pass: no suppression SL100 could report
        data = sources.get(path)
        if data is None:
            continue
        diagnostics, count = _filter(file_result.path, data, file_result.diagnostics, settings, enabled, report_unused)
        result.suppressed += count
        if diagnostics != file_result.diagnostics:
            result.files[index] = replace(file_result, diagnostics=tuple(sorted(diagnostics, key=lambda d: d.sort_key)))


def _lint_sources(
    sources: SourceFiles,
    settings: Settings,
    infos: List[RuleInfo],
    result: RunResult,
    progress: Optional[Callable[[int, int], None]],
    context: Sequence[str] = (),
    helper: Optional["_Helper"] = None,
) -> Project:
    """The project pass (every file read once, and the project's other files in `context`),
    then per file: the cached result, or the prefilter, or a parse (the file read a second
    time, and its bytes kept until linted). `helper`: the forked process of a small run that
    imports libcst meanwhile and lints the files that need it. A cold run over many files
    does all of it on workers (`_lint_on_pool`)."""
    from sessionlint.analysis.index import IndexBuilder
    from sessionlint.cache import Cache

    cache = Cache.open(settings.cache_dir) if settings.cache else Cache.disabled()
    if cache.problem is not None:
        result.warnings.append(cache.problem)
    builder = IndexBuilder(settings.session_factories, cache, settings.engine_factories, settings.request_decorators)
    # A cold run over many files starts its workers now: they import libcst and the rules on
    # the second core while this process starts the project pass, then share it.
    lint = _Lint(sources, settings, infos, result, progress, cache, builder, context)
    if helper is None and len(sources) >= EARLY_POOL_FILES and not cache.files:
        triggers = frozenset(t for info in infos for t in info.triggers)
        pool = _WarmPool.start(settings.jobs, infos, builder, triggers, settings.prefilter, cache.enabled)
        if pool is not None:
            try:
                return _lint_on_pool(lint, pool)
            finally:
                pool.close()
    return _lint_with(lint, helper)


@dataclass
class _Lint:
    """What a run's two ways of linting (`_lint_with`, `_lint_on_pool`) work on."""

    sources: SourceFiles
    settings: Settings
    infos: List[RuleInfo]
    result: RunResult
    progress: Optional[Callable[[int, int], None]]
    cache: "Cache"
    builder: "IndexBuilder"
    context: Sequence[str]


def _lint_with(lint: _Lint, helper: Optional["_Helper"]) -> Project:
    """The run in this process: the project pass, then the cache and the prefilter, then
    the files that need parsing, linted by `helper`, or on a pool if they are many, or
    here."""
    from sessionlint.cache import PROJECT_TABLES, fingerprint
    from sessionlint.suppression import may_report_unused

    sources, settings, infos, result, progress = lint.sources, lint.settings, lint.infos, lint.result, lint.progress
    cache, builder, context = lint.cache, lint.builder, lint.context
    digests: Dict[str, str] = {}
    marked = set()
    for path in list(sources):
        data = sources.pinned.get(path)
        if data is None:
            data, failure = _read(path)
            if failure is not None:
                result.files.append(failure)
                sources.remove(path)
                continue
        digest = cache.digest(data) if cache.enabled else None  # type: ignore[arg-type]
        builder.add(path, data, digest)  # type: ignore[arg-type]
        if digest is not None:
            digests[path] = digest
        if may_report_unused(data):  # type: ignore[arg-type]
            marked.add(path)
    sources.marked = marked
    # The project's other files: their facts, not their findings. Their bytes are held up to
    # HELD_CONTEXT_BYTES for the rescans' questions (without the cache, the second read of
    # airflow's 613 files took 0.02 s of a hook run); a large tree is read again instead.
    held: Dict[str, bytes] = {}
    budget = HELD_CONTEXT_BYTES
    for path in context:
        data, failure = _read(path)
        if failure is None:
            builder.add(path, data, cache.digest(data) if cache.enabled else None)  # type: ignore[arg-type]
            if len(data) <= budget:  # type: ignore[arg-type]
                held[path] = data  # type: ignore[assignment]
                budget -= len(data)  # type: ignore[arg-type]

    def read(path: str) -> Optional[bytes]:
        data = held.get(path)
        if data is not None:
            return data
        return sources.get(path) if path in sources else _read(path)[0]

    project = project_of(builder.finish(read), settings)
    held.clear()
    triggers = {t for info in infos for t in info.triggers}
    run_key = fingerprint(settings, [i.code for i in infos], project.index)
    pending: List[Tuple[str, bytes, str, Tuple[str, ...]]] = []
    for path in sources:
        digest = digests.get(path, "")
        cached = cache.get(run_key, path, digest) if digest else None
        if cached is not None:
            result.files.append(cached)
            continue
        data = sources.get(path)
        if data is None:  # gone since the project pass
            result.files.append(_read(path)[1] or FileResult(path))
            continue
        refine = project.triage(data, triggers) if settings.prefilter else ()
        if refine is None:
            file_result = FileResult(path)
            cache.put(run_key, path, digest, file_result)
            result.files.append(file_result)
        else:
            pending.append((path, data, digest, refine))
    if pending:
        if helper is not None:
            # The project pass's tables are saved while the helper parses.
            meanwhile = functools.partial(cache.save, PROJECT_TABLES)
            linted = helper.lint(pending, project, progress, meanwhile)
        else:
            linted = _lint_pending(pending, project, infos, settings.jobs, progress)
        for (path, data, digest, _), file_result in zip(pending, linted):
            result.files.append(file_result)
            if file_result.diagnostics:
                sources[path] = data  # what was linted is what the report and the fixes use
            if file_result.error is None or file_result.error.kind is not ErrorKind.INTERNAL:
                cache.put(run_key, path, digest, file_result)
    cache.save()
    return project


def _lint_on_pool(lint: _Lint, pool: "_WarmPool") -> Project:
    """A cold run over many files, on the workers forked at its start: they read the files
    for the project pass (text facts, module scans, content hashes), do its rescans, then
    read each file again to prefilter and lint it. This process merges what they learn,
    in the order of the files, so the index is the one `_lint_with` builds."""
    from sessionlint.cache import PROJECT_TABLES, fingerprint
    from sessionlint.suppression import may_report_unused

    sources, settings, infos, result, progress = lint.sources, lint.settings, lint.infos, lint.result, lint.progress
    cache, builder, context = lint.cache, lint.builder, lint.context
    digests: Dict[str, str] = {}
    sizes: Dict[str, int] = {}
    marked = set()
    paths = list(sources)
    pinned = sources.pinned
    records = pool.facts([p for p in paths if p not in pinned] + list(context))
    for path in paths:
        data = pinned.get(path)
        if data is not None:
            digest = cache.digest(data) if cache.enabled else None
            record: object = (digest, builder.file_facts(path, data, digest), may_report_unused(data), len(data))
        else:
            record = next(records)
        if isinstance(record, FileResult):  # unreadable
            result.files.append(record)
            sources.remove(path)
            continue
        digest, facts, mark, size = record  # type: ignore[misc]
        builder.merge(path, facts, digest)
        sizes[path] = size
        if digest is not None:
            digests[path] = digest
        if mark:
            marked.add(path)
    sources.marked = marked
    for path in context:  # the project's other files: their facts, not their findings
        record = next(records)
        if not isinstance(record, FileResult):
            builder.merge(path, record[1], record[0])  # type: ignore[index]

    def read(path: str) -> Optional[bytes]:
        return sources.get(path) if path in sources else _read(path)[0]

    index = builder.finish(read, None if pinned else pool)
    project = project_of(index, settings)
    run_key = fingerprint(settings, [i.code for i in infos], project.index)
    items = [(path, pinned.get(path), sizes.get(path, 0)) for path in sorted(sources, key=lambda p: -sizes.get(p, 0))]
    meanwhile = functools.partial(cache.save, PROJECT_TABLES)
    done = 0
    for batch, answers in pool.lint_files(items, project, meanwhile):
        for (path, _), (file_result, data, cacheable) in zip(batch, answers):
            result.files.append(file_result)
            if data is not None:
                sources[path] = data  # what was linted is what the report and the fixes use
            if cacheable and (file_result.error is None or file_result.error.kind is not ErrorKind.INTERNAL):
                cache.put(run_key, path, digests.get(path, ""), file_result)
        done += len(batch)
        if progress is not None:
            progress(done, len(items))
    cache.save()
    return project


# The bytes of the project's other files a run over a few files holds for its project pass.
HELD_CONTEXT_BYTES = 32 << 20
# Below this many bytes to parse, a process pool costs more to start (about 0.1 s) than it
# saves: libcst parses and sessionlint traverses some 200 KB a second.
POOL_THRESHOLD_BYTES = 160_000
# From this many files, a cold run starts its pool before the project pass (`_WarmPool`).
EARLY_POOL_FILES = 200
# The project pass's files per task on the pool; the files per lint task, up to a total size.
FACTS_CHUNK = 256
LINT_BATCH_FILES = 64
LINT_BATCH_BYTES = 256_000

_WORKER: Dict[str, object] = {}


def _worker_init(project: Project, codes: Sequence[str]) -> None:
    from sessionlint.registry import RULES

    _WORKER["project"] = project
    _WORKER["rules"] = rule_classes([r for r in RULES if r.code in codes])
    _settle_gc()


def _worker_lint(batch: Sequence[Tuple[str, bytes, Tuple[str, ...]]]) -> List[FileResult]:
    project = _WORKER["project"]
    rules = _WORKER["rules"]
    return [parse_and_lint(data, path, project, rules, refine) for path, data, refine in batch]  # type: ignore[arg-type]


class _WarmPool:
    """Worker processes forked at the start of a cold run over many files, while this
    process is small: each imports libcst and the rules at once, then takes a share of the
    project pass (`facts`, `reasons`, `scans`), then prefilters and lints files
    (`lint_files`); this process merges. Neither the import nor this process's memory (the project index) is
    paid again per worker. The project reaches them through a queue made before the fork:
    one pickled copy per worker, which each takes before its first file to lint."""

    def __init__(self, pool: object, jobs: int, queue: object) -> None:
        self.pool = pool
        self.jobs = jobs
        self.queue = queue
        self.sent = False

    @classmethod
    def start(
        cls,
        jobs: int,
        infos: Sequence[RuleInfo],
        builder: object,
        triggers: frozenset,
        prefilter: bool,
        digests: bool,
    ) -> Optional["_WarmPool"]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        codes = [info.code for info in infos]
        # With fork, the initializer's arguments are inherited, not pickled.
        initargs = (codes, queue, builder, triggers, prefilter, digests)
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_boot, initargs=initargs)
        pool.submit(int)  # with fork, the first task starts every worker now
        return cls(pool, jobs, queue)

    def facts(self, paths: Sequence[str]) -> Iterator[object]:
        """Per path, in order: (content hash or None, IndexBuilder.file_facts, whether the
        file may hold a suppression SL100 reports, size), or the FileResult of a file that
        cannot be read."""
        self.sent = True
        # A few chunks per worker at least, so that a run of 300 files shares its project
        # pass too; no more than FACTS_CHUNK files a chunk, so that the merge here keeps up.
        size = max(16, min(FACTS_CHUNK, -(-len(paths) // (self.jobs * 4))))
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        return itertools.chain.from_iterable(self.pool.map(_worker_facts, chunks))  # type: ignore[attr-defined]

    def reasons(self, candidates: Sequence[Tuple[str, bool]], fresh: Sequence[str]) -> List[Tuple[str, object]]:
        """analysis.index.rescan_reasons, the candidates shared out."""
        self.sent = True
        size = max(64, -(-len(candidates) // (self.jobs * 8)))
        chunks = [(candidates[i : i + size], fresh) for i in range(0, len(candidates), size)]
        return list(itertools.chain.from_iterable(self.pool.map(_worker_reasons, chunks)))  # type: ignore[attr-defined]

    def scans(self, paths: Sequence[str]) -> List[Tuple[str, object, Optional[str]]]:
        """analysis.index.scans, the paths shared out."""
        self.sent = True
        size = max(8, -(-len(paths) // (self.jobs * 4)))
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        return list(itertools.chain.from_iterable(self.pool.map(_worker_scans, chunks)))  # type: ignore[attr-defined]

    def lint_files(
        self,
        items: Sequence[Tuple[str, Optional[bytes], int]],
        project: Project,
        meanwhile: Optional[Callable[[], None]] = None,
    ) -> Iterator[Tuple[Sequence[Tuple[str, Optional[bytes]]], List[Tuple[FileResult, Optional[bytes], bool]]]]:
        """(batch, answers) for `items` (path, bytes if pinned, size; largest first), in
        batches of about LINT_BATCH_BYTES; `meanwhile` is called once they are submitted.
        An answer: (result, the bytes read if it has findings, whether it may be cached)."""
        import pickle

        data = pickle.dumps(project, protocol=pickle.HIGHEST_PROTOCOL)
        for _ in range(self.jobs):
            self.queue.put(data)  # type: ignore[attr-defined]
        self.sent = True
        batches: List[List[Tuple[str, Optional[bytes]]]] = []
        budget = 0
        for path, pinned, size in items:
            if not batches or budget >= LINT_BATCH_BYTES or len(batches[-1]) >= LINT_BATCH_FILES:
                batches.append([])
                budget = 0
            batches[-1].append((path, pinned))
            budget += size
        answers = self.pool.map(_worker_triage_lint, batches)  # type: ignore[attr-defined]
        if meanwhile is not None:
            meanwhile()
        return zip(batches, answers)

    def close(self) -> None:
        pool = self.pool
        if not self.sent:
            # Nothing was sent: the workers may still be importing; do not wait for them.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)  # type: ignore[attr-defined]
        # A copy no worker took (a worker that got no batch) must not hold up the exit.
        self.queue.cancel_join_thread()  # type: ignore[attr-defined]
        self.queue.close()  # type: ignore[attr-defined]


class _Helper:
    """A process forked at the start of a small run (a pre-commit hook's few files) that
    imports libcst and the rules, about 0.2 s, while this process does the project pass.
    Given the files that need parsing, it forks itself into up to `jobs` processes, cheap
    once libcst is imported, and each lints a share. Without it a hook run that parses pays
    the import, then every parse, one after the other on one core. One helper, not one per
    core: two importing beside the project pass would share two cores three ways. Plain
    `os.fork` and pipes (`sessionlint.launch`, which forks it as the command starts):
    multiprocessing and concurrent.futures would cost this process about 0.02 s of imports.
    Files of a helper that fails in any way are linted here."""

    def __init__(self, child: Tuple[int, int, int], infos: Sequence[RuleInfo], jobs: int) -> None:
        self.child: Optional[Tuple[int, int, int]] = child
        self.infos = list(infos)
        self.jobs = jobs

    @classmethod
    def start_for(cls, sources: SourceFiles, settings: Settings, infos: Sequence[RuleInfo]) -> Optional["_Helper"]:
        """A helper for a run of fewer than EARLY_POOL_FILES files on a machine with a core
        to spare, when a file may need libcst (launch.wants_helper; the files' bytes are
        then kept: the project pass reads them from memory). The one the command forked at
        start-up if there is one, else a new one; a start-up one this run has no use for is
        stopped."""
        from sessionlint import launch

        preforked = launch.take()
        jobs = settings.jobs if settings.jobs > 0 else (os.cpu_count() or 1)
        jobs = min(jobs, os.cpu_count() or 1)
        wanted = jobs > 1 and 0 < len(sources) < EARLY_POOL_FILES and (preforked is not None or launch.can_fork())
        if wanted:
            wanted = False
            for path in sources:
                data = sources.get(path)
                if data is not None:
                    sources[path] = data
                    wanted = wanted or launch.wants_helper(data)
        if not wanted:
            if preforked is not None:
                launch.stop(preforked)
            return None
        child = preforked or launch.spawn(lambda read_fd, write_fd: helper_main(read_fd, write_fd), with_input=True)
        return cls(child, infos, jobs) if child is not None else None

    def lint(
        self,
        pending: Sequence[Tuple[str, bytes, str, Tuple[str, ...]]],
        project: Project,
        progress: Optional[Callable[[int, int], None]] = None,
        meanwhile: Optional[Callable[[], None]] = None,
    ) -> List[FileResult]:
        """`pending` linted by the helper (here if it fails), in the order of `pending`;
        `meanwhile` is called while the helper parses."""
        import pickle

        from sessionlint import launch

        found = None
        if self.child is not None:
            child, self.child = self.child, None
            batch = [(path, data, refine) for path, data, _, refine in pending]
            codes = [info.code for info in self.infos]
            launch.write_all(child[1], pickle.dumps((project, batch, codes, self.jobs), protocol=pickle.HIGHEST_PROTOCOL))
            os.close(child[1])  # the end of the input
            if meanwhile is not None:
                meanwhile()
            found = launch.collect(child, len(pending))
        if found is None:
            classes = rule_classes(self.infos)
            found = [parse_and_lint(data, path, project, classes, refine) for path, data, _, refine in pending]
        if progress is not None:
            progress(len(pending), len(pending))
        return found

    def close(self) -> None:
        """Stop a helper that got no work (still importing, most likely)."""
        from sessionlint import launch

        if self.child is not None:
            child, self.child = self.child, None
            launch.stop(child)


def _shares(sizes: Sequence[int], count: int) -> List[List[int]]:
    """Indexes of `sizes` in `count` shares of about equal total, largest first."""
    shares: List[List[int]] = [[] for _ in range(count)]
    loads = [0] * count
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        target = loads.index(min(loads))
        shares[target].append(index)
        loads[target] += sizes[index]
    return [share for share in shares if share]


def helper_main(read_fd: Optional[int], write_fd: int, ahead: Sequence[str] = ()) -> int:
    """A helper's life: import libcst and the rules, parse the files `ahead` names while
    the parent finishes its project pass, then lint what the parent sends (project, files,
    rule codes, jobs; nothing: exit), forked into up to `jobs` processes, and answer with
    the pickled results in the order sent."""
    import pickle

    from sessionlint import launch
    from sessionlint.registry import RULES

    every_rule = rule_classes(RULES)  # imports libcst: the forks below share it
    _warm_up()
    parsed = _parse_ahead(ahead, read_fd) if ahead and read_fd is not None else {}
    payload = launch.read_all(read_fd)  # type: ignore[arg-type]
    if not payload:
        return 0
    project, batch, codes, jobs = pickle.loads(payload)
    rules = [rule for rule in every_rule if rule.code in codes]
    _settle_gc()

    def lint(indexes: Sequence[int]) -> List[FileResult]:
        return [parse_and_lint(batch[i][1], batch[i][0], project, rules, batch[i][2], parsed.get(batch[i][1])) for i in indexes]

    def answer(indexes: Sequence[int]) -> Callable[[Optional[int], int], int]:
        def child(_: Optional[int], out: int) -> int:
            os.close(write_fd)  # the helper's answer to the parent is the helper's alone
            launch.write_all(out, pickle.dumps(lint(indexes), protocol=pickle.HIGHEST_PROTOCOL))
            os.close(out)
            return 0

        return child

    # A file parsed ahead has its traversal left, about a fifth of a parse and lint.
    shares = _shares([len(item[1]) // (5 if item[1] in parsed else 1) for item in batch], min(jobs, len(batch)))
    forks = [(share, launch.spawn(answer(share))) for share in shares[1:]]
    results: List[Optional[FileResult]] = [None] * len(batch)
    for index, result in zip(shares[0], lint(shares[0])):
        results[index] = result
    for share, spawned in forks:
        found = launch.collect(spawned, len(share)) if spawned is not None else None
        for index, result in zip(share, found if found is not None else lint(share)):
            results[index] = result
    launch.write_all(write_fd, pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))
    os.close(write_fd)
    return 0


def _warm_up() -> None:
    """What a process's first parse loads, loaded here before the helper forks: libcst's
    native parser and the parser thread's modules, which every fork would otherwise load
    on its own first file. The tiny parse runs on this thread: no thread is started before
    a fork."""
    import threading  # noqa: F401

    import libcst as cst

    cst.parse_module("pass\n")


def _parse_ahead(paths: Sequence[str], read_fd: int) -> Dict[bytes, object]:
    """The wait of a helper forked at start-up, put to use: while the parent's project pass
    runs (and until its files arrive on `read_fd`), parse the named files that may need
    libcst (launch.wants_helper), largest first. Keyed by their bytes: a file the parent
    read differently is parsed again. CPython's parser goes first, as in parse_and_lint;
    a file either parser refuses is left to the lint, which reports it. No thread is left
    running: the helper forks next."""
    import select

    import libcst as cst

    from sessionlint import launch

    named = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if launch.wants_helper(data):
            named.append(data)
    parsed: Dict[bytes, object] = {}
    try:
        for data in sorted(named, key=len, reverse=True):
            if select.select([read_fd], [], [], 0)[0]:  # the parent's files (or its end)
                break
            try:
                _run_on_big_stack(_cpython_parse, data, "<parsed ahead>")
                parsed[data] = _run_on_big_stack(cst.parse_module, data)
            except Exception:  # noqa: BLE001 - any failure is the lint's to report
                continue
    finally:
        _stop_parser_thread()
    return parsed


def _worker_boot(
    codes: Sequence[str],
    queue: object = None,
    builder: object = None,
    triggers: frozenset = frozenset(),
    prefilter: bool = True,
    digests: bool = False,
) -> None:
    from sessionlint.registry import RULES

    _WORKER["rules"] = rule_classes([r for r in RULES if r.code in codes])
    _WORKER.update(queue=queue, builder=builder, triggers=triggers, prefilter=prefilter, digests=digests)
    _settle_gc()


def _worker_facts(paths: Sequence[str]) -> List[object]:
    from sessionlint.cache import Cache
    from sessionlint.suppression import may_report_unused

    builder = _WORKER["builder"]
    digests = _WORKER["digests"]
    found: List[object] = []
    for path in paths:
        data, failure = _read(path)
        if failure is not None or data is None:
            found.append(failure)
            continue
        digest = Cache.digest(data) if digests else None
        found.append((digest, builder.file_facts(path, data, digest), may_report_unused(data), len(data)))  # type: ignore[attr-defined]
    return found


def _worker_reasons(work: Tuple[Sequence[Tuple[str, bool]], Sequence[str]]) -> List[object]:
    from sessionlint.analysis.index import rescan_reasons

    candidates, fresh = work
    return rescan_reasons(candidates, fresh, lambda path: _read(path)[0], _WORKER["builder"].cache)  # type: ignore[attr-defined,return-value]


def _worker_scans(paths: Sequence[str]) -> List[object]:
    from sessionlint.analysis.index import scans

    return scans(paths, lambda path: _read(path)[0], _WORKER["builder"].cache)  # type: ignore[attr-defined,return-value]


def _worker_project() -> Project:
    if "project" not in _WORKER:
        import pickle

        _WORKER["project"] = pickle.loads(_WORKER["queue"].get())  # type: ignore[attr-defined]
        _settle_gc()
    return _WORKER["project"]  # type: ignore[return-value]


def _worker_triage_lint(batch: Sequence[Tuple[str, Optional[bytes]]]) -> List[Tuple[FileResult, Optional[bytes], bool]]:
    project = _worker_project()
    rules = _WORKER["rules"]
    triggers = _WORKER["triggers"]
    prefilter = _WORKER["prefilter"]
    answers: List[Tuple[FileResult, Optional[bytes], bool]] = []
    for path, pinned in batch:
        data = pinned
        if data is None:
            data, failure = _read(path)
            if data is None:  # gone since the project pass
                answers.append((failure or FileResult(path), None, False))
                continue
        refine = project.triage(data, triggers) if prefilter else ()  # type: ignore[arg-type]
        if refine is None:
            answers.append((FileResult(path), None, True))
            continue
        file_result = parse_and_lint(data, path, project, rules, refine)  # type: ignore[arg-type]
        answers.append((file_result, data if file_result.diagnostics and pinned is None else None, True))
    return answers


def _lint_pending(
    pending: Sequence[Tuple[str, bytes, str, Tuple[str, ...]]],
    project: Project,
    infos: Sequence[RuleInfo],
    jobs: int,
    progress: Optional[Callable[[int, int], None]] = None,
) -> List[FileResult]:
    """Parse and lint the files the cache and the prefilter could not answer, in order."""
    jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    total = len(pending)
    if jobs <= 1 or len(pending) < 2 or sum(len(p[1]) for p in pending) < POOL_THRESHOLD_BYTES:
        classes = rule_classes(infos)
        linted = []
        for path, data, _, refine in pending:
            linted.append(parse_and_lint(data, path, project, classes, refine))
            if progress is not None:
                progress(len(linted), total)
        return linted
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    codes = [info.code for info in infos]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init, initargs=(project, codes)) as pool:
        return _map_batches(pool, _worker_lint, pending, progress)


def _map_batches(
    pool: object,
    function: Callable[..., List[FileResult]],
    pending: Sequence[Tuple[str, bytes, str, Tuple[str, ...]]],
    progress: Optional[Callable[[int, int], None]],
) -> List[FileResult]:
    """Lint `pending` on `pool`, largest files first in batches of four (so that the workers
    finish together), and return the results in the order of `pending`."""
    order = sorted(range(len(pending)), key=lambda i: -len(pending[i][1]))
    batches = [order[i : i + 4] for i in range(0, len(order), 4)]
    work = [[(pending[i][0], pending[i][1], pending[i][3]) for i in batch] for batch in batches]
    results: List[Optional[FileResult]] = [None] * len(pending)
    done = 0
    answers = pool.map(function, work)  # type: ignore[attr-defined]
    for batch, batch_results in zip(batches, answers):
        for i, file_result in zip(batch, batch_results):
            results[i] = file_result
        done += len(batch)
        if progress is not None:
            progress(done, len(pending))
    return [r for r in results if r is not None]
