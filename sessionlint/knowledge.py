"""What sessionlint knows about SQLAlchemy, the web and task frameworks and the standard
library: every table of API names in one place, and the vocabulary the analysis speaks about
them (what a call does to a session it is given, what it returns, why a session left a
function). Pure data: nothing here reads code.

The project's own functions are described by summaries (sessionlint.project); names here are
what is known of code outside the project. Users extend some of the tables from
configuration (`session-factories`, `engine-factories`, `request-decorators`).
"""

import re
from enum import Enum
from typing import FrozenSet, Iterable, Mapping, Optional, Tuple

# --- the vocabulary ---------------------------------------------------------------------


class FactoryKind(Enum):
    """What calling a name gives."""

    SESSION = "session factory"  # calling it creates a session the caller owns
    REGISTRY = "session registry"  # scoped_session: calling it returns the thread's session
    ENGINE = "engine"  # the name holds an Engine: `.connect()` creates a connection
    CONNECTION = "connection source"  # `engine.connect()` / `engine.raw_connection()`
    MAKER = "sessionmaker source"  # a function that returns a new sessionmaker: `f()()` is a session


class Origin(Enum):
    """How a factory was recognised (its detail, for messages, is kept beside it)."""

    MAKER = "a sessionmaker"  # `sessionmaker(...)`, `async_sessionmaker(...)`, `scoped_session(...)`
    ENGINE_BUILDER = "an engine builder"  # `create_engine(...)` and the like
    SESSION_CLASS = "SQLAlchemy's Session class"  # `Session(engine)`, `AsyncSession(engine)`
    SUBCLASS = "a project Session class"  # `class AppSession(Session)`
    FUNCTION = "a project function"  # returns a new session
    ENGINE_GETTER = "a project function that returns an engine"  # `return ENGINE`: a shared one
    GENERATOR = "a project generator"  # yields a new session: `next(get_db())`
    CONVENTIONAL = "a conventional name"  # `SessionLocal` imported from elsewhere
    CONFIGURED = "the configuration"  # `session-factories`
    ENGINE_CONNECT = "an engine's connect()"  # `engine.connect()`, `engine.raw_connection()`
    MAKER_BEGIN = "a sessionmaker's begin()"  # `with SessionLocal.begin() as db:`
    # a project `@contextmanager` that yields a new session and closes it only when the
    # block raises: `with guarded_session() as db:` leaves `db` open on a normal exit
    OPEN_CONTEXT = "a project context manager that closes its session only on error"
    # a module-level `scoped_session` registry that no file of the project removes: the
    # session a function takes from it stays open unless the function closes it
    UNREMOVED_REGISTRY = "a scoped_session registry that nothing removes"


class ArgumentEffect(Enum):
    """What a call does to a session or connection passed to it (the callee oracle's answer)."""

    CLOSES = "closes it"  # `closing(db)`, a function that closes its parameter in `finally`
    REGISTERS_CLOSE = "registers its close"  # `stack.callback(db.close)`, `enter_context(db)`
    TAKES_OWNERSHIP = "takes it over"  # stored in a container, an executor, an owning object
    BORROWS = "borrows it"  # uses it and gives it back: the caller still owns it
    INSPECTS = "only inspects it"  # `isinstance(db, ...)`, `print(db)`
    UNKNOWN = "unknown"


class ReturnEffect(Enum):
    """What a call returns, as far as sessions go."""

    NEW_SESSION = "a new session"
    NEW_CONNECTION = "a new connection"
    NEW_ENGINE = "a new engine"
    NEW_MAKER = "a new sessionmaker"
    NEW_REGISTRY = "a new session registry"
    BORROWED = "a session it was given"
    UNKNOWN = "unknown"


