import libcst as cst

from sessionlint.analysis.facts import ScopeFacts, SessionLife
from sessionlint.analysis.handoffs import never_removed_registries
from sessionlint.diagnostics import FixAvailability
from sessionlint.rules._messages import report_unclosed
from sessionlint.rules.base import Invalid, ScopeRule, Valid


class SessionNotClosed(ScopeRule):
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

    ## Fix safety
    When the session is bound with `name = Factory(...)` in a function and is closed, if at
    all, only by a `name.close()` that ends the same block, the fix puts the rest of that block
    under `with Factory(...) as name:` (`async with` for async factories) and drops the
    trailing close. It is safe in the function's own block when the block returns or yields
    nothing but constants or the session itself; unsafe when it returns plain values (counts,
    strings, comparisons) or sits in a nested block. No fix is offered when the block returns
    what may be ORM objects (the caller would get detached objects: DetachedInstanceError at
    its first lazy load), when the session or anything the block assigns is used after a
    nested block, or when the factory is the project's own Session class (its `__exit__` may
    commit).

    Below SQLAlchemy 1.4 (`target-sqlalchemy`, or the oldest version the project's
    requirements allow) a Session is no context manager, and `with` raises
    (`AttributeError: __enter__`, a TypeError from Python 3.11): there the fix keeps `name = Factory(...)`, puts the rest
    of the block in `try:` and `name.close()` in `finally:` (a trailing close moves there),
    at the same safety, and the help says so too.

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
    - SQLAlchemy 1.3, "Session Basics" (no context manager; close in `finally`):
      https://docs.sqlalchemy.org/en/13/orm/session_basics.html
    - FastAPI, "Dependencies with yield":
      https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
    """

    code = "SL001"
    name = "session-not-closed"
    summary = "Session created without a guaranteed close"
    fix_availability = FixAvailability.SOMETIMES
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
            fixed="def count_users():\n" "    with SessionLocal() as db:\n" "        return db.query(User).count()\n",
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

    TRIGGERS = ("factory_call", "maker")

    def check_scope(self, facts: ScopeFacts) -> None:
        for index, life in enumerate(facts.lives):
            if index not in facts.shared_sessions:  # SL009 reports those
                self._check_life(life)
        if isinstance(facts.node, cst.Module) and facts.maker_builds:
            for call, name in never_removed_registries(facts.node, facts.maker_builds, self.context.index, self.context.path):
                self.report(
                    call,
                    f"`scoped_session` registry `{name}` is never removed: each thread keeps its "
                    f"session, and a pooled connection, after its request or task ends",
                    help=f"Call `{name}.remove()` when each request or task ends (`@app.teardown_appcontext`, "
                    f"a middleware's `finally`, a task's `finally`)",
                )

    def _check_life(self, life: SessionLife) -> None:
        if not life.creation.is_connection:
            report_unclosed(self, life, "session")
