from typing import Optional

import libcst as cst

from sessionlint.analysis.facts import ScopeFacts
from sessionlint.analysis.tree import dotted_name, walk
from sessionlint.diagnostics import Confidence, FixAvailability
from sessionlint.fixes import builders
from sessionlint.fixes.plan import FixPlan
from sessionlint.rules.base import Invalid, ScopeRule, Valid


class MissingRollback(ScopeRule):
    """## What it does
    Finds `except` handlers that catch the exception of a failed `commit()`, `flush()` or
    statement (`execute()`, `scalar()`, `scalars()`, SQLModel's `exec()`, a load with `get()`,
    `get_one()` or `refresh()`, or a function that runs one on the session it is given), do not
    re-raise, do not call `rollback()` (or `close()`), and let the same session be used
    again: in the handler, after the `try` statement, in the next iteration of a loop, or,
    for a session the function did not create, by whoever uses it next.

    ## Why is this bad?
    When a flush fails, SQLAlchemy rolls back the database transaction but leaves the
    Session's transaction inactive. Every later use raises `PendingRollbackError` ("This
    Session's transaction has been rolled back due to a previous exception during flush")
    until `rollback()` is called, so one bad row turns into a stream of unrelated errors.
    When a statement fails, PostgreSQL aborts the whole transaction: every later statement
    fails with "current transaction is aborted, commands ignored until end of transaction
    block" until the session is rolled back.

    ## Example
    ```python
    def import_rows(db, rows):
        for row in rows:
            try:
                db.add(Row(**row))
                db.commit()
            except IntegrityError:
                log.warning("duplicate %s", row)
    ```

    Use instead:
    ```python
    def import_rows(db, rows):
        for row in rows:
            try:
                db.add(Row(**row))
                db.commit()
            except IntegrityError:
                db.rollback()
                log.warning("duplicate %s", row)
    ```

    ## Fix safety
    The fix inserts `session.rollback()` (awaited for an async session in an `async def`) as
    the first statement of the handler. It is unsafe: it discards every pending change of the
    session, which the code after the handler may not expect. No fix is offered where the
    rollback would change the code's mechanics: the session may be `None` there, the
    function uses savepoints (`begin_nested()`, or another object's `rollback()` in the
    handler: a full rollback first would close the savepoint), or the handler commits or
    flushes the session again (a retry, whose pending objects the rollback would drop).

    Where the function does not own the transaction (it did not create the session: a
    parameter, `self.session`, a module-level session), a rollback also discards the
    caller's pending work. There the help proposes a savepoint first: the statements that
    may fail in `with session.begin_nested():`, the commit left outside (to the owner), so a
    failure rolls back only them. This is advice, not a fix: it regroups the statements
    around the commit, changes what a `commit()` inside it does (on SQLAlchemy 1.4 without
    `future=True` it releases only the savepoint), and needs database support (SQLite's
    pysqlite driver emits SAVEPOINT correctly only with the workaround in SQLAlchemy's
    SQLite documentation). `begin_nested()` is a context manager from SQLAlchemy 1.3 on.

    ## Known limitations
    - A session that outlives the function for long (`self.session`, a module-level
      session) is reported when the handler swallows the failure even if the function does
      not use it again: its next user does (medium confidence on `self`). The caller's
      session (a parameter) and a `scoped_session`'s thread session are not: they usually
      end with the request the function's return ends too.
    - A receiver counts as a session when it is known to hold one (created from a factory,
      annotated `Session`/`AsyncSession`, injected with `Depends`) or has a conventional
      name (`session`, `db`, `db_session`, `self.session`, ...).
    - A handler that re-raises on any path, and a `try` that uses `begin_nested()` (whose
      context manager rolls back the savepoint), are not reported.
    - Handlers catching exception types other than SQLAlchemy's and `Exception` are ignored.
    - A commit inside a called function counts when that function is of the module or is
      imported by name from a project module, commits, flushes or runs a statement on a
      session parameter (itself or through another such function of its module it passes
      the session to) and does not roll it back itself (`create_transaction(db=db, ...)`).
    - A failed statement (not a flush) is not counted in a module that names only SQLite,
      MySQL or its kin (SingleStore, TiDB, MariaDB) and no PostgreSQL driver, where a failed
      statement rolls back only itself, nor in one whose sessions run in autocommit mode
      (`create_session()`, `autocommit=True`). Elsewhere the rule does not know the database
      and reports it.
    - `execute("ROLLBACK")` or `execute("COMMIT")` on the session counts as a rollback.

    ## References
    - SQLAlchemy, "This Session's transaction has been rolled back due to a previous exception
      during flush": https://docs.sqlalchemy.org/en/20/faq/sessions.html#this-session-s-transaction-has-been-rolled-back-due-to-a-previous-exception-during-flush-or-similar
    - SQLAlchemy, "Using SAVEPOINT":
      https://docs.sqlalchemy.org/en/20/orm/session_transaction.html#using-savepoint
    """

    code = "SL007"
    name = "missing-rollback"
    summary = "Failed commit or statement caught without `rollback()`, then the session is used again"
    fix_availability = FixAvailability.SOMETIMES
    TRIGGERS = ("commit",)
    examples = (
        Valid(
            "def save(db, item):\n"
            "    try:\n"
            "        db.add(item)\n"
            "        db.commit()\n"
            "    except Exception:\n"
            "        db.rollback()\n"
            "        raise\n",
            name="rollback_and_reraise",
        ),
        Invalid(
            "def save(db, item):\n"
            "    try:\n"
            "        db.add(item)\n"
            "        db.commit()\n"
            "    except Exception:\n"
            "        log.exception('failed')\n"
            "    db.refresh(item)\n",
            name="used_after_swallowed_failure",
            expect=[("SL007", 5, 5)],
            fixed="def save(db, item):\n"
            "    try:\n"
            "        db.add(item)\n"
            "        db.commit()\n"
            "    except Exception:\n"
            "        db.rollback()\n"
            "        log.exception('failed')\n"
            "    db.refresh(item)\n",
        ),
    )

    def check_scope(self, facts: ScopeFacts) -> None:
        for missing in facts.missing_rollbacks:
            method = missing.method
            if missing.next_use is None:
                whose = {"attribute": "it lives on the object", "module": "a module-level session"}[missing.outlives]
                self.report(
                    missing.handler,
                    f"`except` swallows a failed `{missing.session}.{method}()`{_via(missing)} without `rollback()`; "
                    f"`{missing.session}` outlives this function ({whose}), and its next use {_next_use_fails(method)}",
                    help=_help(missing),
                    fix=_rollback_fix(facts, missing),
                    confidence=Confidence.HIGH if missing.outlives == "module" else Confidence.MEDIUM,
                )
                continue
            where = "in the next loop iteration at line {use}" if missing.in_next_iteration else "at line {use}"
            self.report(
                missing.handler,
                f"`except` swallows a failed `{missing.session}.{method}()`{_via(missing)} without `rollback()`, "
                f"and `{missing.session}` is used again {where}",
                help=_help(missing),
                refs={"use": missing.next_use},
                fix=_rollback_fix(facts, missing),
            )