class EscapeReason(Enum):
    """Why a session left the function that created it: ownership went with it."""

    RETURNED = "returned"
    ASSIGNED = "assigned to another name"
    CONTAINER = "stored in a container"
    OWNER = "handed to an owner"
    CAPTURED = "captured by a nested scope"
    LAMBDA = "captured by a lambda"
    AUGMENTED = "augmented"
    GLOBAL = "global"
    UNPACKED = "unpacked"
    PASSED = "passed on"

    @property
    def is_a_use(self) -> bool:
        """Handing over or returning a closed session is a use of it."""
        return self in (EscapeReason.OWNER, EscapeReason.CONTAINER, EscapeReason.ASSIGNED, EscapeReason.RETURNED)


class LeakKind(Enum):
    """Where a function is left (or a name rebound) with a session still open."""

    RETURN = "return"
    RAISE = "raise"
    END = "end"
    REBIND = "rebind"
    EXCEPTION = "exception"


# --- sessions, factories and engines ------------------------------------------------------

# Classes whose instances are sessions (SQLAlchemy 2.x and SQLModel): dotted name -> async.
SESSION_CLASSES: Mapping[str, bool] = {
    "sqlalchemy.orm.Session": False,
    "sqlalchemy.orm.session.Session": False,
    "sqlmodel.Session": False,
    "sqlmodel.orm.session.Session": False,
    "sqlalchemy.ext.asyncio.AsyncSession": True,
    "sqlalchemy.ext.asyncio.session.AsyncSession": True,
    "sqlmodel.ext.asyncio.session.AsyncSession": True,
}
# Callables whose result is a session factory (sessionmaker) or a registry (scoped_session):
# name -> (kind, async).
MAKER_BUILDERS: Mapping[str, Tuple[FactoryKind, bool]] = {
    "sessionmaker": (FactoryKind.SESSION, False),
    "async_sessionmaker": (FactoryKind.SESSION, True),
    "scoped_session": (FactoryKind.REGISTRY, False),
    "async_scoped_session": (FactoryKind.REGISTRY, True),
}
# Callables that build an Engine (and with it a connection pool): name -> async.
ENGINE_BUILDERS: Mapping[str, bool] = {
    "create_engine": False,
    "engine_from_config": False,
    "create_async_engine": True,
    "async_engine_from_config": True,
}
# Functions of libraries built on SQLAlchemy that build a new engine, and with it a pool, on
# every call: "module.function" -> (async, the parameter through which a caller lends an
# engine to use instead, or ""). fideslib, the database layer fides and fidesops share, up
# to 2.x: `get_db_session(config)` binds its sessionmaker to `get_db_engine(config=config)`
# unless given `engine=` (from 3.0 the engine is its first parameter: an argument named
# `...engine...` lends one). Real-bug corpus: fidesops' privacy-request Celery task.
LIBRARY_ENGINE_BUILDERS: Mapping[str, Tuple[bool, str]] = {
    "fideslib.db.session.get_db_engine": (False, ""),
    "fideslib.db.session.get_db_session": (False, "engine"),
}


def library_engine_builder(module: str, name: str) -> Optional[Tuple[bool, str]]:
    """LIBRARY_ENGINE_BUILDERS' entry for `from module import name`."""
    return LIBRARY_ENGINE_BUILDERS.get(f"{module}.{name}") if module else None


