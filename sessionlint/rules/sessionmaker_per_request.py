import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector
from sessionlint.analysis.engines import makers_built_per_call
from sessionlint.analysis.frameworks import FrameworkCollector, Timing
from sessionlint.diagnostics import FixAvailability
from sessionlint.fixes import builders
from sessionlint.rules.base import Invalid, Rule, Valid


class SessionmakerPerRequest(Rule):
    """## What it does
    Finds `sessionmaker(...)`, `async_sessionmaker(...)`, `scoped_session(...)` and
    `async_scoped_session(...)` executed for every request: in a route handler, a FastAPI
    dependency, middleware `dispatch`, a Celery task, or a function of the same module that one
    of those calls.

    ## Why is this bad?
    A sessionmaker is configuration, meant to be built once next to the engine. Built per
    request it costs time on every request, and a `scoped_session` built per request is a new
    registry each time: its `remove()` at teardown no longer reaches the sessions it handed out.

    ## Example
    ```python
    @router.get("/users")
    def list_users():
        maker = sessionmaker(bind=engine)
        with maker() as db:
            return db.scalars(select(User)).all()
    ```

    Use instead:
    ```python
    SessionLocal = sessionmaker(bind=engine)

    @router.get("/users")
    def list_users():
        with SessionLocal() as db:
            return db.scalars(select(User)).all()
    ```

    ## Fix safety
    When the sessionmaker is bound to a name in a module-level function (or a method of a
    module-level class) and every argument is a constant or a module-level name, the fix moves
    that statement to module level, before the definition. It is unsafe: the factory is then
    built at import time and shared. No fix is offered when another function of the module
    binds the same name.

    Also finds, wherever it runs, a function that builds a `scoped_session` registry and uses
    it only there (calls it for a session, on the spot or by name, or returns only that
    session): a new registry on every call, whose sessions no teardown removes.

    ## Known limitations
    - Functions run once (module level, lifespan, startup handlers, cached getters, app
      factories, a script's `main()`, `__init__`, tests) are not reported.
    - A maker the function keeps (returns, stores on an object, hands to a call, declares
      global) is not reported by the per-call check: its owner decides how often it is built.

    ## References
    - SQLAlchemy, "Using a sessionmaker":
      https://docs.sqlalchemy.org/en/20/orm/session_basics.html#using-a-sessionmaker
    """

    code = "SL005"
    name = "sessionmaker-per-request"
    summary = "sessionmaker or scoped_session built for every request"
    fix_availability = FixAvailability.SOMETIMES
    METADATA_DEPENDENCIES = (LifecycleCollector, FrameworkCollector)
    TRIGGERS = ("maker",)
    examples = (
        Valid(
            "SessionLocal = sessionmaker(bind=engine)\n\n"
            "@router.get('/users')\n"
            "def list_users():\n"
            "    with SessionLocal() as db:\n"
            "        return db.scalars(select(User)).all()\n",
            name="module_level_sessionmaker",
        ),
        Invalid(
            "@router.get('/users')\n"
            "def list_users():\n"
            "    maker = sessionmaker(bind=engine)\n"
            "    with maker() as db:\n"
            "        return db.scalars(select(User)).all()\n",
            name="sessionmaker_in_route",
            expect=[("SL005", 3, 13)],
        ),
        Invalid(
            "engine = create_engine('sqlite://')\n\n\n"
            "@router.get('/users')\n"
            "def list_users():\n"
            "    maker = sessionmaker(bind=engine)\n"
            "    with maker() as db:\n"
            "        return db.scalars(select(User)).all()\n",
            name="sessionmaker_in_route_hoisted",
            expect=[("SL005", 6, 13)],
            fixed="engine = create_engine('sqlite://')\n\n\n"
            "maker = sessionmaker(bind=engine)\n\n\n"
            "@router.get('/users')\n"
            "def list_users():\n"
            "    with maker() as db:\n"
            "        return db.scalars(select(User)).all()\n",
        ),
    )

    def leave_Module(self, node: cst.Module) -> None:
        lifecycle = self.context.lifecycle
        frameworks = self.context.frameworks
        assert frameworks is not None  # declared in METADATA_DEPENDENCIES
        for facts in lifecycle.finished.values():
            if not isinstance(facts.node, cst.FunctionDef) or not facts.maker_builds:
                continue
            timing, reason = frameworks.timing_of(facts.node)
            if timing is not Timing.PER_REQUEST:
                continue
            for call in facts.maker_builds:
                callee = self.context.source_of(call.func)
                self.report(
                    call,
                    f"`{callee}()` is built again on every request: {reason}",
                    help="Build it once at module level (or in the app's lifespan) and reuse it",
                    fix=builders.hoist(self.context.module, facts.node, call, "sessionmaker"),
                )
        for found in makers_built_per_call(lifecycle, frameworks, node, self.context.path):
            callee = self.context.source_of(found.call.func)
            function = found.function.name.value
            self.report(
                found.call,
                f"`{callee}()` builds a new registry on every call of `{function}`: the sessions it "
                f"hands out are never removed by the application's teardown",
                help="Build the registry once at module level and call its `remove()` when each request or task ends",
                fix=builders.hoist(self.context.module, found.function, found.call, "sessionmaker"),
            )
