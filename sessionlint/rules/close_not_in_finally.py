import libcst as cst

from sessionlint.analysis.facts import ScopeFacts
from sessionlint.analysis.teardown import unprotected_teardowns
from sessionlint.diagnostics import Confidence, FixAvailability
from sessionlint.rules._messages import report_unprotected_close
from sessionlint.rules.base import Invalid, ScopeRule, Valid


class CloseNotInFinally(ScopeRule):
    """## What it does
    Finds sessions that are closed on every normal path but not when an exception is raised
    between their creation and the close: the close is not in a `finally` block (or a `with`).
    The commonest case is a FastAPI generator dependency that does `db = SessionLocal();
    yield db; db.close()`: when the endpoint raises, FastAPI throws the exception into the
    generator at the `yield`, and the close never runs.

    It also finds sessions made in one function and closed in another (a request-finished
    hook, a callback the function registers, `__exit__` for what `__enter__` made, another
    method for `self.db = SessionLocal()`) only after a `commit()` (or `flush()`) that is not
    inside a `try`: when the commit raises, the close never runs. These are reported at
    the creation, with medium confidence.

    ## Why is this bad?
    Every request or task that fails leaks one pooled connection. Failures come in bursts, so
    the pool empties exactly when the application is already in trouble.

    ## Example
    ```python
    def get_db():
        db = SessionLocal()
        yield db
        db.close()
    ```

    Use instead:
    ```python
    def get_db():
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()
    ```

    ## Fix safety
    When the session is created and closed by one `name.close()` in the same block, the fix
    moves the statements between them into `try:` and the close into `finally:`. It is safe:
    normal paths run the same statements in the same order, and exceptions now close too.
    It works on every SQLAlchemy version; below 1.4 (`target-sqlalchemy`) the help no longer
    offers `with` as the alternative, since a Session is no context manager there.

    ## Known limitations
    - Statements that cannot raise (assignments of names and constants) between creation and
      close are not counted as risks; any call, `await`, subscript or `yield` is.
    - pytest fixtures that close after `yield` are not reported: pytest runs the teardown
      even when the test fails.
    - A session that is not closed on some normal path is reported by SL001 instead.
    - Of the closes in other functions, only those in the creating class's methods, in
      functions nested in the creating function, and in `__exit__` (for a session `__enter__`
      puts in a context variable) are followed.

    ## References
    - FastAPI, "Dependencies with yield" (exceptions are thrown into the dependency at the
      `yield`): https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
    - SQLAlchemy, "Opening and Closing a Session":
      https://docs.sqlalchemy.org/en/20/orm/session_basics.html#opening-and-closing-a-session
    """

    code = "SL002"
    name = "close-not-in-finally"
    summary = "Session closed on the normal path only, not when an exception is raised"
    fix_availability = FixAvailability.SOMETIMES
    examples = (
        Valid(
            "def save(item):\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        db.add(item)\n"
            "        db.commit()\n"
            "    finally:\n"
            "        db.close()\n",
            name="close_in_finally",
        ),
        Valid(
            "import pytest\n\n"
            "@pytest.fixture\n"
            "def db():\n"
            "    session = SessionLocal()\n"
            "    yield session\n"
            "    session.close()\n",
            name="pytest_fixture_teardown",
        ),
        Invalid(
            "def save(item):\n"
            "    db = SessionLocal()\n"
            "    db.add(item)\n"
            "    db.commit()\n"
            "    db.close()\n",
            name="close_without_finally",
            expect=[("SL002", 2, 10)],
            fixed="def save(item):\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        db.add(item)\n"
            "        db.commit()\n"
            "    finally:\n"
            "        db.close()\n",
        ),
        Invalid(
            "def get_db():\n" "    db = SessionLocal()\n" "    yield db\n" "    db.close()\n",
            name="dependency_yield_without_finally",
            expect=[("SL002", 2, 10)],
        ),
    )

    def check_scope(self, facts: ScopeFacts) -> None:
        for life in facts.lives:
            if not life.creation.is_connection:
                report_unprotected_close(self, life, "session")

    def leave_Module(self, node: cst.Module) -> None:
        super().leave_Module(node)
        lifecycle = self.context.lifecycle
        scopes = [(facts.node, facts.creations) for facts in lifecycle.finished.values() if facts.creations and not facts.gave_up]
        for found in unprotected_teardowns(node, scopes, self.context.path):
            method = found.failing.func.attr.value if isinstance(found.failing.func, cst.Attribute) else "commit"
            self.report(
                found.creation,
                f"this session is closed in `{found.closer}` only after `{method}()` at line {{failing}} succeeds: "
                "if it raises, the close at line {close} never runs",
                help=f"Close it in a `finally` around the `{method}()` in `{found.closer}`",
                refs={"failing": found.failing, "close": found.close},
                confidence=Confidence.MEDIUM,
            )