# Engine names assumed when an origin cannot be resolved, in files that mention SQLAlchemy.
CONVENTIONAL_ENGINE_NAMES: FrozenSet[str] = frozenset({"engine", "async_engine", "db_engine", "sql_engine", "sa_engine", "sync_engine"})
# Calls that use an engine given to them and keep nothing of it: pandas' readers and
# `DataFrame.to_sql`, `MetaData.create_all/drop_all/reflect`, `inspect`. An engine built in
# a function and only lent to these is a pool per call unless disposed (real-bug corpus:
# dask's `_read_sql_chunk`).
# Of those, the ones that move data (a schema set up once with `create_all` is no sign of
# a function that runs again and again: corpus review, manila's `register_models`).
ENGINE_READERS: FrozenSet[str] = frozenset({"read_sql", "read_sql_query", "read_sql_table", "to_sql"})
ENGINE_BORROWERS: FrozenSet[str] = ENGINE_READERS | {"create_all", "drop_all", "reflect", "inspect"}
# Methods of a session, connection or result that hand back rows or a value: what they
# return holds no connection (`cached = session.exec(q).first()`).
MATERIALIZING_METHODS: FrozenSet[str] = frozenset(
    {"all", "first", "one", "one_or_none", "scalar", "scalar_one", "scalar_one_or_none", "fetchone", "fetchall", "fetchmany", "count"}
)
# Engine methods that check a connection out of the pool.
CONNECTION_METHODS: FrozenSet[str] = frozenset({"connect", "raw_connection"})
# The first SQLAlchemy release with each API the fixes and the help may write (checked on the
# released packages: `hasattr(cls, "__enter__")`). Below them, `with` on the object raises
# (`AttributeError: __enter__`, or TypeError "does not support the context manager
# protocol" on Python 3.11+). `Connection` (`engine.connect()`) was a context manager long
# before 1.3 and needs no entry.
# Session, sessionmaker.begin(): https://docs.sqlalchemy.org/en/14/orm/session_basics.html
SESSION_CONTEXT_MANAGER_SINCE = (1, 4)
# The pool's proxied DBAPI connection of `engine.raw_connection()` (absent in 2.0.46, present
# in 2.0.47 and 2.1.0)
RAW_CONNECTION_CONTEXT_MANAGER_SINCE = (2, 0, 47)
# sqlalchemy.ext.asyncio (AsyncSession, create_async_engine):
# https://docs.sqlalchemy.org/en/14/orm/extensions/asyncio.html
ASYNCIO_SINCE = (1, 4)
# `async_sessionmaker` (1.4 writes `sessionmaker(class_=AsyncSession)`)
ASYNC_SESSIONMAKER_SINCE = (2, 0)
# Names that, when their origin cannot be resolved (imported from outside the linted files,
# or a parameter), are taken to be session factories. `Session` is deliberately absent: an
# unresolved `Session` is as often a scoped_session registry as a sessionmaker.
CONVENTIONAL_FACTORY_NAMES: FrozenSet[str] = frozenset(
    {
        "SessionLocal",
        "AsyncSessionLocal",
        "async_session_maker",
        "async_session_factory",
        "async_session",
        "session_factory",
        "session_maker",
        "SessionFactory",
        "SessionMaker",
        "sessionMaker",
    }
)
# Receiver names taken to be sessions when nothing else says so.
CONVENTIONAL_SESSION_NAMES: FrozenSet[str] = frozenset({"session", "db", "db_session", "dbsession", "sess", "_session", "async_session"})
# Names under which code passes a Connection it was handed (Alembic migrations:
# `bind = op.get_bind()`; test fixtures: `connection`).
BORROWED_CONNECTION_NAMES: FrozenSet[str] = frozenset({"bind", "conn", "connection", "get_bind"})
ASYNC_TYPE_NAMES: FrozenSet[str] = frozenset({"AsyncSession", "AsyncConnection", "AsyncEngine"})
SESSION_TYPE_NAMES: FrozenSet[str] = frozenset({"Session", "AsyncSession", "scoped_session", "async_scoped_session"})


def is_async_name(name: str) -> bool:
    return "async" in name.lower()


def is_engine_name(name: str) -> bool:
    """`engine`, `async_engine`, `self._engine`, `db_engine`, and `sqlite_engine_iris` (a
    pytest fixture's engine with data loaded): conventional engine names."""
    return name in CONVENTIONAL_ENGINE_NAMES or name.endswith("_engine") or "_engine_" in name


# --- methods of sessions and connections ----------------------------------------------------

