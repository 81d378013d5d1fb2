import libcst as cst

from sessionlint.analysis.lifecycle import Holding, LifecycleCollector, SessionLife
from sessionlint.diagnostics import FixAvailability
from sessionlint.rules.base import Invalid, Rule, Valid


class SessionNotClosed(Rule):
    """## What it does
    Finds sessions created in a function, a script or a module body with no close guaranteed
    on every normal path: never closed, left open by an early `return`, `raise`, `continue`
    or `break`, overwritten before they were closed, or returned by a FastAPI dependency.

    ## Why is this bad?
    An unclosed `Session` keeps its connection checked out of the pool until the garbage
    collector finds it. Under load the pool runs dry ("QueuePool limit of size 5 overflow 10
    reached") or the database refuses new clients ("too many clients").

    ## Example
    ```python
    def count_users():
        db = SessionLocal()
        return db.query(User).count()
    ```

    Use instead:
    ```python
    def count_users():
        with SessionLocal() as db:
            return db.query(User).count()
    ```

    ## Known limitations
    - A session handed to a constructor, stored on an object or in a container, aliased,
      captured by a nested function, or returned (a factory) is not followed: ownership has
      left the function, and the rule stays silent. Callers of project functions that return
      a new session are checked instead.
    - A close that is skipped only when an exception is raised is reported by SL002
      (close-not-in-finally), not here.
    - A session bound to a connection it was handed (`Session(bind=op.get_bind())` in an
      Alembic migration, `Session(bind=connection)` in a fixture) is not reported: the
      connection's owner releases it, and the session holds no pooled connection of its own.
    - A FastAPI dependency is recognised by its name appearing in `Depends(...)` or
      `Security(...)` in the linted files.

    ## References
    - SQLAlchemy, "Opening and Closing a Session":
      https://docs.sqlalchemy.org/en/20/orm/session_basics.html#opening-and-closing-a-session
    - FastAPI, "Dependencies with yield":
      https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
    """

    code = "SL001"
    name = "session-not-closed"
    summary = "Session created without a guaranteed close"
    fix_availability = FixAvailability.NONE
    METADATA_DEPENDENCIES = (LifecycleCollector,)
    examples = (
        Valid(
            "def count_users():\n"
            "    with SessionLocal() as db:\n"
            "        return db.query(User).count()\n",
            name="with_block",
        ),
        Valid(
            "def get_db():\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        yield db\n"
            "    finally:\n"
            "        db.close()\n",
            name="dependency_try_finally",
        ),
        Invalid(
            "def count_users():\n" "    db = SessionLocal()\n" "    return db.query(User).count()\n",
            name="never_closed",
            expect=[("SL001", 2, 10)],
        ),
        Invalid(
            "def find(user_id):\n"
            "    db = SessionLocal()\n"
            "    user = db.get(User, user_id)\n"
            "    if user is None:\n"
            "        raise LookupError(user_id)\n"
            "    db.close()\n"
            "    return user\n",
            name="raise_before_close",
            expect=[("SL001", 2, 10)],
        ),
    )

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._check_scope(node)

    def leave_Module(self, node: cst.Module) -> None:
        self._check_scope(node)

    def _check_scope(self, node: cst.CSTNode) -> None:
        facts = self.context.lifecycle.facts_for(node)  # type: ignore[arg-type]
        if facts is None or facts.gave_up:
            return
        for life in facts.lives:
            self._check_life(life)

    def _check_life(self, life: SessionLife) -> None:
        creation = life.creation
        if creation.borrows_connection:
            return
        callee = self.context.source_of(creation.call.func)
        prefix = "async with" if creation.factory.is_async else "with"
        function = life.function
        if creation.holding is Holding.RETURNED or (creation.holding is Holding.BOUND and life.returned):
            if function.is_dependency and not function.is_generator:
                self.report(
                    creation.call,
                    f"FastAPI dependency `{function.name}` returns a new session that nothing closes",
                    help=f"Yield it instead: `{prefix} {callee}() as db: yield db`",
                )
            return
        if creation.holding is Holding.YIELDED:
            self.report(
                creation.call,
                f"session created by `{callee}()` is yielded and never closed",
                help=f"Use `{prefix} {callee}() as db: yield db`",
            )
            return
        if creation.holding is Holding.CHAINED:
            self.report(
                creation.call,
                f"session created by `{callee}()` is used once and never closed",
                help=f"Use `{prefix} {callee}() as db:` and call the method on `db`",
            )
            return
        if creation.holding is not Holding.BOUND or life.escape is not None or not life.leaks:
            return
        name = creation.name
        help_text = (
            f"Use `{prefix} {callee}() as {name}: yield {name}`"
            if function.is_generator
            else f"Use `{prefix} {callee}() as {name}:`"
        )
        if not life.closes:
            self.report(creation.call, f"session `{name}` is never closed", help=help_text)
            return
        leak = life.leaks[0]
        if leak.kind == "return":
            message = f"session `{name}` is not closed when the function returns at line {{exit}}"
            refs = {"exit": leak.node}
        elif leak.kind == "raise":
            message = f"session `{name}` is not closed when the function raises at line {{exit}}"
            refs = {"exit": leak.node}
        elif leak.kind == "rebind":
            if any(creation.call is child for child in _direct_values(leak.node)):
                message = (
                    f"session `{name}` from the previous loop iteration is still open when line "
                    f"{{exit}} creates a new one"
                )
            else:
                message = f"session `{name}` is still open when `{name}` is reassigned at line {{exit}}"
            refs = {"exit": leak.node}
        else:
            where = "the script" if function.name == "<module>" else f"`{function.name}`"
            message = f"session `{name}` is not closed on a path that reaches the end of {where} at line {{exit}}"
            refs = {"exit": ("end", leak.node)}
        self.report(creation.call, message, help=help_text, refs=refs)


def _direct_values(statement: cst.CSTNode):
    value = getattr(statement, "value", None)
    if isinstance(value, cst.Await):
        value = value.expression
    return (value,) if value is not None else ()
