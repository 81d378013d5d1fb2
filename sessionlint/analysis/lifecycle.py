"""One model of each session's (and connection's) life in one function: created where and
how, closed where, used where, on which paths it leaves the function still open, and whether
ownership left the function.

Every lifecycle rule (SL001, SL002, SL003, SL006, SL007, SL010) reads these facts; none walks
a function body on its own.

The model is built in two steps:
1. During the engine's single traversal, `LifecycleCollector` sees every call, keeps the ones
   whose callee resolves to a session factory (or an engine's `connect()`), and records how
   each created object is held (bound to a name, a `with` item, returned, yielded, chained,
   passed on). It also notes calls of coroutine methods on async sessions that are not
   awaited, and whether the scope commits inside a `try`.
2. When the traversal leaves a function (or the module) that created something bound to a
   name, the function's statements are scanned once for the events that concern those names
   (close, close registered, use, rebind, escape) and the flow interpreter runs per name.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple, Union

import libcst as cst

from sessionlint.analysis.astfilter import HANDOFF_SINKS
from sessionlint.analysis.factories import (
    CONNECTION_METHODS,
    ENGINE_BUILDERS,
    MAKER_BUILDERS,
    Factory,
    FactoryKind,
    Resolver,
)
from sessionlint.analysis.flow import Exit, ExitKind, Finalizer, Interpreter, State, Transfer
from sessionlint.analysis.frameworks import FunctionInfo, describe_function
from sessionlint.analysis.transactions import CONVENTIONAL_SESSION_NAMES, MissingRollback, find_missing_rollbacks
from sessionlint.analysis.tree import (
    SCOPE_TYPES,
    captures,
    dotted_name,
    iter_children,
    mentions_name,
    nested_blocks,
    suite_statements,
    terminal_name,
    walk,
)

ScopeNode = Union[cst.FunctionDef, cst.Module]


class Holding(Enum):
    """How the code holds a session right where it is created."""

    BOUND = "bound to a name"  # db = SessionLocal()
    MANAGED = "managed"  # with SessionLocal() as db / closing(...) / enter_context(...)
    RETURNED = "returned"  # return SessionLocal()
    YIELDED = "yielded"  # yield SessionLocal()
    CHAINED = "used once"  # SessionLocal().query(...)
    PASSED = "passed on"  # Repository(SessionLocal()), self.s = SessionLocal(), [...]


@dataclass(frozen=True)
class Creation:
    call: cst.Call
    factory: Factory  # kind SESSION, or CONNECTION for engine.connect()
    holding: Holding
    name: Optional[str] = None  # for BOUND, and MANAGED `with ... as name`
    # Bound to a connection someone else owns (Alembic's `op.get_bind()`): see
    # `is_bound_to_borrowed_connection`.
    borrows_connection: bool = False
    # For MANAGED by a `with`: whether that `with` is `async with`.
    in_async_with: Optional[bool] = None
    # Under `if __name__ == "__main__":`: script code, not import-time code.
    in_main_guard: bool = False

    @property
    def is_connection(self) -> bool:
        return self.factory.kind is FactoryKind.CONNECTION

    @property
    def unbound(self) -> bool:
        """`orm.Session()` of SQLAlchemy's (or SQLModel's) own class with neither an engine
        nor binds: a scratch session for `merge(load=False)`/`expunge` copies, which can
        never check out a connection. Fixture: SL001/unbound_scratch_session.py"""
        from sessionlint.analysis.index import SESSION_CLASSES

        if self.factory.origin not in SESSION_CLASSES:
            return False
        return not any(
            arg.keyword is None or arg.keyword.value in ("bind", "binds") for arg in self.call.args
        )


# Names under which code passes a Connection it was handed (Alembic migrations:
# `bind = op.get_bind()`; test fixtures: `connection`).
_BORROWED_CONNECTION_NAMES = frozenset({"bind", "conn", "connection", "get_bind"})


def is_bound_to_borrowed_connection(call: cst.Call, borrowed: Set[str] = frozenset()) -> bool:
    """Idiom: `Session(bind=op.get_bind())` in an Alembic migration, `Session(bind=connection)`
    in a fixture. A Session bound to an existing Connection checks nothing out of the pool; the
    connection's owner (Alembic, the fixture) closes it, so leaving the Session unclosed leaks
    no connection. Fixture: tests/fixtures/SL001/session_on_borrowed_connection.py."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value != "bind":
            continue
        value = arg.value
        if isinstance(value, cst.Call):
            value = value.func
        if _is_connection_name(terminal_name(value)):
            return True
        if isinstance(value, cst.Name) and value.value in borrowed:
            return True  # `c = op.get_bind()` earlier in the scope
        if arg.keyword is None:
            return False  # only the first positional argument is the bind
    return False


def _is_connection_name(name: Optional[str]) -> bool:
    """`conn`, `connection`, `bind`, `get_bind`; also a private `_conn`/`_connection`
    (a private `_bind` is as often an engine: langchain's PGVector)."""
    if not name:
        return False
    return name in _BORROWED_CONNECTION_NAMES or name.lstrip("_") in ("conn", "connection")


def _borrowed_value(value: cst.BaseExpression) -> bool:
    """An expression that names an existing connection: `self._connection`, or that with
    `.execution_options(...)` (which returns the same connection).
    Fixture: SL001/session_on_borrowed_connection.py"""
    while type(value) is cst.Call and type(value.func) is cst.Attribute and value.func.attr.value in RETURNS_SELF:
        value = value.func.value
    return type(value) in (cst.Attribute, cst.Name) and _is_connection_name(terminal_name(value))


# Methods that end a session's or a connection's hold on the pool. `invalidate()` closes a
# Session, and returns a Connection's or raw connection's pool slot (discarding the DBAPI
# connection). Fixture: SL010/released_by_invalidate.py
CLOSING_METHODS = frozenset({"close", "invalidate"})

# Methods that return the object they are called on (Connection.execution_options()).
RETURNS_SELF = frozenset({"execution_options"})
# Callees that take over closing what they are given (first argument).
CLOSING_WRAPPERS = frozenset({"closing", "aclosing", "enter_context", "enter_async_context", "push", "push_async_exit"})
# Callees that store or hand over what they are given: ownership leaves the function.
# `set_scope_state(scope, key, session)`, `store_session(...)`, `register_session(...)`:
# functions named for keeping what they are given. Fixture: SL001/session_stored_by_setter.py
STORING_PREFIXES = ("set_", "store_", "register_")
STORING_CALLEES = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "insert",
        "add",
        "put",
        "put_nowait",
        "setdefault",
        "update",
        "submit",
        "add_task",
        "create_task",
        "ensure_future",
        "run_in_executor",
        "run_coroutine_threadsafe",
        "apply_async",
        "delay",
        "start_soon",
        "spawn",
        "partial",
        "setattr",
        "set",
        "send",
        "register",
        "callback",
        "finalize",
        "addfinalizer",
        "addCleanup",
        "addAsyncCleanup",
    }
)
# Attributes that are safe to read on a closed session: no database work, no lazy load.
# (Session.close() resets the session; these report on that state.)
SAFE_AFTER_CLOSE = frozenset(
    {"close", "is_active", "in_transaction", "in_nested_transaction", "info", "bind", "get_bind", "closed", "invalidated"}
)

# Coroutine methods (SQLAlchemy 2.x asyncio API): called without `await`, nothing happens.
ASYNC_SESSION_COROUTINES = frozenset(
    {
        "close",
        "commit",
        "rollback",
        "execute",
        "scalar",
        "scalars",
        "get",
        "get_one",
        "flush",
        "refresh",
        "delete",
        "merge",
        "stream",
        "stream_scalars",
        "connection",
        "invalidate",
        "run_sync",
        "reset",
        "close_all",
        "exec_driver_sql",
        "dispose",
        "start",
    }
)
# Calls that take a coroutine and await it (or schedule it): passing one there is fine.
AWAITING_CALLEES = frozenset(
    {"gather", "create_task", "ensure_future", "wait_for", "shield", "run", "wait", "as_completed", "run_until_complete", "start_soon", "to_thread"}
)
ASYNC_TYPE_NAMES = frozenset({"AsyncSession", "AsyncConnection", "AsyncEngine"})
SESSION_TYPE_NAMES = frozenset({"Session", "AsyncSession", "scoped_session", "async_scoped_session"})