# Methods that end a session's or a connection's hold on the pool. `invalidate()` closes a
# Session, and returns a Connection's or raw connection's pool slot (discarding the DBAPI
# connection). Fixture: SL010/released_by_invalidate.py
CLOSING_METHODS: FrozenSet[str] = frozenset({"close", "invalidate"})
# Methods that return the object they are called on (Connection.execution_options()).
RETURNS_SELF: FrozenSet[str] = frozenset({"execution_options"})
# Attributes that are safe to read on a closed session: no database work, no lazy load.
# (Session.close() resets the session; these report on that state.)
SAFE_AFTER_CLOSE: FrozenSet[str] = frozenset(
    {"close", "is_active", "in_transaction", "in_nested_transaction", "info", "bind", "get_bind", "closed", "invalidated"}
)
# Coroutine methods (SQLAlchemy 2.x asyncio API): called without `await`, nothing happens.
ASYNC_SESSION_COROUTINES: FrozenSet[str] = frozenset(
    {
        "close", "commit", "rollback", "execute", "scalar", "scalars", "get", "get_one", "flush", "refresh",
        "delete", "merge", "stream", "stream_scalars", "connection", "invalidate", "run_sync", "reset",
        "close_all", "exec_driver_sql", "dispose", "start",
    }
)
# Methods whose failure leaves the session needing a rollback (flush runs inside commit).
FAILING_METHODS: FrozenSet[str] = frozenset({"commit", "flush"})
# Methods that run a statement in the session's transaction. When the statement fails,
# PostgreSQL aborts the transaction ("current transaction is aborted, commands ignored until
# end of transaction block") and every later statement fails until `rollback()`; on other
# databases a failed statement inside a flush fails the same way. (`query()` builds a query
# and runs it later: it is a statement only inside a helper, see callables.committing_functions;
# `exec`: SQLModel's `session.exec(select(...))`; `async_execute`: session proxies.)
STATEMENT_METHODS: FrozenSet[str] = frozenset({"execute", "scalar", "scalars", "exec", "async_execute"})
# Session methods that load from the database when they must (a SELECT): on PostgreSQL a
# failed one aborts the transaction as a failed statement does. Counted only on a name bound
# to a session in the function (`config.get(...)` is no load, nor `self.session.get(url)` of
# an HTTP client), and, by the prefilter, in a file that
# also commits or runs a statement (real-bug corpus: bagofwords' background agent task,
# whose `session.get()` loads precede the failing agent run).
SESSION_READS: FrozenSet[str] = frozenset({"get", "get_one", "refresh"})
# Every method on a session whose failure SL007 follows.
FAILING_CALLS: FrozenSet[str] = FAILING_METHODS | STATEMENT_METHODS | SESSION_READS
# What a helper does to a session parameter that fails the transaction when it fails.
HELPER_STATEMENTS: FrozenSet[str] = STATEMENT_METHODS | {"query"}
# Calls on the session that clear the failed state; `abort()` is what project wrappers of
# the session (and zope's transaction manager) call their rollback (mailman's `config.db`);
# `async_rollback()`: async session proxies (fastapi-amis-admin's `db`).
# (expunge_all() empties the identity map but leaves the failed transaction in place.)
RESETTING_METHODS: FrozenSet[str] = frozenset(
    {"rollback", "close", "reset", "invalidate", "remove", "abort", "async_rollback", "async_close"}
)
# Exceptions a failed flush raises (sqlalchemy.exc, and oslo.db's), plus the catch-alls.
DATABASE_ERRORS: FrozenSet[str] = frozenset(
    {
        "Exception", "BaseException", "SQLAlchemyError", "DBAPIError", "IntegrityError", "OperationalError",
        "DatabaseError", "DataError", "ProgrammingError", "InternalError", "InvalidRequestError",
        "StatementError", "StaleDataError", "FlushError",
        # oslo.db's engine facade raises these in place of SQLAlchemy's (OpenStack)
        "DBError", "DBDuplicateEntry", "DBReferenceError", "DBConstraintError", "DBDeadlock", "DBDataError",
        "DBConnectionError",
    }
)


