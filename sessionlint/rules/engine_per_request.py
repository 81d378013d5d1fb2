import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector
from sessionlint.analysis.engines import engines_built_per_call
from sessionlint.analysis.frameworks import FrameworkCollector, Timing
from sessionlint.diagnostics import Confidence, FixAvailability
from sessionlint.fixes import builders
from sessionlint.rules.base import Invalid, Rule, Valid


class EnginePerRequest(Rule):
    """## What it does
    Finds `create_engine(...)`, `create_async_engine(...)` and `engine_from_config(...)`
    executed for every request: in a route handler (FastAPI, Starlette, Flask, Quart), a
    FastAPI dependency, middleware `dispatch`, a Celery task, or a function of the same module
    that one of those calls. Also finds, wherever it runs, a function that builds an engine,
    opens a session or connection on it, and neither disposes of the engine nor hands it on:
    a new pool for every call. A project function that returns a new engine counts as
    `create_engine` where it is called, and so do the engine builders of libraries built on
    SQLAlchemy that the tool knows (fideslib's `get_db_engine()`, and its `get_db_session()`
    unless it is lent an engine).

    ## Why is this bad?
    An Engine owns a connection pool. Building one per request throws pooling away and opens
    a fresh pool, and fresh connections, every time; the old pools linger until garbage
    collection, and the database runs out of connections ("too many clients").

    ## Example
    ```python
    @router.get("/users")
    def list_users():
        engine = create_engine(DATABASE_URL)
        with Session(engine) as db:
            return db.scalars(select(User)).all()
    ```

    Use instead:
    ```python
    engine = create_engine(DATABASE_URL)

    @router.get("/users")
    def list_users():
        with Session(engine) as db:
            return db.scalars(select(User)).all()
    ```

    ## Fix safety
    When the engine is bound to a name in a module-level function (or a method of a
    module-level class) and every argument is a constant or a module-level name, the fix moves
    that statement to module level, before the definition, where it runs once at import. It
    is unsafe: the engine is then built at import time, and the function shares one pool.
    No fix is offered when another function of the module binds the same name: hoisting both
    would leave one module-level engine for two databases.

    ## Known limitations
    - Functions run once are not reported: module level, FastAPI `lifespan` and
      `on_event("startup")` handlers, `functools.lru_cache`/`cache` getters, app factories
      (`create_app`), getters guarded by a module-global `if _engine is None:`.
    - An engine built with `poolclass=NullPool` has no pool to exhaust and is not reported;
      tests and pytest fixtures are not reported by the pool-per-call check.
    - Which functions run per request is decided within the module (plus `Depends(...)`
      targets across the linted files).
    - The pool-per-call check cannot know how often a function runs: a helper that builds
      an engine, uses it in a `with` block and drops it is reported even when it runs a
      fixed few times per process (a one-off ingestion run). Those findings have medium
      confidence. A script's `main()` called only under `if __name__ == "__main__":`, and a
      generator that yields a connection or inspector built on the engine, a function that
      returns something built on it (`Profiler(conn=inspector.bind)`), and a private helper
      (`_name`) called from one place outside a loop or only behind a memo guard
      (`if self._x is None: self._x = self._name()`) are not reported: the last runs as
      often as its one caller, which the module cannot tell.

    ## References
    - SQLAlchemy, "Engine Configuration" (an engine is "typically a global object created
      just once"): https://docs.sqlalchemy.org/en/20/core/engines.html
    - FastAPI, "Lifespan Events": https://fastapi.tiangolo.com/advanced/events/
    """

    code = "SL004"
    name = "engine-per-request"
    summary = "Engine (and its connection pool) created for every request"
    fix_availability = FixAvailability.SOMETIMES
    METADATA_DEPENDENCIES = (LifecycleCollector, FrameworkCollector)
    TRIGGERS = ("engine",)
    examples = (
        Valid(
            "engine = create_engine(URL)\n\n"
            "@router.get('/users')\n"
            "def list_users():\n"
            "    with Session(engine) as db:\n"
            "        return db.scalars(select(User)).all()\n",
            name="module_level_engine",
        ),
        Valid(
            "@lru_cache\n"
            "def get_engine():\n"
            "    return create_engine(URL)\n",
            name="cached_getter",
        ),
        Invalid(
            "@router.get('/users')\n"
            "def list_users():\n"
            "    engine = create_engine(URL)\n"
            "    with Session(engine) as db:\n"
            "        return db.scalars(select(User)).all()\n",
            name="engine_in_route",
            expect=[("SL004", 3, 14)],
        ),
        Invalid(
            "URL = 'postgresql://app@db/app'\n\n\n"
            "@router.get('/users')\n"
            "def list_users():\n"
            "    engine = create_engine(URL)\n"
            "    with Session(engine) as db:\n"
            "        return db.scalars(select(User)).all()\n",
            name="engine_in_route_hoisted",
            expect=[("SL004", 6, 14)],
            fixed="URL = 'postgresql://app@db/app'\n\n\n"
            "engine = create_engine(URL)\n\n\n"
            "@router.get('/users')\n"
            "def list_users():\n"
            "    with Session(engine) as db:\n"
            "        return db.scalars(select(User)).all()\n",
        ),
    )

    def leave_Module(self, node: cst.Module) -> None:
        frameworks = self.context.frameworks
        assert frameworks is not None  # declared in METADATA_DEPENDENCIES
        for found in engines_built_per_call(self.context.lifecycle, frameworks, node, self.context.path):
            build, function = found.build, found.function
            callee = self.context.source_of(build.call.func)
            fix = builders.hoist(self.context.module, function, build.call, "engine")
            if found.shared_by is not None:
                self.report(
                    build.call,
                    f"`{callee}()` in `{found.shared_by}.__init__` builds a new connection pool on every "
                    f"`{found.shared_by}(...)`: `__new__` hands out one shared instance, but `__init__` runs each "
                    "time, replaces its engine and abandons the old pool",
                    help="Build the engine once: in `__new__` with the instance, or under a guard "
                    "(`if not hasattr(self, \"_engine\"):`)",
                )
            elif found.timing is Timing.PER_REQUEST:
                self.report(
                    build.call,
                    f"`{callee}()` builds a new engine and connection pool on every request: {found.reason}",
                    help="Create the engine once (module level or the app's lifespan) and reuse it",
                    fix=fix,
                )
            else:
                self.report(
                    build.call,
                    f"`{callee}()` builds a new connection pool on every call of `{function.name.value}`, "
                    "which opens connections on it and "
                    + ("returns before disposing of it" if found.returns_first else "never disposes of it"),
                    help="Create the engine once and reuse it, or call `engine.dispose()` when done",
                    fix=fix,
                    # How often the function runs is not known here: harmless in code
                    # that runs a fixed few times per process.
                    confidence=Confidence.MEDIUM,
                )