# Token statuses. A token is (status, ref, via_exception): ref is the creation index for OPEN
# and MANAGED, the close-site index for CLOSED, -1 otherwise; via_exception is 1 when the
# path came through an `except` handler entered by an implicit exception.
UNBOUND = 0
OPEN = 1
CLOSED = 2
MANAGED = 3
# A session created and not yet used on this path: a Session checks a connection out only
# on first use (autobegin), so leaving a fresh one holds nothing. Connections start OPEN.
# https://docs.sqlalchemy.org/en/20/orm/session_transaction.html#autobegin
# Fixture: SL001/unused_on_the_exit_path.py
FRESH = 4

_UNBOUND_STATE: State = frozenset({(UNBOUND, -1, 0)})


class EventKind(Enum):
    CREATE = "create"
    CLOSE = "close"  # db.close() / await db.close()
    REGISTER = "register"  # a close is guaranteed from here on (enter_context, callback(db.close))
    USE = "use"
    REBIND = "rebind"  # the name gets another value while the session may be open
    RELEASE = "release"  # the name gets a value derived from the session (ownership moves)
    MANAGE = "manage"  # with Factory() as db
    ESCAPE = "escape"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    name: str
    node: cst.CSTNode
    creation: int = -1
    reason: str = ""
    detail: str = ""  # for USE: the attribute or method, "argument", or "check"


@dataclass(frozen=True)
class Leak:
    """A point where the function is left, or the name rebound, with the session open."""

    kind: str  # "return", "raise", "end", "rebind", "exception"
    node: cst.CSTNode
    on_every_path: bool
    via_exception: bool  # reached only because some statement raised


@dataclass(frozen=True)
class UseAfterClose:
    name: str
    node: cst.CSTNode  # the use
    closed_at: cst.CSTNode  # the close call, or the `with` statement whose block ended
    by_with: bool
    on_every_path: bool


@dataclass(frozen=True)
class SessionLife:
    creation: Creation
    function: FunctionInfo
    closes: Tuple[cst.CSTNode, ...]
    escape: Optional[str]  # why ownership is not this function's (None: it is)
    returned: bool
    leaks: Tuple[Leak, ...]

    @property
    def normal_leaks(self) -> Tuple[Leak, ...]:
        """Leaks on paths where no statement raised: `return`, `raise`, the end, a rebind."""
        return tuple(leak for leak in self.leaks if not leak.via_exception)

    @property
    def exception_leaks(self) -> Tuple[Leak, ...]:
        """Leaks that happen only when some statement raises."""
        return tuple(leak for leak in self.leaks if leak.via_exception)


@dataclass(frozen=True)
class Unawaited:
    """A coroutine method of an async session, connection or engine called without await."""

    call: cst.Call
    receiver: str
    method: str


@dataclass(frozen=True)
class WithMismatch:
    """`with` on an async factory, or `async with` on a sync one."""

    creation: Creation
    needs_async: bool


@dataclass(frozen=True)
class EngineBuild:
    call: cst.Call
    name: Optional[str]  # bound to, in this scope
    pooled: bool  # False with poolclass=NullPool: nothing to exhaust


@dataclass(frozen=True)
class Handoff:
    """A session handed to something that runs after, or beside, the scope that owns it."""

    call: cst.CSTNode  # the call that hands it over, or the assignment that stores it
    name: str
    sink: str  # "background task", "thread", "task", "executor", "module-level variable"
    by_with: bool  # the session belongs to a `with` block (else: a request dependency)

    @property
    def is_store(self) -> bool:
        return self.sink in STORE_SINKS


# Where an assignment keeps a session beyond its scope (see `find_stores`).
STORE_SINKS = ("module-level variable", "class attribute")




@dataclass
class ScopeFacts:
    """Everything the lifecycle analysis knows about one function or module body."""

    node: cst.CSTNode
    creations: List[Creation] = field(default_factory=list)
    lives: List[SessionLife] = field(default_factory=list)
    uses_after_close: List[UseAfterClose] = field(default_factory=list)
    unawaited: List[Unawaited] = field(default_factory=list)
    with_mismatches: List[WithMismatch] = field(default_factory=list)
    async_names: Set[str] = field(default_factory=set)  # async sessions/connections/engines
    session_names: Set[str] = field(default_factory=set)  # names known to hold a session
    local_engines: Dict[str, Factory] = field(default_factory=dict)
    commits_in_try: bool = False
    engine_builds: List[EngineBuild] = field(default_factory=list)
    maker_builds: List[cst.Call] = field(default_factory=list)
    engine_consumers: Set[str] = field(default_factory=set)  # engines sessions/connections came from
    disposed: Set[str] = field(default_factory=set)  # engines disposed (or registered for it): `engine`, `self.engine`
    handoff_calls: List[cst.Call] = field(default_factory=list)
    handoffs: List[Handoff] = field(default_factory=list)
    injected: Dict[str, bool] = field(default_factory=dict)  # Depends params -> scope="function"
    shared_sessions: Set[int] = field(default_factory=set)  # module-level creations used elsewhere
    missing_rollbacks: List[MissingRollback] = field(default_factory=list)
    borrowed_names: Set[str] = field(default_factory=set)  # `c = op.get_bind()`: not ours to close
    # seen by the traversal in this scope (nested scopes excluded): for `find_stores` and
    # `describe_function`, so that neither walks the body again
    has_yield: bool = False
    name_value_assigns: List[cst.Assign] = field(default_factory=list)  # `target = some_name`
    assigned_names: Set[str] = field(default_factory=set)  # plain-name assignment targets
    global_names: Set[str] = field(default_factory=set)
    info: Optional[FunctionInfo] = None
    gave_up: bool = False  # the body was beyond the analysis (recursion): stay silent


# --- step 1: during the traversal ---------------------------------------------------------


