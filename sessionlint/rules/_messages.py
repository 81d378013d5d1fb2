"""Messages shared by the rules that read the same lifecycle facts: SL001 and SL010 report
unclosed sessions and connections, SL002 and SL010 closes that an exception skips."""

from typing import Dict, Iterable, Optional, Sequence, Set

import libcst as cst

from sessionlint.analysis.facts import Creation, Holding, Leak, SessionLife
from sessionlint.analysis.tree import walk
from sessionlint.fixes import builders
from sessionlint.fixes.plan import FixPlan
from sessionlint.knowledge import (
    RAW_CONNECTION_CONTEXT_MANAGER_SINCE,
    SESSION_CONTEXT_MANAGER_SINCE,
    EscapeReason,
    LeakKind,
    Origin,
)
from sessionlint.project.versions import SqlalchemyTarget
from sessionlint.rules.base import LineRef, Rule


def is_context_manager(target: SqlalchemyTarget, creation: Creation) -> bool:
    """Whether `with` works on what `creation` makes on every SQLAlchemy version from
    `target` on: a Connection always; a session from 1.4; the DBAPI connection of
    `engine.raw_connection()` from 2.0.47 (knowledge.py). An async object is: none exists
    before 1.4, and each has been an async context manager since."""
    if creation.factory.is_async:
        return True
    if creation.is_connection:
        func = creation.call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "raw_connection":
            return target.at_least(*RAW_CONNECTION_CONTEXT_MANAGER_SINCE)
        return True
    return target.at_least(*SESSION_CONTEXT_MANAGER_SINCE)


def _closes_with(rule: Rule, creation: Creation) -> bool:
    return is_context_manager(rule.context.index.sqlalchemy, creation)


def _with_clause(rule: Rule, life: SessionLife) -> str:
    """`with SessionLocal() as db:` (and `yield db` in a generator), as the code would read."""
    creation = life.creation
    callee = rule.context.source_of(creation.call.func)
    prefix = "async with" if creation.factory.is_async else "with"
    name = creation.name or ("conn" if creation.is_connection else "db")
    if life.function.is_generator:
        return f"`{prefix} {callee}() as {name}: yield {name}`"
    return f"`{prefix} {callee}() as {name}:`"


def _with_help(rule: Rule, life: SessionLife) -> str:
    if _closes_with(rule, life.creation):
        return f"Use {_with_clause(rule, life)}"
    return _finally_help(rule, life)


def _finally_help(rule: Rule, life: SessionLife) -> str:
    """The advice where `with` does not work on the target version (a session before 1.4)."""
    creation = life.creation
    callee = rule.context.source_of(creation.call.func)
    name = creation.name or ("conn" if creation.is_connection else "db")
    if life.function.is_generator:
        return f"Wrap the `yield {name}` in `try:` and call `{name}.close()` in `finally:`"
    return f"Put the code after `{name} = {callee}()` in `try:` and call `{name}.close()` in `finally:`"


def is_owned(life: SessionLife) -> bool:
    """The function owns what it created: bound to a name, not handed on, not bound to a
    connection someone else owns."""
    creation = life.creation
    return creation.holding is Holding.BOUND and life.escape is None and not creation.borrows_connection


def _only_in_transaction_blocks(function: cst.CSTNode, name: str, call: cst.Call) -> bool:
    """Every use of the session is `with name.begin():` and the statements inside such
    blocks: each block commits or rolls back and hands the connection back to the pool,
    so the session holds nothing when the function drops it (corpus review: oslo.db's
    tests). Fixture: SL001/session_used_in_transaction_blocks.py"""
    inside: Set[int] = set()
    blocks = 0
    for node in walk(function):
        if isinstance(node, cst.With) and any(
            isinstance(item.item, cst.Call)
            and isinstance(item.item.func, cst.Attribute)
            and item.item.func.attr.value in ("begin", "begin_nested")
            and isinstance(item.item.func.value, cst.Name)
            and item.item.func.value.value == name
            for item in node.items
        ):
            blocks += 1
            inside.update(id(sub) for sub in walk(node))
    if not blocks:
        return False
    targets = _assign_targets(function, call)
    after = False  # only the uses after the creation (the name may be bound before, too)
    for node in walk(function):
        if node is call:
            after = True
        if after and isinstance(node, cst.Name) and node.value == name and id(node) not in inside:
            if any(node is target.target for target in targets):
                continue
            if isinstance(node, cst.Name) and _rebinds(function, node):
                return True  # bound to something else: the uses after are not this session's
            return False
    return True


