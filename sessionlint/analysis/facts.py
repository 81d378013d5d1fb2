"""The facts the lifecycle analysis states about one function or module body: how each
session or connection is created and held, the events that concern it, where it leaks, where
it is used after its close, what else the scope does with sessions and engines. Rules read
these; the collector and the typestate write them."""

from dataclasses import dataclass, field
from enum import Enum
from typing import AbstractSet, Dict, List, Optional, Set, Tuple, Union

import libcst as cst

from sessionlint.analysis.flow import State
from sessionlint.analysis.frameworks import FunctionInfo
from sessionlint.analysis.transactions import MissingRollback
from sessionlint.analysis.tree import terminal_name
from sessionlint.knowledge import (
    BORROWED_CONNECTION_NAMES,
    RETURNS_SELF,
    EscapeReason,
    FactoryKind,
    LeakKind,
    Origin,
)
from sessionlint.project.model import Factory

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
    # Made by a `scoped_session` registry this scope built itself: `registry.remove()`
    # closes it too.
    registry: Optional[str] = None
    # For a connection written as an argument (`dialect.has_table(engine.connect(), t)`): the
    # callee, when nothing can own the connection after the call (see `argument_owner`)
    lost_in: Optional[str] = None
    # The default value of this parameter of the scope's function (`def f(db=SessionLocal())`):
    # made once, when the function is defined, and shared by every call
    default_of: Optional[str] = None

    @property
    def is_connection(self) -> bool:
        return self.factory.kind is FactoryKind.CONNECTION

    @property
    def unbound(self) -> bool:
        """`orm.Session()` of SQLAlchemy's (or SQLModel's) own class with neither an engine
        nor binds: a scratch session for `merge(load=False)`/`expunge` copies, which can
        never check out a connection. Fixture: SL001/unbound_scratch_session.py"""
        if self.factory.origin is not Origin.SESSION_CLASS:
            return False
        return not any(
            arg.keyword is None or arg.keyword.value in ("bind", "binds") for arg in self.call.args
        )


def is_bound_to_borrowed_connection(call: cst.Call, borrowed: AbstractSet[str] = frozenset()) -> bool:
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
    return name in BORROWED_CONNECTION_NAMES or name.lstrip("_") in ("conn", "connection")


def _borrowed_value(value: cst.BaseExpression) -> bool:
    """An expression that names an existing connection: `self._connection`, or that with
    `.execution_options(...)` (which returns the same connection).
    Fixture: SL001/session_on_borrowed_connection.py"""
    while type(value) is cst.Call and type(value.func) is cst.Attribute and value.func.attr.value in RETURNS_SELF:
        value = value.func.value
    return type(value) in (cst.Attribute, cst.Name) and _is_connection_name(terminal_name(value))


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
    reason: Optional[EscapeReason] = None  # for ESCAPE
    detail: str = ""  # for USE: the attribute or method, "argument", or "check"


@dataclass(frozen=True)
class Leak:
    """A point where the function is left, or the name rebound, with the session open."""

    kind: LeakKind
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
    escape: Optional[EscapeReason]  # why ownership is not this function's (None: it is)
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
    # made by a project function (`engine = make_engine(url)`): reported per request only;
    # how often a helper of unknown timing runs is what its callers decide
    via_factory: bool = False
    # made by a library's builder (knowledge.LIBRARY_ENGINE_BUILDERS): a pool per call of
    # the function that makes it, however many functions of the module call the builder
    library: bool = False


@dataclass(frozen=True)
class Handoff:
    """A session handed to something that runs after, or beside, the scope that owns it."""

    call: cst.CSTNode  # the call that hands it over, or the assignment that stores it
    name: str
    sink: str  # "background task", "thread", "task", "executor", "module-level variable"
    by_with: bool  # the session belongs to a `with` block (else: a request dependency)
    # for a request dependency's session handed to a FastAPI background task: the FastAPI
    # versions the project allows when they close the session before the task ("0.110.0"),
    # "" when the session is (or may be) still open while the task runs
    closed_first: Optional[str] = None
    # the session is the caller's (a parameter) or the object's (`self.db`)
    borrowed: bool = False

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
    # `maker = sessionmaker(...)`, `registry = scoped_session(...)` in this scope: calling
    # the name makes a session this scope owns. Fixture: SL001/sessionmaker_built_in_function.py
    local_makers: Dict[str, Factory] = field(default_factory=dict)
    # `gen = get_db()`: names bound to a project generator that yields a new session
    local_generators: Dict[str, Factory] = field(default_factory=dict)
    # parameters annotated as functions that make such generators (`make: Callable[[],
    # Generator[Session, None, None]]`): `gen = make()` binds one
    generator_params: Dict[str, Factory] = field(default_factory=dict)
    # creations taken out of such a generator with `next(gen)`: index -> the generator's name
    drawn_from: Dict[int, str] = field(default_factory=dict)
    # connections passed inline to a call whose result is bound to a local: index -> the local
    lost_locals: Dict[int, str] = field(default_factory=dict)
    # hand-off calls whose task or thread the scope waits for, cancels or joins before it
    # ends (`task = create_task(...)`, then `await task` / `task.cancel()` / `t.join()`)
    joined_handoffs: List[cst.Call] = field(default_factory=list)
    parameters: Set[str] = field(default_factory=set)
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