def _help(missing) -> str:
    """A savepoint first where the transaction is not the function's (a rollback would end the
    caller's too); the rollback otherwise."""
    session = missing.session
    rollback = f"call `{session}.rollback()` first in the `except` block, or re-raise"
    if missing.borrowed:
        return (
            f"Run the statements that may fail in `with {session}.begin_nested():` (a savepoint: only they "
            f"roll back, the rest of the transaction stays) and commit after it, or {rollback}"
        )
    return rollback[0].upper() + rollback[1:]


def _next_use_fails(method: str) -> str:
    """What the next use of the session does: after a failed flush SQLAlchemy refuses it;
    after a failed statement the database (PostgreSQL) does."""
    if method in ("commit", "flush"):
        return "raises PendingRollbackError"
    return "fails until it is rolled back (PostgreSQL aborts the transaction)"


def _via(missing) -> str:
    """` (in `_save()`)`: the helper of the module that commits the session."""
    return f" (in `{missing.via[0]}()`)" if missing.via is not None else ""


def _rollback_fix(facts: ScopeFacts, missing) -> Optional[FixPlan]:
    """`rollback()` first in the handler, unless that would change what the code does: the
    session may be None there (AttributeError), a savepoint is rolled back in the handler
    or begun in the function (a full rollback first closes it: ResourceClosedError), or the
    handler commits or flushes again (a retry: the rollback would drop the pending objects
    it means to commit)."""
    function = facts.node
    session = missing.session
    if _may_be_none(function, session) or _uses_savepoints(function, missing.handler, session):
        return None
    for node in walk(missing.handler.body):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in ("commit", "flush"):
            if dotted_name(node.func.value) == session:
                return None
    return builders.rollback_first(missing.handler, cst.parse_expression(session), _is_async(facts, missing))


def _may_be_none(function: cst.CSTNode, session: str) -> bool:
    """`session = None` somewhere in the function, or a test of it against None or its truth."""
    for node in walk(function):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Name) and node.value.value == "None":
            if any(dotted_name(t.target) == session for t in node.targets):
                return True
        if isinstance(node, cst.Comparison) and dotted_name(node.left) == session:
            if any(isinstance(c.comparator, cst.Name) and c.comparator.value == "None" for c in node.comparisons):
                return True
        if isinstance(node, (cst.If, cst.While)) and dotted_name(node.test) == session:
            return True
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not) and dotted_name(node.expression) == session:
            return True
    return False


def _uses_savepoints(function: cst.CSTNode, handler: cst.CSTNode, session: str) -> bool:
    for node in walk(function):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "begin_nested":
            return True
    for node in walk(handler):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "rollback":
            if dotted_name(node.func.value) != session:
                return True
    return False


def _is_async(facts: ScopeFacts, missing) -> bool:
    """The session is async when it is known to be, or when the failing commit is awaited
    (`await session.commit()`), inside an `async def`."""
    function = facts.node
    if not isinstance(function, cst.FunctionDef) or function.asynchronous is None:
        return False
    if missing.session in facts.async_names:
        return True
    return any(isinstance(node, cst.Await) and node.expression is missing.failing_call for node in walk(function.body))