def is_database_error(name: str) -> bool:
    """SQLAlchemy's exceptions and the catch-alls, also under project aliases that keep the
    class name's end (`PostgreSQLIntegrityError`, `SQLiteIntegrityError`)."""
    if name in DATABASE_ERRORS:
        return True
    return name.endswith(("IntegrityError", "OperationalError", "DBAPIError", "SQLAlchemyError", "DatabaseError"))


# --- callees outside the project: what they do to what they are given ---------------------

# Take over closing what they are given (first argument).
CLOSING_WRAPPERS: FrozenSet[str] = frozenset({"closing", "aclosing", "enter_context", "enter_async_context", "push", "push_async_exit"})
# Store or hand over what they are given: containers, queues, executors and task APIs,
# finalizers and cleanup registries. Ownership leaves the function with it.
STORING_CALLEES: FrozenSet[str] = frozenset(
    {
        "append", "appendleft", "extend", "insert", "add", "put", "put_nowait", "setdefault", "update",
        "submit", "add_task", "create_task", "ensure_future", "run_in_executor", "run_coroutine_threadsafe",
        "apply_async", "delay", "start_soon", "spawn", "partial", "setattr", "callback", "finalize",
        "addfinalizer", "addCleanup", "addAsyncCleanup",
    }
)
# Builtins that build a container or a lazy iterator holding what they are given (their
# result keeps it).
CONTAINER_BUILTINS: FrozenSet[str] = frozenset(
    {"map", "filter", "zip", "iter", "next", "enumerate", "reversed", "sorted", "list", "tuple", "set", "frozenset", "dict", "chain", "vars"}
)
# Builtins that only look at what they are given.
# SQLAlchemy classes that keep a connection they are given as their bind and never close it
# (`MetaData(connection)`, `Table(name, metadata, autoload_with=connection)`): they borrow.
# Real-bug corpus: agate-sql's from_sql.
BORROWING_CLASSES: FrozenSet[str] = frozenset({"MetaData", "Table", "Inspector"})
INSPECTING_CALLEES: FrozenSet[str] = frozenset({"isinstance", "id", "repr", "str", "print", "type", "hasattr", "getattr", "bool", "len"})
# Calls that take a coroutine and await it (or schedule it): passing one there is fine.
AWAITING_CALLEES: FrozenSet[str] = frozenset(
    {"gather", "create_task", "ensure_future", "wait_for", "shield", "run", "wait", "as_completed", "run_until_complete", "start_soon", "to_thread"}
)
# Calls that run what they are given later or concurrently, by the callee's last name, and
# what SL008 calls them.
HANDOFF_SINKS: Mapping[str, str] = {
    "add_task": "background task",
    "BackgroundTask": "background task",  # Starlette's, passed as a response's `background=`
    "Thread": "thread",
    "Process": "process",
    "create_task": "task",
    "ensure_future": "task",
    "start_soon": "task",
    "run_in_executor": "executor",
    "submit": "executor",
    "to_thread": "thread",
    "apply_async": "Celery task",
    "delay": "Celery task",
}
# What ends a Query's laziness: the methods that run it and hand back rows or a value.
RUNS_QUERY: FrozenSet[str] = frozenset(
    {"all", "first", "one", "one_or_none", "scalar", "count", "get", "delete", "update", "exists", "first_or_404", "get_or_404", "paginate"}
)
# Responses that read their body from an iterator while the response is sent, after the
# handler returned: a session the iterator uses must outlive the handler's scope.
STREAMING_RESPONSES: FrozenSet[str] = frozenset({"StreamingResponse", "EventSourceResponse"})

# --- frameworks: when code runs -----------------------------------------------------------