def _rebinds(function: cst.CSTNode, name: cst.Name) -> bool:
    for node in walk(function):
        if isinstance(node, cst.AssignTarget) and node.target is name:
            return True
        if isinstance(node, cst.AsName) and node.name is name:
            return True
    return False


def _assign_targets(function: cst.CSTNode, call: cst.Call) -> Sequence[cst.AssignTarget]:
    for node in walk(function):
        if isinstance(node, cst.Assign) and node.value is call:
            return node.targets
    return ()


def report_unclosed(rule: Rule, life: SessionLife, noun: str) -> None:
    """Normal paths that leave the function (or rebind the name) with the object open."""
    creation = life.creation
    if creation.borrows_connection or creation.unbound:
        return
    callee = rule.context.source_of(creation.call.func)
    function = life.function
    help_text = _with_help(rule, life)
    prefix = "async with" if creation.factory.is_async else "with"
    by_with = _closes_with(rule, creation)
    short = "conn" if creation.is_connection else "db"
    if creation.holding is Holding.RETURNED or (creation.holding is Holding.BOUND and life.returned):
        if function.is_dependency and not function.is_generator and life.escape is not EscapeReason.OWNER:
            rule.report(
                creation.call,
                f"FastAPI dependency `{function.name}` returns a new {noun} that nothing closes",
                help=f"Yield it instead: `{prefix} {callee}() as db: yield db`"
                if by_with
                else f"Yield it instead: `db = {callee}()`, then `yield db` in `try:` and `db.close()` in `finally:`",
            )
        return
    if creation.holding is Holding.YIELDED:
        if not by_with:
            help_text = f"Bind it first (`{short} = {callee}()`), then `yield {short}` in `try:` and call `{short}.close()` in `finally:`"
        rule.report(creation.call, f"{noun} created by `{callee}()` is yielded and never closed", help=help_text)
        return
    if creation.holding is Holding.CHAINED:
        rule.report(
            creation.call,
            f"{noun} created by `{callee}()` is used once and never closed",
            help=f"Use `{prefix} {callee}() as {short}:` and call the method on `{short}`"
            if by_with
            else f"Bind it (`{short} = {callee}()`), call the method on `{short}` in `try:` and `{short}.close()` in `finally:`",
        )
        return
    leaks = life.normal_leaks
    if not is_owned(life) or not leaks:
        return
    name = creation.name
    if name is not None and not creation.is_connection and _only_in_transaction_blocks(life.function.node, name, creation.call):
        return
    fix = with_fix(life, rule.context.index.sqlalchemy)
    opened = creation.factory.origin is Origin.OPEN_CONTEXT
    if opened:
        help_text = f"Close `{name}` in a `finally` (or make `{callee}` close it in its own `finally`)"
    unremoved = creation.factory.origin is Origin.UNREMOVED_REGISTRY
    if unremoved:
        help_text = f"Close `{name}` in a `finally`, or call `{callee}.remove()` when each request or task ends"
    if not life.closes:
        message = f"{noun} `{name}` is never closed"
        if opened:
            message = f"`{callee}()` closes its session only when the block raises: {message} when the block ends"
        elif unremoved:
            message = (
                f"{noun} `{name}` of registry `{callee}`, which nothing in the project removes, is never closed: "
                "the thread keeps it, and its connection, after this function"
            )
        rule.report(creation.call, message, help=help_text, fix=fix)
        return
    leak = leaks[0]
    refs: Dict[str, LineRef] = {"exit": leak.node}
    if leak.kind is LeakKind.RETURN:
        message = f"{noun} `{name}` is not closed when the function returns at line {{exit}}"
    elif leak.kind is LeakKind.RAISE:
        message = f"{noun} `{name}` is not closed when the function raises at line {{exit}}"
    elif leak.kind is LeakKind.REBIND:
        if any(creation.call is child for child in _direct_values(leak.node)):
            message = f"{noun} `{name}` from the previous loop iteration is still open when line {{exit}} creates a new one"
        else:
            message = f"{noun} `{name}` is still open when `{name}` is reassigned at line {{exit}}"
    else:
        where = "the script" if function.name == "<module>" else f"`{function.name}`"
        message = f"{noun} `{name}` is not closed on a path that reaches the end of {where} at line {{exit}}"
        refs = {"exit": ("end", leak.node)}
    if opened:
        message = f"`{callee}()` closes its session only when the block raises: " + message
    rule.report(creation.call, message, help=help_text, refs=refs, fix=fix)