class LifecycleCollector:
    """Analysis side of the single traversal: creation sites per scope, lives on leave."""

    def __init__(self, resolver: Resolver, depends_targets: FrozenSet[str], async_dependencies: FrozenSet[str] = frozenset()) -> None:
        self.resolver = resolver
        self.depends_targets = depends_targets
        self.async_dependencies = async_dependencies
        self.scopes: List[ScopeFacts] = []
        self.finished: Dict[int, ScopeFacts] = {}
        self.try_depth: List[int] = []
        self._module_bindings: Optional[Tuple[FrozenSet[str], FrozenSet[str]]] = None
        self._closers: Optional[Dict[str, Closer]] = None

    def facts_for(self, node: cst.CSTNode) -> Optional[ScopeFacts]:
        return self.finished.get(id(node))

    def enter_scope(self, node: cst.CSTNode) -> None:
        facts = ScopeFacts(node)
        if isinstance(node, cst.FunctionDef):
            self._note_parameters(node, facts)
        self.scopes.append(facts)
        self.try_depth.append(0)

    def _module_closers(self) -> Dict[str, "Closer"]:
        """Module-level functions that close what they are given (computed once per file,
        only when some scope creates a session)."""
        if self._closers is None:
            self._closers = find_closers(self.scopes[0].node) if self.scopes else {}
        return self._closers

    def _module_names(self) -> Tuple[FrozenSet[str], FrozenSet[str]]:
        """(names bound at module level, classes defined there), from the module's own
        statements, computed once per file and only for functions that hold sessions."""
        if self._module_bindings is None:
            module = self.scopes[0].node
            names: Set[str] = set()
            classes: Set[str] = set()
            for statement in getattr(module, "body", ()):
                if isinstance(statement, cst.ClassDef):
                    classes.add(statement.name.value)
                elif isinstance(statement, cst.SimpleStatementLine):
                    for small in statement.body:
                        targets = []
                        if isinstance(small, cst.Assign):
                            targets = [t.target for t in small.targets]
                        elif isinstance(small, cst.AnnAssign):
                            targets = [small.target]
                        names.update(t.value for t in targets if isinstance(t, cst.Name))
            self._module_bindings = (frozenset(names), frozenset(classes))
        return self._module_bindings

    def on_yield(self) -> None:
        if self.scopes:
            self.scopes[-1].has_yield = True

    def on_assign(self, node: cst.Assign) -> None:
        if not self.scopes:
            return
        facts = self.scopes[-1]
        for target in node.targets:
            if type(target.target) is cst.Name:
                facts.assigned_names.add(target.target.value)
        if type(node.value) is cst.Name:
            facts.name_value_assigns.append(node)
        if type(node.value) in (cst.Attribute, cst.Call, cst.Name) and _borrowed_value(node.value):
            for target in node.targets:
                if type(target.target) is cst.Name:
                    facts.borrowed_names.add(target.target.value)

    def on_global(self, node: cst.Global) -> None:
        if self.scopes:
            self.scopes[-1].global_names.update(n.name.value for n in node.names)

    def enter_try(self) -> None:
        if self.try_depth:
            self.try_depth[-1] += 1

    def leave_try(self) -> None:
        if self.try_depth:
            self.try_depth[-1] -= 1

    def leave_scope(self, node: cst.CSTNode) -> None:
        facts = self.scopes.pop()
        self.try_depth.pop()
        if isinstance(node, (cst.FunctionDef, cst.Module)):
            facts.info = describe_function(node, self.depends_targets, facts.has_yield if isinstance(node, cst.FunctionDef) else None)
            if facts.handoff_calls:
                facts.handoffs = find_handoffs(facts)
            if isinstance(node, cst.FunctionDef) and self.scopes and facts.name_value_assigns and (facts.injected or facts.creations):
                facts.handoffs.extend(find_stores(node, facts, self._module_names()))
            if isinstance(node, cst.Module) and facts.creations:
                facts.shared_sessions = find_shared_sessions(facts, self.resolver.index.imported_names)
            if facts.commits_in_try:
                try:
                    facts.missing_rollbacks = find_missing_rollbacks(_scope_body(node), facts.session_names)
                except RecursionError:
                    facts.gave_up = True
            if facts.creations:
                try:
                    build_lives(facts, facts.info, self._module_closers())
                except RecursionError:
                    facts.gave_up = True
                    facts.lives = []
                    facts.uses_after_close = []
        self.finished[id(node)] = facts

    def _note_parameters(self, node: cst.FunctionDef, facts: ScopeFacts) -> None:
        """Parameters that hold sessions: annotated `Session`/`AsyncSession` (also inside
        `Annotated[...]`), or injected with `Depends(f)` where `f` yields an async session."""
        params = node.params
        for param in list(params.posonly_params) + list(params.params) + list(params.kwonly_params):
            name = param.name.value
            annotation = param.annotation.annotation if param.annotation is not None else None
            types = _annotation_names(annotation) if annotation is not None else set()
            aliases = self.resolver.index.session_aliases
            aliased = types & set(aliases)
            for alias in aliased:
                types.add("AsyncSession" if aliases[alias] else "Session")
            if aliased:
                # Session aliases are `Annotated[Session, Depends(get_db)]` (the index records
                # only Annotated ones): the framework injects a request-scoped session.
                # Fixture: SL008/dependency_session_handed_over.py
                facts.injected.setdefault(name, False)
            if types & SESSION_TYPE_NAMES:
                facts.session_names.add(name)
            if types & ASYNC_TYPE_NAMES:
                facts.async_names.add(name)
            default = param.default
            dependency = _depends_target(default) if default is not None else None
            if dependency is None and annotation is not None:
                for sub in walk(annotation):
                    if isinstance(sub, cst.Call):
                        dependency = _depends_target(sub) or dependency
            if dependency is not None and _is_session_dependency(name, dependency, types):
                if dependency in self.async_dependencies:
                    facts.async_names.add(name)
                facts.session_names.add(name)
                facts.injected[name] = _function_scoped(default) or any(
                    _function_scoped(sub) for sub in (walk(annotation) if annotation is not None else ())
                )

    def on_call(self, node: cst.Call, ancestors: Sequence[cst.CSTNode]) -> None:
        if not self.scopes:
            return
        facts = self.scopes[-1]
        func = node.func
        for arg in node.args:
            # `self.addCleanup(self.engine.dispose)`, `atexit.register(engine.dispose)`
            value = arg.value
            if type(value) is cst.Attribute and value.attr.value == "dispose":
                disposed = dotted_name(value.value)
                if disposed:
                    facts.disposed.add(disposed)
        if type(func) is cst.Attribute:
            method = func.attr.value
            receiver = func.value
            if method == "dispose":
                disposed = dotted_name(receiver)
                if disposed:
                    facts.disposed.add(disposed)
            if method in ("commit", "flush") and self.try_depth[-1] > 0:
                facts.commits_in_try = True
            if method in ASYNC_SESSION_COROUTINES and type(receiver) is cst.Name:
                self._check_awaited(node, receiver.value, method, ancestors, facts)
            if method in CONNECTION_METHODS:
                if type(receiver) is cst.Name and method in ("connect", "begin", "raw_connection"):
                    facts.engine_consumers.add(receiver.value)
                engine = self.resolver.engine_of(receiver, self._local_engines())
                if engine is not None:
                    factory = Factory(FactoryKind.CONNECTION, engine.is_async, f"`{method}()` on an engine")
                    self._record(node, factory, ancestors, facts)
                return
        callee = terminal_name(func) or ""
        if callee == "get_bind" and ancestors and isinstance(ancestors[-1], cst.Assign):
            for target in ancestors[-1].targets:
                if isinstance(target.target, cst.Name):
                    facts.borrowed_names.add(target.target.value)
        if callee in ENGINE_BUILDERS:
            self._note_engine(node, ancestors)
            return
        if callee in MAKER_BUILDERS:
            parent = ancestors[-1] if ancestors else None
            grandparent = ancestors[-2] if len(ancestors) > 1 else None
            nested = isinstance(parent, cst.Arg) and isinstance(grandparent, cst.Call) and terminal_name(grandparent.func) in MAKER_BUILDERS
            if not nested:  # scoped_session(sessionmaker(...)) is one build
                facts.maker_builds.append(node)
            self._note_engine_consumer(node, facts)
            return
        if callee in HANDOFF_SINKS:
            facts.handoff_calls.append(node)
        if type(func) is cst.Attribute and type(func.value) is cst.Name and func.attr.value in ("connect", "begin", "raw_connection"):
            facts.engine_consumers.add(func.value.value)
        if type(func) is cst.Attribute and func.attr.value == "begin" and self.resolver.may_be_factory(func.value):
            # `with SessionLocal.begin() as db:` opens a session in a transaction and closes
            # it at the end of the block (sessionmaker.begin()).
            maker = self.resolver.factory_of(func.value)
            if maker is not None and maker.kind is FactoryKind.SESSION:
                self._record(node, maker, ancestors, facts)
            return
        if not self.resolver.may_be_factory(func):
            return
        factory = self.resolver.factory_of(func)
        if factory is not None and factory.kind is FactoryKind.SESSION:
            self._record(node, factory, ancestors, facts)
            self._note_engine_consumer(node, facts)

    def _note_engine_consumer(self, node: cst.Call, facts: ScopeFacts) -> None:
        """`Session(engine)`, `sessionmaker(bind=engine)`: the engine serves this scope."""
        for arg in node.args:
            if isinstance(arg.value, cst.Name) and (arg.keyword is None or arg.keyword.value == "bind"):
                facts.engine_consumers.add(arg.value.value)

    def on_with(self, node: cst.With) -> None:
        """`async with <...session...>(...) as name`: only an async context manager can be
        entered with `async with`, so a session obtained that way (Prefect's
        `db.session_context()`, a project helper) is an AsyncSession."""
        if node.asynchronous is None or not self.scopes:
            return
        for item in node.items:
            call = item.item
            if not isinstance(call, cst.Call) or item.asname is None or not isinstance(item.asname.name, cst.Name):
                continue
            name = item.asname.name.value
            if "session" in (terminal_name(call.func) or "").lower() or (
                name in CONVENTIONAL_SESSION_NAMES and self.resolver.mentions_sqlalchemy
            ):
                self.scopes[-1].async_names.add(name)

    def _note_engine(self, node: cst.Call, ancestors: Sequence[cst.CSTNode]) -> None:
        """`name = create_engine(...)` in this scope: `name.connect()` opens connections."""
        builder = ENGINE_BUILDERS[terminal_name(node.func) or ""]
        facts = self.scopes[-1]
        pooled = not any(
            arg.keyword is not None and arg.keyword.value == "poolclass" and terminal_name(arg.value) == "NullPool"
            for arg in node.args
        )
        parent = ancestors[-1] if ancestors else None
        name = None
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            name = parent.targets[0].target.value
            facts.local_engines[name] = builder
            if builder.is_async:
                facts.async_names.add(name)
        facts.engine_builds.append(EngineBuild(node, name, pooled))

    def _local_engines(self) -> Dict[str, Factory]:
        merged: Dict[str, Factory] = {}
        for scope in self.scopes:
            merged.update(scope.local_engines)
        return merged

    def _record(self, node: cst.Call, factory: Factory, ancestors: Sequence[cst.CSTNode], facts: ScopeFacts) -> None:
        holding, name, with_node = classify_holding(node, ancestors)
        in_async_with = with_node.asynchronous is not None if with_node is not None else None
        in_main_guard = isinstance(facts.node, cst.Module) and any(_is_main_guard(a) for a in ancestors)
        creation = Creation(
            node,
            factory,
            holding,
            name,
            is_bound_to_borrowed_connection(node, facts.borrowed_names),
            in_async_with,
            in_main_guard,
        )
        facts.creations.append(creation)
        if name is not None:
            if factory.kind is FactoryKind.SESSION:
                facts.session_names.add(name)
            if factory.is_async:
                facts.async_names.add(name)
            elif not in_async_with:
                facts.async_names.discard(name)
        if with_node is not None and in_async_with is not None and in_async_with != factory.is_async:
            if factory.kind is FactoryKind.SESSION or factory.is_async:
                facts.with_mismatches.append(WithMismatch(creation, factory.is_async))

    def _check_awaited(self, node: cst.Call, receiver: str, method: str, ancestors: Sequence[cst.CSTNode], facts: ScopeFacts) -> None:
        if receiver not in facts.async_names:
            return
        parent = ancestors[-1] if ancestors else None
        if isinstance(parent, cst.Expr):
            facts.unawaited.append(Unawaited(node, receiver, method))
        elif isinstance(parent, cst.Attribute) and parent.value is node:
            # `db.execute(q).scalars()`: an attribute of the coroutine object
            facts.unawaited.append(Unawaited(node, receiver, method))