# Decorator attribute names that register a request handler (FastAPI/Starlette/Flask/Quart)
# when called with arguments: `@app.get("/x")`, `@router.post(...)`, `@bp.route(...)`.
ROUTE_METHODS: FrozenSet[str] = frozenset({"get", "post", "put", "patch", "delete", "options", "head", "api_route", "websocket", "route", "trace"})
# Decorators that make every call a unit of work: Flask hooks, Celery tasks.
PER_CALL_DECORATORS: FrozenSet[str] = frozenset({"before_request", "after_request", "teardown_request", "task", "shared_task"})
# Decorators that make a function run once (or once per argument set). Command-line
# commands (click, typer, Flask's `app.cli`) run once per process.
# (`@asynccontextmanager` is not one: a lifespan is recognised by its name or by being passed
# as `lifespan=`; other async context managers run on every `async with`.)
ONCE_DECORATORS: FrozenSet[str] = frozenset({"lru_cache", "cache", "cached_property", "on_event", "command", "group"})
# Receivers whose `@x.command` registers a bot command (run per message), not a CLI command.
BOT_COMMAND_RECEIVERS = re.compile(r"(?i)^(?:.*bot|commands|client|dp|router|tree|app_commands)$")
# Class-based views: the verb methods of a subclass run per request (Flask's MethodView and
# flask_restful's Resource, Tornado's RequestHandler, Starlette's HTTPEndpoint, Django and
# DRF views, Sanic's HTTPMethodView).
VIEW_BASES: FrozenSet[str] = frozenset(
    {
        "MethodView", "View", "Resource", "RequestHandler", "HTTPEndpoint", "WebSocketEndpoint", "WebSocketHandler",
        "APIView", "GenericAPIView", "ViewSet", "ModelViewSet", "GenericViewSet", "HTTPMethodView",
    }
)
VIEW_METHODS: FrozenSet[str] = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "dispatch_request", "on_message"})
# Methods a framework calls per item or per event: Scrapy item pipelines, logging handlers.
PER_ITEM_METHODS: Mapping[str, str] = {
    "process_item": "an item pipeline's `process_item` runs for every item",
    "emit": "a logging handler's `emit` runs for every record",
    # luigi's scheduler calls a Task's `output()` on every completeness check and run
    # (real-bug corpus: luigi's CopyToTable, whose target built an engine each time)
    "output": "a luigi Task's `output` runs on every completeness check",
}
# The base each PER_ITEM_METHODS entry needs (by its last name's ending), where the method
# name alone says too little.
PER_ITEM_BASES: Mapping[str, str] = {"emit": "Handler", "output": "Task"}
# Calls that register endpoints: Route("/", endpoint), router.add_api_route(path, endpoint),
# app.add_url_rule(rule, view_func=...).
# (`config.add_request_method(f, "db", reify=True)`: Pyramid calls f once per request that
# reads `request.db`; real-bug corpus: bodhi's get_db_session_for_request)
ENDPOINT_REGISTRARS: FrozenSet[str] = frozenset(
    {"Route", "WebSocketRoute", "add_api_route", "add_url_rule", "add_route", "add_websocket_route", "add_request_method"}
)
APP_FACTORY_NAMES = re.compile(r"^(create|make|build|get)_(app|application|api)$|^app_factory$")
# Words of event names that fire once, at start-up.
START_UP_EVENTS: Tuple[str, ...] = ("startup", "configure", "setup")
def is_test_path(path: str) -> bool:
    """A test module or a module directly in a test package (`tests/helpers.py`, `conftest.py`):
    tests build throwaway engines and sessions on purpose, and call the code under test
    any number of times."""
    parts = path.replace("\\", "/").split("/")
    base = parts[-1]
    return (
        base.startswith("test_")
        or base.endswith("_test.py")
        or base == "conftest.py"
        or (len(parts) > 1 and parts[-2] in ("tests", "test", "testing"))
    )