def report_unprotected_close(rule: Rule, life: SessionLife, noun: str) -> None:
    """Closed on every normal path, but an exception between creation and close skips it."""
    if not is_owned(life) or life.normal_leaks or not life.closes or not life.exception_leaks or life.creation.unbound:
        return
    creation = life.creation
    name = creation.name
    leak: Leak = life.exception_leaks[0]
    close = life.closes[0]
    close_ref = ("end", close) if isinstance(close, cst.With) else close
    if life.function.is_pytest_fixture and _after_yield(life.function.node, leak.node):
        return  # a fixture's teardown: pytest runs it even when the test fails (issue 20)
    in_finally = _same_finally(life.function.node, leak.node, close)
    if in_finally and not _writes(leak.node, name):
        # Teardown before the close (a log call, a rollback, `with suppress(...)`) in the
        # `finally` that closes: the session is already the `finally`'s (issue 20).
        # Fixture: SL002/teardown_before_close_in_finally.py
        return
    if in_finally:
        message = (
            f"{noun} `{name}` is not closed if line {{raise}} raises: it writes to the database in the "
            f"`finally` before the close at line {{close}}"
        )
    elif leak.kind is LeakKind.EXCEPTION and _is_in_finally(life.function.node, close):
        message = (
            f"{noun} `{name}` is not closed if line {{raise}} raises: it runs before the `try` whose "
            f"`finally` closes it at line {{close}}"
        )
    elif leak.kind is LeakKind.EXCEPTION:
        message = f"{noun} `{name}` is not closed if line {{raise}} raises: the close at line {{close}} is not in a `finally`"
    else:
        message = (
            f"{noun} `{name}` is not closed on the `except` path that leaves at line {{raise}}: "
            f"the close at line {{close}} is not in a `finally`"
        )
    if in_finally:
        help_text = f"Commit at the end of the `try` block, or close `{name}` in a `finally:` of its own around the commit"
    elif life.function.is_generator and _yields_between(life):
        help_text = f"Wrap the `yield` in `try:` and call `{name}.close()` in `finally:`"
    elif _closes_with(rule, creation):
        help_text = f"Call `{name}.close()` in a `finally:` block, or use {_with_clause(rule, life)}"
    else:
        help_text = f"Call `{name}.close()` in a `finally:` block"
    fix = None if in_finally else try_finally_fix(life)
    rule.report(creation.call, message, help=help_text, refs={"raise": leak.node, "close": close_ref}, fix=fix)


def _after_yield(function: cst.CSTNode, node: cst.CSTNode) -> bool:
    """Whether `node` comes after a `yield` of the function, in source order.
    Fixture: SL002/fixture_teardown_before_close.py"""
    seen_yield = False
    for sub in walk(function, enter_scopes=False):
        if isinstance(sub, cst.Yield):
            seen_yield = True
        if sub is node:
            return seen_yield
    return False


def _writes(node: cst.CSTNode, name: Optional[str]) -> bool:
    """`session.commit()` / `flush()` / `execute(...)` in the statement: a database error there
    does skip the close that follows (real-bug corpus: a bootstrap's `finally: db.commit();
    db.close()`), unlike a log call or a rollback."""
    for sub in walk(node):
        if isinstance(sub, cst.Call) and isinstance(sub.func, cst.Attribute) and sub.func.attr.value in ("commit", "flush", "execute"):
            if isinstance(sub.func.value, cst.Name) and sub.func.value.value == name:
                return True
    return False