def _is_main_guard(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.If) or not isinstance(node.test, cst.Comparison):
        return False
    test = node.test
    return (
        isinstance(test.left, cst.Name)
        and test.left.value == "__name__"
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].comparator, cst.SimpleString)
        and "__main__" in test.comparisons[0].comparator.value
    )


def find_shared_sessions(facts: ScopeFacts, imported_names: FrozenSet[str]) -> Set[int]:
    """Module-level sessions created at import time (not under a `__main__` guard) that other
    code uses: a function or class of the module, or another module importing the name."""
    shared: Set[int] = set()
    module = facts.node
    nested = [s for s in getattr(module, "body", ()) if isinstance(s, (cst.FunctionDef, cst.ClassDef))]
    for index, creation in enumerate(facts.creations):
        name = creation.name
        if creation.holding is not Holding.BOUND or creation.in_main_guard or not name or creation.is_connection:
            continue
        if name in imported_names or any(mentions_name(scope, name) for scope in nested):
            shared.add(index)
    return shared


def find_handoffs(facts: ScopeFacts) -> List[Handoff]:
    """Sessions of a `with` block or of a request dependency handed to a background task, a
    thread, a task or an executor: they run after the scope closes the session, or beside it."""
    managed = {c.name for c in facts.creations if c.holding is Holding.MANAGED and c.name}
    found: List[Handoff] = []
    for call in facts.handoff_calls:
        sink = HANDOFF_SINKS[terminal_name(call.func) or ""]
        for name in _passed_names(call):
            if name in managed:
                found.append(Handoff(call, name, sink, True))
            elif name in facts.injected:
                # FastAPI runs a yield dependency's exit code after background tasks before
                # 0.106 and again from 0.118; between, and with scope="function", before them.
                if sink != "background task" or facts.injected[name]:
                    found.append(Handoff(call, name, sink, False))
    return found


def find_stores(function: cst.FunctionDef, facts: ScopeFacts, module: Tuple[FrozenSet[str], FrozenSet[str]]) -> List[Handoff]:
    """Sessions of a `with` block or of a request dependency assigned where they outlive it:
    `CACHE[key] = db` on a module-level container, a `global` name, `SomeClass.attr = db`.
    Local containers, `self.db = db` and `request.state.db = db` live as long as the request.
    Fixture: SL008/session_stored_beyond_request.py"""
    managed = {c.name for c in facts.creations if c.holding is Holding.MANAGED and c.name}
    owned = managed | set(facts.injected)
    if not owned:
        return []
    module_names, class_names = module
    declared_global = facts.global_names
    local: Set[str] = {p.name.value for p in _all_params(function)} | facts.assigned_names
    found: List[Handoff] = []
    for node in facts.name_value_assigns:
        value = node.value
        if not isinstance(value, cst.Name) or value.value not in owned:
            continue
        for target in (t.target for t in node.targets):
            sink = None
            if isinstance(target, cst.Name) and target.value in declared_global:
                sink = "module-level variable"
            elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
                base = target.value.value
                if base in module_names and (base not in local or base in declared_global):
                    sink = "module-level variable"
            elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
                if target.value.value in class_names and target.value.value not in local:
                    sink = "class attribute"
            if sink is not None:
                found.append(Handoff(node, value.value, sink, value.value in managed))
    return found


