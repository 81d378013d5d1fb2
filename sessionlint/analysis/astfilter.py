"""Second-stage prefilters on CPython's `ast`, for text triggers that match far more files
than have findings. `ast.parse` costs about a tenth of `libcst.parse_module` plus the
traversal, so a file that passes a text trigger but cannot hold a finding of that rule is
settled here without libcst. Each check errs towards True: it may keep a file that then has
no finding, never drop one that has (every fixture runs with and without the prefilter).
No libcst import here.
"""

import ast
from typing import Optional, Set

# Methods whose failure leaves the session needing a rollback (flush runs inside commit).
FAILING_METHODS = frozenset({"commit", "flush"})
# Calls on the session that clear the failed state; `abort()` is what project wrappers of
# the session (and zope's transaction manager) call their rollback (mailman's `config.db`).
# (expunge_all() empties the identity map but leaves the failed transaction in place.)
RESETTING_METHODS = frozenset({"rollback", "close", "reset", "invalidate", "remove", "abort"})
# Exceptions a failed flush raises (sqlalchemy.exc), plus the catch-alls.
DATABASE_ERRORS = frozenset(
    {
        "Exception",
        "BaseException",
        "SQLAlchemyError",
        "DBAPIError",
        "IntegrityError",
        "OperationalError",
        "DatabaseError",
        "DataError",
        "ProgrammingError",
        "InternalError",
        "InvalidRequestError",
        "StatementError",
        "StaleDataError",
        "FlushError",
    }
)


def is_database_error(name: str) -> bool:
    """SQLAlchemy's exceptions and the catch-alls, also under project aliases that keep the
    class name's end (`PostgreSQLIntegrityError`, `SQLiteIntegrityError`)."""
    if name in DATABASE_ERRORS:
        return True
    return name.endswith(("IntegrityError", "OperationalError", "DBAPIError", "SQLAlchemyError", "DatabaseError"))


_TRY_TYPES = tuple(t for t in (getattr(ast, "Try", None), getattr(ast, "TryStar", None)) if t is not None)


def _terminal(node: Optional[ast.expr]) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def may_leave_failed_transaction(tree: ast.AST) -> bool:
    """Whether SL007 can have anything to say: some `try` calls `x.commit()`/`x.flush()` in
    its body and has a handler that catches database errors and neither starts with `raise`
    nor with a reset (`x.rollback()`, `x.close()`, ...) of the one receiver committed."""
    for node in ast.walk(tree):
        if not isinstance(node, _TRY_TYPES):
            continue
        receivers: Set[str] = set()
        for statement in node.body:  # type: ignore[attr-defined]
            for sub in ast.walk(statement):
                if type(sub) is ast.Call and type(sub.func) is ast.Attribute and sub.func.attr in FAILING_METHODS:
                    receivers.add(ast.dump(sub.func.value))
        if not receivers:
            continue
        for handler in node.handlers:  # type: ignore[attr-defined]
            kind = handler.type
            candidates = kind.elts if isinstance(kind, ast.Tuple) else [kind]
            if kind is not None and not any(is_database_error(_terminal(c)) for c in candidates):
                continue
            first = handler.body[0]
            if isinstance(first, ast.Raise):
                continue
            if (
                isinstance(first, ast.Expr)
                and type(first.value) is ast.Call
                and type(first.value.func) is ast.Attribute
                and first.value.func.attr in RESETTING_METHODS
                and receivers == {ast.dump(first.value.func.value)}
            ):
                continue
            return True
    return False


# Text triggers (engine.STATIC_TRIGGERS) with a check here: a file that passes only these
# triggers is parsed with `ast` first, and with libcst only if a check says so.
REFINED_TRIGGERS = {"commit": may_leave_failed_transaction}