def definition_timing(
    name: str,
    decorators: Iterable[str],
    decorator_calls: Iterable[str],
    class_name: Optional[str],
    class_bases: Iterable[str],
    depends_targets: FrozenSet[str] = frozenset(),
    endpoints: FrozenSet[str] = frozenset(),
    once_names: FrozenSet[str] = frozenset(),
    request_decorators: FrozenSet[str] = frozenset(),
) -> Tuple[str, str]:
    """When a function runs, from its definition alone: ("once" | "per request" |
    "unknown", why). Shared by the lint (analysis.frameworks, from libcst) and the project
    pass (project.calls, from `ast`). `decorators`: dotted names, call parentheses dropped;
    `decorator_calls`: those written with arguments."""
    decorators = frozenset(decorators)
    last_parts = {d.rsplit(".", 1)[-1] for d in decorators}
    bases = {b.rsplit(".", 1)[-1] for b in class_bases}
    bot_commands = {d for d in decorators if d.endswith(".command") and BOT_COMMAND_RECEIVERS.match(d.rsplit(".", 2)[-2])}
    once = last_parts & ONCE_DECORATORS
    if "command" in once and all(d in bot_commands for d in decorators if d.rsplit(".", 1)[-1] == "command"):
        once.discard("command")  # `@bot.command()`: per message
    if once:
        return "once", "it runs once"
    if name in once_names or name == "lifespan" or APP_FACTORY_NAMES.match(name):
        return "once", "it runs once"
    for decorator in decorator_calls:
        if decorator.rsplit(".", 1)[-1] in ROUTE_METHODS and "." in decorator and "mock" not in decorator.split(".")[0].lower():
            return "per request", f"`{name}` is a request handler (`@{decorator}`)"
    for decorator in sorted(decorators):
        last = decorator.rsplit(".", 1)[-1]
        if last in PER_CALL_DECORATORS or decorator in bot_commands or last in ("view_config", "actor", "flow"):
            return "per request", f"`{name}` runs on every call (`@{decorator}`)"
        if request_decorators and (decorator in request_decorators or last in request_decorators):
            return "per request", f"`{name}` runs per request (`@{decorator}`, configured)"
    if class_name is None and name in depends_targets:
        return "per request", f"`{name}` is a FastAPI dependency, run for every request"
    if class_name is None and name in endpoints:
        return "per request", f"`{name}` is a registered endpoint"
    if class_name is not None:
        if name == "dispatch" and any("Middleware" in b for b in bases):
            return "per request", "middleware `dispatch` runs for every request"
        if name in VIEW_METHODS and bases & VIEW_BASES:
            return "per request", f"`{class_name}.{name}` is a view method, run for every request"
        if name in PER_ITEM_METHODS and (name not in PER_ITEM_BASES or any(b.endswith(PER_ITEM_BASES[name]) for b in bases)):
            return "per request", PER_ITEM_METHODS[name]
    return "unknown", ""


# Decorators of context managers.
MANAGER_DECORATORS: FrozenSet[str] = frozenset({"contextmanager", "asynccontextmanager"})
# Functions named for keeping what they are given: `set_scope_state(scope, key, session)`,
# `store_session(...)`, `register_session(...)`. Fixture: SL001/session_stored_by_setter.py
# A setter counts as one when its name says where the value goes (a session, a state, a
# scope, a registry...) or a string key names it: `set_maintenance_windows_trace(alert,
# window, session)` only uses the session (real-bug corpus: keep's recover_strategy).
STORING_PREFIXES: Tuple[str, ...] = ("set_", "store_", "register_")
STORING_NOUNS: Tuple[str, ...] = (
    "session", "db", "conn", "state", "context", "scope", "registry", "cache", "store", "global", "current", "local", "attr", "item"
)


def is_storing_setter(callee: str, has_string_argument: bool) -> bool:
    """`set_scope_state(scope, "db", session)`, `store_session(...)`: named for keeping."""
    if not callee.startswith(STORING_PREFIXES):
        return False
    rest = callee.split("_", 1)[1].lower()
    return has_string_argument or not rest or any(noun in rest for noun in STORING_NOUNS)