def _all_params(function: cst.FunctionDef) -> List[cst.Param]:
    params = function.params
    extra = [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return list(params.posonly_params) + list(params.params) + list(params.kwonly_params) + extra


@dataclass(frozen=True)
class Closer:
    """A module-level function that closes some of its parameters on every path: in a
    `finally:` of its body (`param.close()` / `await param.close()`) or by `with param:` /
    `with closing(param):` around its body."""

    positions: FrozenSet[int]
    keywords: FrozenSet[str]


def find_closers(module: cst.CSTNode) -> Dict[str, Closer]:
    found: Dict[str, Closer] = {}
    for statement in getattr(module, "body", ()):
        if not isinstance(statement, cst.FunctionDef):
            continue
        params = list(statement.params.posonly_params) + list(statement.params.params)
        names = [p.name.value for p in params] + [p.name.value for p in statement.params.kwonly_params]
        closed = _closed_parameters(statement, set(names))
        if closed:
            found[statement.name.value] = Closer(
                frozenset(i for i, p in enumerate(params) if p.name.value in closed), frozenset(closed)
            )
    return found


def _closed_parameters(function: cst.FunctionDef, params: Set[str]) -> Set[str]:
    closed: Set[str] = set()
    for statement in suite_statements(function.body):
        if isinstance(statement, cst.Try) and statement.finalbody is not None:
            for node in walk(statement.finalbody, enter_scopes=False):
                if (
                    isinstance(node, cst.Call)
                    and isinstance(node.func, cst.Attribute)
                    and node.func.attr.value == "close"
                    and isinstance(node.func.value, cst.Name)
                    and node.func.value.value in params
                ):
                    closed.add(node.func.value.value)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                closed.update(n for n in params if _with_item_closes(item, {n}))
    return closed


def _passed_names(call: cst.Call) -> List[str]:
    """Names passed as values anywhere in a call's arguments (not `db.attr`), in order."""
    names: List[str] = []
    stack: List[cst.CSTNode] = [arg.value for arg in reversed(call.args)]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            if node.value not in names:
                names.append(node.value)
        elif isinstance(node, cst.Attribute):
            continue
        elif isinstance(node, (cst.Lambda, cst.FunctionDef)):
            continue
        else:
            stack.extend(reversed(list(iter_children(node))))
    return names


def _annotation_names(annotation: cst.BaseExpression) -> Set[str]:
    """Type names an annotation mentions: `AsyncSession`, `Optional[Session]`,
    `Annotated[AsyncSession, Depends(get_db)]` (the first argument only)."""
    names: Set[str] = set()
    if isinstance(annotation, cst.Subscript):
        base = terminal_name(annotation.value) or ""
        elements = annotation.slice
        if base == "Annotated" and elements:
            first = elements[0].slice
            if isinstance(first, cst.Index):
                names |= _annotation_names(first.value)
            return names
        for element in elements:
            if isinstance(element.slice, cst.Index):
                names |= _annotation_names(element.slice.value)
        return names
    if isinstance(annotation, cst.BinaryOperation):  # Session | None
        return _annotation_names(annotation.left) | _annotation_names(annotation.right)
    if isinstance(annotation, cst.SimpleString):
        text = annotation.value.strip("'\"")
        return {text.rsplit(".", 1)[-1]}
    name = terminal_name(annotation)
    if name:
        names.add(name)
    return names


def _is_session_dependency(param: str, dependency: str, types: Set[str]) -> bool:
    """A `Depends(...)` parameter holds a session when annotated as one, named like one
    (`db`, `session`), or injected by a dependency named like one (`get_db`,
    `get_async_session`). `user=Depends(get_current_user)` does not."""
    if types & SESSION_TYPE_NAMES or param in CONVENTIONAL_SESSION_NAMES:
        return True
    lowered = dependency.lower()
    return "session" in lowered or lowered.endswith(("_db", "db")) or lowered.startswith("get_db")


def _function_scoped(node: cst.CSTNode) -> bool:
    """`Depends(get_db, scope="function")` (FastAPI 0.121+): exits before the response."""
    if isinstance(node, cst.Call) and terminal_name(node.func) in ("Depends", "Security"):
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value == "scope":
                return isinstance(arg.value, cst.SimpleString) and "function" in arg.value.value
    return False


def _depends_target(node: cst.BaseExpression) -> Optional[str]:
    if isinstance(node, cst.Call) and terminal_name(node.func) in ("Depends", "Security") and node.args:
        return terminal_name(node.args[0].value)
    return None


def classify_holding(
    call: cst.Call, ancestors: Sequence[cst.CSTNode]
) -> Tuple[Holding, Optional[str], Optional[cst.With]]:
    """How the object created by `call` is held, from its parent nodes; for a `with` item,
    also the `with` statement."""
    child: cst.CSTNode = call
    index = len(ancestors) - 1
    parent = ancestors[index] if index >= 0 else None
    while isinstance(parent, cst.Await) and index > 0:  # `await make_session()`
        child, index = parent, index - 1
        parent = ancestors[index]
    grandparent = ancestors[index - 1] if index >= 1 else None
    # `engine.connect().execution_options(...)` returns the same Connection: hold it as the
    # outer call is held (typically a `with` item). Fixture: SL010/execution_options_chain.py
    while (
        isinstance(parent, cst.Attribute)
        and parent.attr.value in RETURNS_SELF
        and isinstance(grandparent, cst.Call)
        and grandparent.func is parent
        and index >= 2
    ):
        child, index = grandparent, index - 2
        parent = ancestors[index] if index >= 0 else None
        grandparent = ancestors[index - 1] if index >= 1 else None
    if isinstance(parent, cst.Assign) and parent.value is child:
        targets = parent.targets
        if len(targets) == 1 and isinstance(targets[0].target, cst.Name):
            return Holding.BOUND, targets[0].target.value, None
        return Holding.PASSED, None, None
    if isinstance(parent, (cst.AnnAssign, cst.NamedExpr)) and parent.value is child:
        if isinstance(parent.target, cst.Name):
            return Holding.BOUND, parent.target.value, None
        return Holding.PASSED, None, None
    if isinstance(parent, cst.WithItem):
        name = None
        if parent.asname is not None and isinstance(parent.asname.name, cst.Name):
            name = parent.asname.name.value
        return Holding.MANAGED, name, grandparent if isinstance(grandparent, cst.With) else None
    if isinstance(parent, cst.Return):
        return Holding.RETURNED, None, None
    if isinstance(parent, cst.Yield):
        return Holding.YIELDED, None, None
    if isinstance(parent, cst.Attribute) and isinstance(grandparent, cst.Call) and grandparent.func is parent:
        if parent.attr.value in ("begin", "__enter__", "__aenter__"):
            return Holding.MANAGED, None, None
        if parent.attr.value == "close":
            # `engine.connect().close()`: a reachability probe, closed before anything else
            # runs. Fixture: SL010/connect_then_close_probe.py (false positive on real code).
            return Holding.MANAGED, None, None
        if parent.attr.value in ("get_bind", "close"):
            # `SessionLocal().get_bind()`: a throwaway session asked for its engine starts
            # no transaction and checks nothing out. Fixture: SL001/chained_get_bind.py
            return Holding.MANAGED, None, None
        return Holding.CHAINED, None, None
    if isinstance(parent, cst.Arg) and isinstance(grandparent, cst.Call):
        if terminal_name(grandparent.func) in CLOSING_WRAPPERS:
            return Holding.MANAGED, None, None
    return Holding.PASSED, None, None


# --- step 2: per function ----------------------------------------------------------------


def build_lives(facts: ScopeFacts, info: FunctionInfo, closers: Optional[Dict[str, "Closer"]] = None) -> None:
    """Fill `facts.lives` and `facts.uses_after_close`."""
    tracked = [c for c in facts.creations if c.holding in (Holding.BOUND, Holding.MANAGED) and c.name]
    names = {c.name for c in tracked if c.name}
    index_of = {id(c.call): i for i, c in enumerate(facts.creations)}
    events: Dict[int, List[Event]] = {}
    scanner = EventScanner(names, index_of, yield_raises=not info.is_pytest_fixture, closers=closers or {})
    all_events = scanner.scan_scope(_scope_body(facts.node), events) if names else []

    escapes: Dict[str, str] = {}
    returned: Set[str] = set()
    closes: Dict[str, List[cst.CSTNode]] = {n: [] for n in names}
    for event in all_events:
        if event.kind is EventKind.ESCAPE:
            if event.reason == "returned":
                returned.add(event.name)
            escapes.setdefault(event.name, event.reason)
        elif event.kind in (EventKind.CLOSE, EventKind.REGISTER):
            closes[event.name].append(event.node)
    for name, with_node in scanner.with_closed:
        closes.setdefault(name, []).append(with_node)

    leaks_by_name: Dict[str, Dict[int, List[Leak]]] = {}
    # Sessions start FRESH; connections are checked out at once, and a project function that
    # returns a session may already have used it.
    lazy = {i for i, c in enumerate(facts.creations) if not c.is_connection and not c.factory.origin.startswith("function ")}
    assumptions: Optional[Dict[int, FrozenSet[Tuple[str, bool]]]] = None

    def interpret(name: str, assume: Dict[int, FrozenSet[Tuple[str, bool]]]) -> Tuple[Dict[int, List[Leak]], List[UseAfterClose]]:
        transfer = SessionTransfer(name, events, scanner.raising, lazy, assume)
        interpreter = Interpreter(transfer)
        if isinstance(facts.node, cst.Module):
            exits = interpreter.run_module(facts.node, _UNBOUND_STATE)
        else:
            exits = interpreter.run_function(facts.node.body, facts.node, _UNBOUND_STATE)  # type: ignore
        return _leaks_per_creation(exits, transfer.rebinds), transfer.uses_after_close()

    for name in sorted(names):
        # A name whose object escapes has no leaks of its own (ownership is unclear), but a
        # use after its close is still a use after close.
        leaks, uses = interpret(name, {})
        if leaks or uses:
            # Only then are the flags around creations worth computing (a walk of the scope):
            # they can only remove paths.
            if assumptions is None:
                assumptions = creation_assumptions(facts)
            if assumptions:
                leaks, uses = interpret(name, assumptions)
        leaks_by_name[name] = leaks
        facts.uses_after_close.extend(uses)

    for i, creation in enumerate(facts.creations):
        name = creation.name
        if creation.holding is not Holding.BOUND or name is None:
            facts.lives.append(SessionLife(creation, info, (), None, creation.holding is Holding.RETURNED, ()))
            continue
        leaks = tuple(leaks_by_name.get(name, {}).get(i, ()))
        facts.lives.append(
            SessionLife(creation, info, tuple(closes.get(name, ())), escapes.get(name), name in returned, leaks)
        )


def _flag_test(test: cst.BaseExpression) -> Optional[Tuple[str, bool]]:
    """`flag`, `self.flag`, `not flag`: (the flag's dotted name, whether the test is true
    when the flag is)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _flag_test(test.expression)
        return None if inner is None else (inner[0], not inner[1])
    if isinstance(test, (cst.Name, cst.Attribute)):
        key = dotted_name(test)
        if key is not None and key not in ("True", "False", "None"):
            return key, True
    return None


def creation_assumptions(facts: ScopeFacts) -> Dict[int, FrozenSet[Tuple[str, bool]]]:
    """For each creation (by index), the flag tests of the `if` branches around it, for
    flags the scope never assigns (names and attribute chains): those keep their value for
    the whole call."""
    body = _scope_body(facts.node)
    assigned: Set[str] = set()
    for root in body:
        for node in walk(root, enter_scopes=False):
            targets: List[cst.BaseExpression] = []
            if isinstance(node, cst.Assign):
                targets = [t.target for t in node.targets]
            elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.NamedExpr)):
                targets = [node.target]
            elif isinstance(node, (cst.For, cst.CompFor)):
                targets = [node.target]
            elif isinstance(node, cst.AsName):
                targets = [node.name]
            elif isinstance(node, cst.Global) or isinstance(node, cst.Nonlocal):
                assigned.update(n.name.value for n in node.names)
            for target in targets:
                for sub in walk(target):
                    key = dotted_name(sub) if isinstance(sub, (cst.Name, cst.Attribute)) else None
                    if key:
                        assigned.add(key)
    index_of = {id(c.call): i for i, c in enumerate(facts.creations)}
    found: Dict[int, FrozenSet[Tuple[str, bool]]] = {}

    def visit(statements: Sequence[cst.CSTNode], held: FrozenSet[Tuple[str, bool]]) -> None:
        for statement in statements:
            if isinstance(statement, SCOPE_TYPES):
                continue
            if isinstance(statement, cst.If):
                visit_if(statement, held)
                continue
            if held:
                for node in walk(statement, enter_scopes=False):
                    if type(node) is cst.Call and id(node) in index_of:
                        found[index_of[id(node)]] = held
                    if isinstance(node, cst.If):
                        break  # nested blocks are visited below with their own flags
            for block in nested_blocks(statement):
                visit(block, held)

    def visit_if(node: cst.If, held: FrozenSet[Tuple[str, bool]]) -> None:
        flag = _flag_test(node.test)
        usable = flag is not None and flag[0] not in assigned
        visit(suite_statements(node.body), held | {flag} if usable else held)  # type: ignore[operator]
        orelse = node.orelse
        other = held | {(flag[0], not flag[1])} if usable else held  # type: ignore[index]
        if isinstance(orelse, cst.If):
            visit_if(orelse, other)
        elif orelse is not None:
            visit(suite_statements(orelse.body), other)

    visit(body, frozenset())
    return found


def _scope_body(node: cst.CSTNode) -> Sequence[cst.CSTNode]:
    if isinstance(node, cst.Module):
        return node.body
    body = getattr(node, "body", None)
    return body.body if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)) else ()


_EXIT_NAMES = {
    ExitKind.RETURN: "return",
    ExitKind.RAISE: "raise",
    ExitKind.END: "end",
    ExitKind.EXCEPTION: "exception",
}


def _leaks_per_creation(exits: List[Exit], rebinds: List[Tuple[cst.CSTNode, State]]) -> Dict[int, List[Leak]]:
    found: Dict[int, List[Leak]] = {}
    seen: Set[Tuple[int, str, int, bool]] = set()

    def add(kind: str, node: cst.CSTNode, state: State) -> None:
        for status, ref, via_exception in state:
            if status != OPEN:
                continue
            exceptional = bool(via_exception) or kind == "exception"
            key = (ref, kind, id(node), exceptional)
            if key in seen:
                continue
            seen.add(key)
            every = all(s == OPEN for s, _, _ in state)
            found.setdefault(ref, []).append(Leak(kind, node, every, exceptional))

    for e in exits:
        kind = _EXIT_NAMES.get(e.kind)
        if kind is not None:
            add(kind, e.node, e.state)
    for node, state in rebinds:
        add("rebind", node, state)
    return found


class EventScanner:
    """Finds, per statement, what happens to the tracked names, in evaluation order, and
    which statements may raise."""

    def __init__(
        self,
        names: Set[str],
        creation_index: Dict[int, int],
        yield_raises: bool = True,
        closers: Optional[Dict[str, "Closer"]] = None,
    ) -> None:
        self.names = names
        self.closers = closers or {}
        self.creation_index = creation_index
        self.yield_raises = yield_raises
        self.with_closed: List[Tuple[str, cst.CSTNode]] = []
        self.raising: Set[int] = set()

    def scan_scope(self, statements: Sequence[cst.CSTNode], out: Dict[int, List[Event]]) -> List[Event]:
        """Scan every statement of a scope (nested scopes excluded); fill `out` keyed by the
        id of each small statement / header expression; return all events."""
        everything: List[Event] = []
        stack: List[cst.CSTNode] = list(reversed(statements))
        while stack:
            node = stack.pop()
            if isinstance(node, SCOPE_TYPES):
                for name in self.names:
                    if captures(node, name):
                        everything.append(Event(EventKind.ESCAPE, name, node, reason="captured by a nested scope"))
                continue
            roots, nested = _split_statement(node)
            for root in roots:
                found = self.scan_root(root)
                out[id(root)] = found
                everything.extend(found)
                if self._may_raise(root):
                    self.raising.add(id(root))
            if isinstance(node, cst.With):
                for item in node.items:
                    closed = _with_item_closes(item, self.names)
                    if closed:
                        self.with_closed.append((closed, node))
            stack.extend(reversed(nested))
        return everything

    def _may_raise(self, root: cst.CSTNode) -> bool:
        """Calls, awaits, subscripts, asserts, imports may raise; so may a `yield` where the
        consumer can throw into the generator (not a pytest fixture). Assignments of names
        and constants cannot."""
        if isinstance(root, cst.With):
            # `with db:` / `with closing(db):` only arranges the close: nothing to raise.
            return any(self._may_raise(item.item) for item in root.items if not _with_item_closes(item, self.names))
        if isinstance(root, (cst.Assert, cst.Import, cst.ImportFrom)):
            return True
        for node in walk(root, enter_scopes=False):
            t = type(node)
            if t in (cst.Call, cst.Await, cst.Subscript):
                return True
            if t is cst.Yield and self.yield_raises:
                return True
        return False

    # -- one root ------------------------------------------------------------------------
    def scan_root(self, root: cst.CSTNode) -> List[Event]:
        out: List[Event] = []
        t = type(root)
        if t is cst.Assign:
            self._expr(root.value, "value", out)
            for target in root.targets:
                self._target(target.target, root.value, root, out)
        elif t is cst.AnnAssign:
            if root.value is not None:
                self._expr(root.value, "value", out)
                self._target(root.target, root.value, root, out)
        elif t is cst.AugAssign:
            self._expr(root.value, "value", out)
            self._expr(root.target, "use", out)
            if isinstance(root.target, cst.Name) and root.target.value in self.names:
                out.append(Event(EventKind.ESCAPE, root.target.value, root, reason="augmented"))
        elif t is cst.Return:
            if root.value is not None:
                self._expr(root.value, "return", out)
        elif t is cst.Expr:
            self._expr(root.value, "use", out)
        elif t is cst.Del:
            self._expr(root.target, "escape", out)
        elif t in (cst.Global, cst.Nonlocal):
            for item in root.names:
                if item.name.value in self.names:
                    out.append(Event(EventKind.ESCAPE, item.name.value, root, reason="global"))
        elif t is cst.With:
            self._with_header(root, out)
        elif isinstance(root, cst.BaseExpression):
            self._expr(root, "check", out)
        else:
            for child in iter_children(root):
                self._expr(child, "use", out)
        return out

    def _with_header(self, node: cst.With, out: List[Event]) -> None:
        for item in node.items:
            closed = _with_item_closes(item, self.names)
            if closed:
                continue  # `with db:` / `with closing(db):` is handled by the finalizer
            self._expr(item.item, "use", out)
            if item.asname is not None:
                target = item.asname.name
                if isinstance(target, cst.Name) and target.value in self.names:
                    creation = self.creation_index.get(id(_creating_call(item.item)), -1)
                    if creation >= 0:
                        out.append(Event(EventKind.MANAGE, target.value, item, creation))
                    else:
                        out.append(Event(EventKind.REBIND, target.value, item))

    def _target(self, target: cst.BaseExpression, value: cst.BaseExpression, statement: cst.CSTNode, out: List[Event]) -> None:
        if isinstance(target, cst.Name):
            name = target.value
            if name not in self.names:
                return
            creation = self.creation_index.get(id(_creating_call(value)), -1)
            if creation >= 0:
                out.append(Event(EventKind.CREATE, name, statement, creation))
            elif _same_object(value, name):
                # `conn = await conn.execution_options(...)`: the same connection, still open.
                # Fixture: SL010/execution_options_chain.py
                out.append(Event(EventKind.USE, name, statement, detail="execution_options"))
            elif mentions_name(value, name):
                out.append(Event(EventKind.RELEASE, name, statement))
            else:
                out.append(Event(EventKind.REBIND, name, statement))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                if isinstance(element.value, cst.Name) and element.value.value in self.names:
                    out.append(Event(EventKind.ESCAPE, element.value.value, statement, reason="unpacked"))
        else:
            self._expr(target, "use", out)

    def _expr(self, node: cst.CSTNode, context: str, out: List[Event]) -> None:
        """Events of one expression. `context` says how the value of `node` is consumed:
        use, check (a test or comparison), return, value (assigned), container, escape,
        borrow (argument of a function), owner (argument of a constructor or a storing
        call), closer."""
        t = type(node)
        if t is cst.Name:
            name = node.value
            if name in self.names:
                out.append(self._classify(name, context, node))
            return
        if t is cst.Attribute:
            base = node.value
            if type(base) is cst.Name and base.value in self.names:
                if node.attr.value == "close" and context in ("borrow", "owner", "closer"):
                    # db.close handed to stack.callback/atexit.register/...: a close registered
                    out.append(Event(EventKind.REGISTER, base.value, node))
                else:
                    out.append(Event(EventKind.USE, base.value, node, detail=node.attr.value))
                return
            self._expr(base, "use", out)
            return
        if t is cst.Call:
            self._call(node, out)
            return
        if t is cst.Await:
            self._expr(node.expression, context, out)
            return
        if t is cst.Lambda:
            for name in self.names:
                if mentions_name(node, name):
                    out.append(Event(EventKind.ESCAPE, name, node, reason="captured by a lambda"))
            return
        if t is cst.NamedExpr:
            self._expr(node.value, "value", out)
            self._target(node.target, node.value, node, out)
            return
        if t is cst.Yield:
            value = node.value
            if isinstance(value, cst.From):
                self._expr(value.item, "escape", out)
            elif value is not None:
                self._expr(value, "borrow", out)  # the generator lends it and gets it back
            return
        if t in (cst.Tuple, cst.List, cst.Set):
            inner = "return" if context == "return" else "container"
            for element in node.elements:
                self._expr(element.value, inner, out)
            return
        if t is cst.Dict:
            for element in node.elements:
                for child in iter_children(element):
                    self._expr(child, "container", out)
            return
        if t is cst.StarredElement:
            self._expr(node.value, "escape", out)
            return
        if t is cst.IfExp:
            self._expr(node.test, "check", out)
            self._expr(node.body, context, out)
            self._expr(node.orelse, context, out)
            return
        if t is cst.BooleanOperation:
            inner = context if context == "return" else "check"
            self._expr(node.left, inner, out)
            self._expr(node.right, inner, out)
            return
        if t in (cst.Comparison, cst.UnaryOperation, cst.FormattedString, cst.FormattedStringExpression):
            for child in iter_children(node):
                self._expr(child, "check", out)
            return
        for child in iter_children(node):
            self._expr(child, "use", out)

    def _call(self, node: cst.Call, out: List[Event]) -> None:
        func = node.func
        if type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value in self.names:
            for arg in node.args:
                self._expr(arg.value, "borrow", out)
            if func.attr.value in CLOSING_METHODS:
                out.append(Event(EventKind.CLOSE, func.value.value, node))
            else:
                out.append(Event(EventKind.USE, func.value.value, node, detail=func.attr.value))
            return
        self._expr(func, "use", out)
        callee = terminal_name(func) or ""
        closer = self.closers.get(func.value) if type(func) is cst.Name else None
        if closer is not None:
            # A function of this module that closes the parameter in a `finally`: the call
            # hands the session over for good. Fixture: SL001/closed_by_module_helper.py
            for position, arg in enumerate(node.args):
                keyword = arg.keyword.value if arg.keyword is not None else None
                closes = keyword in closer.keywords if keyword else position in closer.positions
                self._expr(arg.value, "closer" if closes and not arg.star else "borrow", out)
            return
        if callee in CLOSING_WRAPPERS:
            context = "closer"
        elif callee in STORING_CALLEES or callee.lstrip("_")[:1].isupper() or callee.startswith(STORING_PREFIXES):
            context = "owner"
        elif callee in ("isinstance", "id", "repr", "str", "print", "type", "hasattr", "getattr", "bool", "len"):
            context = "check"
        else:
            context = "borrow"
        for arg in node.args:
            if arg.star:
                self._expr(arg.value, "escape", out)
            elif context == "owner" and callee == "update" and arg.keyword is None and type(arg.value) is cst.Name:
                # `dict.update()` stores keyword values and mapping items; a session given as
                # its positional argument is no mapping: `user.update(session, role=role)`
                # is a model's update method borrowing the session. Fixture:
                # SL001/borrowed_by_function_call.py
                self._expr(arg.value, "borrow", out)
            else:
                self._expr(arg.value, context, out)

    def _classify(self, name: str, context: str, node: cst.CSTNode) -> Event:
        if context == "use":
            return Event(EventKind.USE, name, node, detail="value")
        if context == "check":
            return Event(EventKind.USE, name, node, detail="check")
        if context == "borrow":
            return Event(EventKind.USE, name, node, detail="argument")
        if context == "closer":
            return Event(EventKind.REGISTER, name, node)
        reason = {
            "return": "returned",
            "value": "assigned to another name",
            "container": "stored in a container",
            "owner": "handed to an owner",
        }.get(context, "passed on")
        return Event(EventKind.ESCAPE, name, node, reason=reason)


def _same_object(value: cst.BaseExpression, name: str) -> bool:
    """`name.execution_options(...)`, awaited or not: evaluates to the object `name` holds."""
    if isinstance(value, cst.Await):
        value = value.expression
    chained = False
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in RETURNS_SELF:
        value = value.func.value
        chained = True
    return chained and isinstance(value, cst.Name) and value.value == name


def _creating_call(value: cst.BaseExpression) -> cst.BaseExpression:
    """The call that created what `value` evaluates to: through `await` and through methods
    that return their object (`engine.connect().execution_options(...)`)."""
    if isinstance(value, cst.Await):
        value = value.expression
    while (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in RETURNS_SELF
        and isinstance(value.func.value, cst.Call)
    ):
        value = value.func.value
    return value


def _with_item_closes(item: cst.WithItem, names: Set[str]) -> Optional[str]:
    """The tracked name a `with` item closes on exit: `with db:` or `with closing(db):`."""
    value = item.item
    if isinstance(value, cst.Name) and value.value in names:
        return value.value
    if (
        isinstance(value, cst.Call)
        and terminal_name(value.func) in ("closing", "aclosing")
        and value.args
        and isinstance(value.args[0].value, cst.Name)
        and value.args[0].value.value in names
    ):
        return value.args[0].value.value
    return None


def _split_statement(node: cst.CSTNode) -> Tuple[List[cst.CSTNode], List[cst.CSTNode]]:
    """The roots a statement contributes (small statements, header expressions) and the
    statements nested in it."""
    t = type(node)
    if t is cst.SimpleStatementLine:
        return list(node.body), []
    if t is cst.If:
        nested = list(_suite(node.body))
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            nested.append(orelse)
        elif orelse is not None:
            nested.extend(_suite(orelse.body))
        return [node.test], nested
    if t is cst.For:
        nested = list(_suite(node.body)) + (list(_suite(node.orelse.body)) if node.orelse else [])
        return [node.target, node.iter], nested
    if t is cst.While:
        nested = list(_suite(node.body)) + (list(_suite(node.orelse.body)) if node.orelse else [])
        return [node.test], nested
    if t is cst.With:
        return [node], list(_suite(node.body))
    if t.__name__ in ("Try", "TryStar"):
        nested = list(_suite(node.body))
        for handler in node.handlers:
            nested.extend(_suite(handler.body))
        if node.orelse is not None:
            nested.extend(_suite(node.orelse.body))
        if node.finalbody is not None:
            nested.extend(_suite(node.finalbody.body))
        return [], nested
    if t.__name__ == "Match":
        nested = []
        roots: List[cst.CSTNode] = [node.subject]
        for case in node.cases:
            if case.guard is not None:
                roots.append(case.guard)
            nested.extend(_suite(case.body))
        return roots, nested
    if isinstance(node, cst.BaseSmallStatement):
        return [node], []
    return [], []


def _suite(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    if isinstance(suite, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return suite.body
    return ()


class SessionTransfer(Transfer):
    """The state of one tracked name through a function: unbound, open (per creation),
    closed (per close site), or managed by a `with`."""

    def __init__(
        self,
        name: str,
        events: Dict[int, List[Event]],
        raising: Set[int],
        lazy: Set[int] = frozenset(),
        assumptions: Optional[Dict[int, FrozenSet[Tuple[str, bool]]]] = None,
    ) -> None:
        self.name = name
        # creation index -> flags (never reassigned in the function) and their values on
        # every path to that creation
        self.assumptions = assumptions or {}
        self.lazy = lazy  # creations that start FRESH (sessions, not connections)
        self.events = events
        self.raising = raising
        self.rebinds: List[Tuple[cst.CSTNode, State]] = []
        self.close_sites: List[Tuple[cst.CSTNode, bool]] = []  # (node, by a `with`)
        self._site_index: Dict[int, int] = {}
        self._uses: Dict[int, Tuple[cst.CSTNode, Set[int], bool]] = {}

    def _site(self, node: cst.CSTNode, by_with: bool) -> int:
        key = id(node)
        if key not in self._site_index:
            self._site_index[key] = len(self.close_sites)
            self.close_sites.append((node, by_with))
        return self._site_index[key]

    def _mine(self, root: cst.CSTNode) -> List[Event]:
        return [e for e in self.events.get(id(root), ()) if e.name == self.name]

    def apply(self, root: cst.CSTNode, state: State) -> State:
        if type(root) is cst.With:
            return state
        for event in self._mine(root):
            state = self._step(event, state)
        return state

    def can_raise(self, root: cst.CSTNode) -> bool:
        return id(root) in self.raising

    def raised_state(self, root: cst.CSTNode, before: State, after: State) -> State:
        # A statement that closes the session counts as closing it even if it then raises
        # (the close is the last thing it does); any other statement raises before its
        # effect on the name (a creation that raises creates nothing).
        mine = self._mine(root)
        if any(e.kind in (EventKind.CLOSE, EventKind.REGISTER) for e in mine):
            return after
        if any(e.kind in (EventKind.USE, EventKind.ESCAPE) for e in mine):
            # `db.execute(...)` that raises has used the session (and may hold a connection);
            # `yield db` hands it to the endpoint before the exception is thrown back in.
            return frozenset((OPEN, r, x) if s == FRESH else (s, r, x) for s, r, x in before)
        return before

    def into_handler(self, state: State) -> State:
        return frozenset((s, r, 1) for s, r, _ in state)

    def _step(self, event: Event, state: State) -> State:
        kind = event.kind
        if kind is EventKind.CREATE:
            self._note_rebind(event.node, state)
            return frozenset({(FRESH if event.creation in self.lazy else OPEN, event.creation, 0)})
        if kind is EventKind.REGISTER:
            # A close is now guaranteed later (ExitStack, atexit, finalizers, addCleanup): the
            # session is as good as managed, neither open nor closed yet.
            return frozenset((MANAGED, r, x) if s in (OPEN, FRESH) else (s, r, x) for s, r, x in state)
        if kind is EventKind.CLOSE:
            site = self._site(event.node, False)
            return frozenset((CLOSED, site, x) if s in (OPEN, FRESH) else (s, r, x) for s, r, x in state)
        if kind in (EventKind.USE, EventKind.ESCAPE):
            state = frozenset((OPEN, r, x) if s == FRESH else (s, r, x) for s, r, x in state)
        if kind is EventKind.USE:
            if event.detail not in SAFE_AFTER_CLOSE and event.detail != "check":
                closed = {r for s, r, _ in state if s == CLOSED}
                if closed:
                    every = all(s == CLOSED for s, _, _ in state)
                    previous = self._uses.get(id(event.node))
                    if previous is not None:
                        closed |= previous[1]
                        every = every and previous[2]
                    self._uses[id(event.node)] = (event.node, closed, every)
            return state
        if kind is EventKind.REBIND:
            self._note_rebind(event.node, state)
            return _UNBOUND_STATE
        if kind is EventKind.RELEASE:
            return _UNBOUND_STATE
        if kind is EventKind.ESCAPE and event.reason in ("handed to an owner", "stored in a container", "assigned to another name", "returned"):
            # Handing over or returning a closed session is a use of it.
            return self._step(Event(EventKind.USE, event.name, event.node, detail="argument"), state)
        if kind is EventKind.MANAGE:
            self._note_rebind(event.node, state)
            return frozenset({(MANAGED, event.creation, 0)})
        return state

    def _note_rebind(self, node: cst.CSTNode, state: State) -> None:
        if any(s == OPEN for s, _, _ in state):
            self.rebinds.append((node, state))

    def enter_with(self, node: cst.With, state: State) -> Tuple[State, Optional[Finalizer]]:
        mine = self._mine(node)
        for event in mine:
            state = self._step(event, state)
        closes = any(_with_item_closes(item, {self.name}) for item in node.items)
        manages = any(e.kind is EventKind.MANAGE for e in mine)
        if not closes and not manages:
            return state, None
        site = self._site(node, True)

        def finalize(at_exit: State) -> State:
            return frozenset((CLOSED, site, x) if s in (OPEN, MANAGED, FRESH) else (s, r, x) for s, r, x in at_exit)

        return state, finalize

    def refine(self, test: cst.BaseExpression, state: State, truthy: bool) -> State:
        """`if db:` / `if db is not None:` / `if db is None:` / `if not db:` narrow the state:
        a None name is unbound, a session object is truthy. An empty result means the
        branch cannot run with the name in any state it may hold (unreachable)."""
        positive = _presence_test(test, self.name)
        if positive is None:
            return self._refine_by_flag(test, state, truthy)
        present = positive if truthy else not positive
        return frozenset(t for t in state if (t[0] != UNBOUND) == present)

    def _refine_by_flag(self, test: cst.BaseExpression, state: State, truthy: bool) -> State:
        """`if with_engine: arg = engine else: arg = engine.connect()` ... `finally: if not
        with_engine: arg.close()`: a flag the function never reassigns has the value it had
        when the object was created, so a branch that contradicts it cannot see that object.
        Fixture: SL010/connection_opened_and_closed_under_one_flag.py"""
        flag = _flag_test(test)
        if flag is None or not self.assumptions:
            return state
        key, positive = flag
        value = positive if truthy else not positive
        return frozenset(
            t
            for t in state
            if t[0] not in (OPEN, FRESH, MANAGED) or (key, not value) not in self.assumptions.get(t[1], ())
        )

    def uses_after_close(self) -> List[UseAfterClose]:
        found = []
        for node, sites, every in self._uses.values():
            site_node, by_with = self.close_sites[min(sites)]
            found.append(UseAfterClose(self.name, node, site_node, by_with, every))
        return found


def _presence_test(test: cst.BaseExpression, name: str) -> Optional[bool]:
    """True if `test` is true exactly when `name` holds a session, False if exactly when it
    does not, None if it says nothing about it."""
    if isinstance(test, cst.Name) and test.value == name:
        return True
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _presence_test(test.expression, name)
        return None if inner is None else not inner
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        left = test.left
        target = test.comparisons[0]
        right = target.comparator
        if (
            isinstance(left, cst.Name)
            and left.value == name
            and isinstance(right, cst.Name)
            and right.value == "None"
        ):
            if isinstance(target.operator, (cst.IsNot, cst.NotEqual)):
                return True
            if isinstance(target.operator, (cst.Is, cst.Equal)):
                return False
    return None