def _same_finally(function: cst.CSTNode, raising: cst.CSTNode, close: cst.CSTNode) -> bool:
    """Whether the statement that may raise and the close are in the same `finally:`."""
    for node in walk(function, enter_scopes=False):
        if isinstance(node, cst.Try) and node.finalbody is not None:
            inside = {id(child) for child in walk(node.finalbody, enter_scopes=False)}
            if id(raising) in inside and id(close) in inside:
                return True
    return False


def _is_in_finally(function: cst.CSTNode, close: cst.CSTNode) -> bool:
    """Whether the close sits in some `finally:` of the function (one whose `try` starts too
    late, since the close does not cover the raise)."""
    from sessionlint.analysis.tree import walk

    for node in walk(function, enter_scopes=False):
        if isinstance(node, cst.Try) and node.finalbody is not None:
            if any(child is close for child in walk(node.finalbody, enter_scopes=False)):
                return True
    return False


def _scope_block(life: SessionLife) -> Optional[builders.Block]:
    node = life.function.node
    if isinstance(node, cst.Module):
        return node
    return builders.function_block(node)


def with_fix(life: SessionLife, target: SqlalchemyTarget) -> Optional[FixPlan]:
    """`name = Factory()` + the rest of its block -> `with Factory() as name:` around it, when
    the only close (if any) ends that block. Safe in the function's own block when nothing
    but constants is returned; unsafe when plain values are returned or the block is nested.
    None (no fix) when the mechanics would change: ORM objects returned (detached), the
    session or what it loaded used after a nested block, a project Session class. Where
    `with` does not work on the target SQLAlchemy version, the same rest goes into `try:`
    with the close in `finally:`: what `__exit__` would do, at the same safety."""
    creation = life.creation
    function = life.function.node
    if not isinstance(function, cst.FunctionDef) or creation.name is None:
        return None
    if creation.factory.is_async and function.asynchronous is None:
        return None
    root = builders.function_block(function)
    place = builders.find_statement(root, creation.call) if root is not None else None
    if place is None:
        return None
    block, index = place
    if builders.simple_assignment(block.body[index], creation.call) != creation.name:
        return None
    last = block.body[-1]
    for close in life.closes:
        if not (builders.contains(last, close) and builders.is_method_call_statement(last, creation.name, "close")):
            return None
    rest = block.body[index + 1 :]
    if builders.returns_session_objects(rest, creation.name):
        # The caller would get detached objects: DetachedInstanceError at its first lazy load.
        return None
    if block is not root and builders.used_outside(function, block, {creation.name} | builders.bound_names(rest)):
        # Used after the block (the session, or what it loaded): the `with` would close it first.
        return None
    if creation.factory.origin is Origin.SUBCLASS:
        # A project's own Session class may commit in `__exit__`: `with` would add a commit.
        return None
    safe = block is root and not builders.returns_values(rest, creation.name)
    if not is_context_manager(target, creation):
        return builders.try_finally_rest(block, index, creation.name, creation.factory.is_async, safe)
    return builders.with_block(block, index, creation.call, creation.name, creation.factory.is_async, safe)


def try_finally_fix(life: SessionLife) -> Optional[FixPlan]:
    """The code between the creation and its one close, in the same block, into `try:`; the
    close into `finally:`."""
    creation = life.creation
    if creation.name is None or len(life.closes) != 1:
        return None
    root = _scope_block(life)
    place = builders.find_statement(root, creation.call) if root is not None else None
    close_place = builders.find_statement(root, life.closes[0]) if root is not None else None
    if place is None or close_place is None or place[0] is not close_place[0]:
        return None
    block, index = place
    close_index = close_place[1]
    if close_index <= index or builders.simple_assignment(block.body[index], creation.call) != creation.name:
        return None
    if not builders.is_method_call_statement(block.body[close_index], creation.name, "close"):
        return None
    return builders.try_finally(block, index, close_index)


def _yields_between(life: SessionLife) -> bool:
    return any(_contains_yield(leak.node) for leak in life.exception_leaks)


def _contains_yield(node: cst.CSTNode) -> bool:
    from sessionlint.analysis.tree import walk

    return any(isinstance(n, cst.Yield) for n in walk(node, enter_scopes=False))


def _direct_values(statement: cst.CSTNode) -> Iterable[cst.CSTNode]:
    value = getattr(statement, "value", None)
    if isinstance(value, cst.Await):
        value = value.expression
    return (value,) if value is not None else ()
