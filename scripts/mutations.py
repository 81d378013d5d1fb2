"""Bug planting for the recall measurement (scripts/corpus.py mutate).

Each operator takes correct real code and plants one known bug the way developers write it:
a `with` turned into a bare assignment, a `finally` dropped, an `await` dropped (on receivers
that certainly are async sessions), a rollback dropped, an engine or a sessionmaker moved into
a request handler. A site is named by its operator and its index among that operator's
matches in walk order, so a mutant can be rebuilt from the original bytes.
"""

import re
from typing import Callable, Dict, List, Optional, Tuple

import libcst as cst

from sessionlint.analysis.facts import is_bound_to_borrowed_connection
from sessionlint.analysis.tree import dotted_name, suite_statements, terminal_name, walk
from sessionlint.knowledge import CONVENTIONAL_FACTORY_NAMES

SESSION_CALLEES = set(CONVENTIONAL_FACTORY_NAMES)
# `Session`/`AsyncSession` count only where the file imports them from SQLAlchemy or SQLModel
# (requests.Session, aiohttp.ClientSession are not database sessions).
_SESSION_CLASS_IMPORT = re.compile(rb"from\s+(?:sqlalchemy|sqlmodel)[\w.]*\s+import\s+[^\n]*\b(?:Async)?Session\b")
SESSION_NAMES = {"session", "db", "db_session", "dbsession", "sess", "_session", "async_session", "s"}
COROUTINES = {"commit", "rollback", "close", "flush", "refresh", "delete", "merge"}


def _parse(data: bytes) -> Optional[cst.Module]:
    try:
        return cst.parse_module(data)
    except Exception:
        return None


def _simple_call_statement(statement: cst.CSTNode) -> Optional[cst.Call]:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Expr):
            value = small.value
            if isinstance(value, cst.Await):
                value = value.expression
            if isinstance(value, cst.Call):
                return value
    return None


def _method_call(statement: cst.CSTNode, methods) -> Optional[str]:
    """`name.method(...)` (possibly awaited) as a statement: the receiver name."""
    call = _simple_call_statement(statement)
    if call is not None and isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Name):
        if call.func.attr.value in methods:
            return call.func.value.value
    return None


# --- matchers: node -> bool -------------------------------------------------------------


def _is_session_with(node: cst.CSTNode, factories) -> bool:
    if not isinstance(node, cst.With) or len(node.items) != 1:
        return False
    item = node.items[0]
    if item.asname is None or not isinstance(item.asname.name, cst.Name):
        return False
    # A session bound to a borrowed connection is exempt by design (SL001 docs): not a plant,
    # nor is the session of a scoped_session registry (`self.Session = scoped_session(...)`):
    # the registry keeps it for the thread, and `remove()` elsewhere closes it.
    # Nor is a block that closes the session in a `finally` itself (cognee's generator
    # dependency): without the `with` it is still closed.
    return (
        isinstance(item.item, cst.Call)
        and terminal_name(item.item.func) in factories
        and f"!{dotted_name(item.item.func)}" not in factories
        and not is_bound_to_borrowed_connection(item.item)
        and not _closes_in_finally(node.body, item.asname.name.value)
    )


def _closes_in_finally(body: cst.CSTNode, name: str) -> bool:
    for node in walk(body, enter_scopes=False):
        if isinstance(node, cst.Try) and node.finalbody is not None:
            if any(_method_call(s, {"close"}) == name for s in suite_statements(node.finalbody.body)):
                return True
    return False


def _completes(statement: cst.CSTNode) -> bool:
    """Whether a statement can complete normally (code after it is reachable). Loops and
    `match` are taken to complete."""
    if isinstance(statement, cst.SimpleStatementLine):
        return not any(isinstance(s, (cst.Return, cst.Raise, cst.Break, cst.Continue)) for s in statement.body)
    if isinstance(statement, cst.With):
        return _block_completes(statement.body)
    if isinstance(statement, cst.If):
        other = statement.orelse
        if other is None:
            return True
        return _block_completes(statement.body) or (
            _completes(other) if isinstance(other, cst.If) else _block_completes(other.body)
        )
    if isinstance(statement, (cst.Try, cst.TryStar)):
        if statement.finalbody is not None and not _block_completes(statement.finalbody.body):
            return False
        body = _block_completes(statement.body) and (statement.orelse is None or _block_completes(statement.orelse.body))
        return body or any(_block_completes(h.body) for h in statement.handlers)
    return True


def _block_completes(block) -> bool:
    return all(_completes(statement) for statement in suite_statements(block))


def _is_session_with_completing(node: cst.CSTNode, factories) -> bool:
    """A session `with` whose block can complete normally: code after it is reachable."""
    return _is_session_with(node, factories) and _block_completes(node.body)


def _is_connect_with(node: cst.CSTNode, factories) -> bool:
    if not isinstance(node, cst.With) or len(node.items) != 1:
        return False
    item = node.items[0]
    call = item.item
    if item.asname is None or not isinstance(item.asname.name, cst.Name) or not isinstance(call, cst.Call):
        return False
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "connect"
        and "engine" in (terminal_name(func.value) or "").lower()
    )


def _is_finally_close(node: cst.CSTNode, factories) -> bool:
    """`try: ... finally: name.close()` where `name` was created by a session factory or an
    engine's connect() in this module (`factories` carries those names as `=name`)."""
    if type(node) is not cst.Try or node.handlers or node.orelse is not None or node.finalbody is None:
        return False
    final = suite_statements(node.finalbody.body)
    return len(final) == 1 and f"={_method_call(final[0], {'close'})}" in factories


def _is_awaited_session_call(node: cst.CSTNode, factories) -> bool:
    if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
        return False
    small = node.body[0]
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Await)
        and f"~{_method_call(node, COROUTINES)}" in factories
    )


def _is_rollback_handler_try(node: cst.CSTNode, factories) -> bool:
    if type(node) is not cst.Try or not node.handlers:
        return False
    committed = {
        n.func.value.value
        for n in walk(node.body, enter_scopes=False)
        if isinstance(n, cst.Call)
        and isinstance(n.func, cst.Attribute)
        and n.func.attr.value in ("commit", "flush")
        and isinstance(n.func.value, cst.Name)
    }
    if node.finalbody is not None:
        return False  # a `finally:` that closes the session resets it: no clean plant
    for handler in node.handlers:
        for statement in suite_statements(handler.body):
            receiver = _method_call(statement, {"rollback"})
            # sessions only: a DBAPI connection's rollback is another matter
            if receiver in committed and (receiver in SESSION_NAMES or receiver.endswith("session")):
                # The plant appends a use of the session after the `try`: the handler must
                # fall through to it once its rollback and its top-level `raise` are gone
                # (a handler that returns or raises on every path leaves nothing to find).
                return not _exits(handler.body)
    return False


def _exits(body: cst.CSTNode) -> bool:
    """Whether the handler can leave other than by falling through, after the mutation:
    a `return`, `continue` or `break`, or a `raise` that is not a top-level statement (the
    mutation drops those)."""
    top = [s for s in suite_statements(body)]
    for node in walk(body, enter_scopes=False):
        if isinstance(node, (cst.Return, cst.Continue, cst.Break)):
            return True
        if isinstance(node, cst.Raise) and not any(
            isinstance(s, cst.SimpleStatementLine) and node in s.body for s in top
        ):
            return True
    return False


# --- mutations: (module, node) -> replacement ------------------------------------------------


def _with_to_assignment(node: cst.With) -> cst.FlattenSentinel:
    item = node.items[0]
    value = item.item
    # `async with engine.connect() as conn` becomes `conn = await engine.connect()`: without
    # the await nothing is checked out (an AsyncConnection starts when awaited).
    func = value.func if isinstance(value, cst.Call) else None
    if node.asynchronous is not None and isinstance(func, cst.Attribute) and func.attr.value in ("connect", "begin"):
        value = cst.Await(expression=value)
    assign = cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(target=item.asname.name)], value=value)],
        leading_lines=node.leading_lines,
    )
    return cst.FlattenSentinel([assign, *suite_statements(node.body)])


def _use_after_with(node: cst.With) -> cst.FlattenSentinel:
    name = node.items[0].asname.name
    use = cst.parse_statement(f"{name.value}.commit()\n")
    if node.asynchronous is not None:
        use = cst.parse_statement(f"await {name.value}.commit()\n")
    return cst.FlattenSentinel([node, use])


def _drop_finally(node: cst.Try) -> cst.FlattenSentinel:
    return cst.FlattenSentinel([*suite_statements(node.body), *suite_statements(node.finalbody.body)])


def _drop_await(node: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
    small = node.body[0]
    return node.with_changes(body=[small.with_changes(value=small.value.expression)])


_ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "route", "api_route", "websocket"}


def _is_route_handler(node: cst.CSTNode, factories) -> bool:
    """`@app.get("/x")` / `@router.post(...)` / `@bp.route(...)` on a function: a request
    handler as the frameworks register it."""
    if not isinstance(node, cst.FunctionDef) or not isinstance(node.body, cst.IndentedBlock):
        return False
    for decorator in node.decorators:
        call = decorator.decorator
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value in _ROUTE_METHODS:
            return True
    return False


def _prepend(node: cst.FunctionDef, source: str) -> cst.FunctionDef:
    statement = cst.parse_statement(source)
    return node.with_changes(body=node.body.with_changes(body=[statement, *node.body.body]))


def _engine_into_route(node: cst.FunctionDef) -> cst.FunctionDef:
    """Move the engine into the handler: it is now built on every request."""
    return _prepend(node, "request_engine = create_engine(DATABASE_URL)\n")


def _sessionmaker_into_route(node: cst.FunctionDef) -> cst.FunctionDef:
    return _prepend(node, "RequestSession = sessionmaker(bind=engine)\n")


def _drop_rollback(node: cst.Try) -> cst.FlattenSentinel:
    handlers = []
    name = ""
    for handler in node.handlers:
        kept = []
        for statement in suite_statements(handler.body):
            receiver = _method_call(statement, {"rollback"})
            if receiver is not None:
                name = receiver
                continue
            if isinstance(statement, cst.SimpleStatementLine) and any(isinstance(s, cst.Raise) for s in statement.body):
                continue
            kept.append(statement)
        if not kept:
            kept = [cst.SimpleStatementLine(body=[cst.Pass()])]
        handlers.append(handler.with_changes(body=handler.body.with_changes(body=kept)))
    use = cst.parse_statement(f"{name}.flush()\n")
    return cst.FlattenSentinel([node.with_changes(handlers=handlers), use])


Matcher = Callable[[cst.CSTNode, set], bool]
Mutation = Callable[[cst.CSTNode], cst.CSTNode]

# operator -> (the rule expected to report the planted bug, matcher, mutation)
_OPERATORS: Dict[str, Tuple[str, Matcher, Mutation]] = {
    "SL001 with-to-assignment": ("SL001", _is_session_with, _with_to_assignment),
    # The close left after a `return` is never reached: a session never closed (SL001).
    "SL002 drop-finally": ("SL002|SL010|SL001", _is_finally_close, _drop_finally),
    "SL003 use-after-with": ("SL003", _is_session_with_completing, _use_after_with),
    "SL004 engine-into-route": ("SL004", _is_route_handler, _engine_into_route),
    "SL005 sessionmaker-into-route": ("SL005", _is_route_handler, _sessionmaker_into_route),
    "SL006 drop-await": ("SL006", _is_awaited_session_call, _drop_await),
    "SL007 drop-rollback": ("SL007", _is_rollback_handler_try, _drop_rollback),
    "SL010 connect-with-to-assignment": ("SL010", _is_connect_with, _with_to_assignment),
}

_QUICK = re.compile(rb"\bwith\b|\bawait\b|\bfinally\b|rollback|\.(?:get|post|put|patch|delete|route)\(")


def _callees(data: bytes, factories: Optional[set]) -> set:
    names = SESSION_CALLEES | set(factories or ())
    if _SESSION_CLASS_IMPORT.search(data):
        names |= {"Session", "AsyncSession"}
    return names


def _created_names(module: cst.Module, factories) -> set:
    """`=name` for every `name = Factory(...)` / `name = engine.connect()` in the module."""
    found = set()
    for node in walk(module):
        if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            value = node.value.expression if isinstance(node.value, cst.Await) else node.value
            if isinstance(value, cst.Call):
                callee = terminal_name(value.func)
                receiver = terminal_name(value.func.value) if isinstance(value.func, cst.Attribute) else ""
                is_engine_connect = callee in ("connect", "raw_connection") and "engine" in (receiver or "").lower()
                if callee in factories or is_engine_connect:
                    found.add("=" + node.targets[0].target.value)
    return found


def _registries(module: cst.Module) -> set:
    """`!name` for every name or attribute bound to a scoped_session registry:
    `Session = scoped_session(...)`, `self.Session: scoped_session = scoped_session(...)`."""
    found = set()
    for node in walk(module):
        targets = []
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if isinstance(node.value, cst.Call) and terminal_name(node.value.func) in ("scoped_session", "async_scoped_session"):
            found.update(f"!{dotted_name(t)}" for t in targets if dotted_name(t))
    return found


def _async_session_names(module: cst.Module, callees) -> set:
    """`~name` for names that certainly hold an AsyncSession/AsyncConnection: annotated so,
    or bound by `async with <factory>() as name`. Only their awaits are dropped (other
    awaited `commit()`s belong to Redis clients, websockets, files...)."""
    found = set()
    for node in walk(module):
        if isinstance(node, cst.Param) and node.annotation is not None:
            annotation = node.annotation.annotation
            if any(terminal_name(n) in ("AsyncSession", "AsyncConnection") for n in walk(annotation) if isinstance(n, (cst.Name, cst.Attribute))):
                found.add("~" + node.name.value)
        elif isinstance(node, cst.With) and node.asynchronous is not None:
            for item in node.items:
                if isinstance(item.item, cst.Call) and terminal_name(item.item.func) in callees:
                    if item.asname is not None and isinstance(item.asname.name, cst.Name):
                        found.add("~" + item.asname.name.value)
    return found


def find_sites(data: bytes, factories: Optional[set] = None) -> List[Tuple[str, int]]:
    if not _QUICK.search(data):
        return []
    module = _parse(data)
    if module is None:
        return []
    callees = _callees(data, factories)
    names = callees | _created_names(module, callees) | _async_session_names(module, callees) | _registries(module)
    counts: Dict[str, int] = {}
    sites = []
    for node in walk(module):
        for operator, (_, matches, _) in _OPERATORS.items():
            if matches(node, names):
                index = counts.get(operator, 0)
                counts[operator] = index + 1
                sites.append((operator, index))
    return sites


def make_mutant(data: bytes, operator: str, index: int, factories: Optional[set] = None) -> Optional[bytes]:
    module = _parse(data)
    if module is None:
        return None
    _, matches, mutation = _OPERATORS[operator]
    callees = _callees(data, factories)
    names = callees | _created_names(module, callees) | _async_session_names(module, callees) | _registries(module)
    seen = 0
    for node in walk(module):
        if matches(node, names):
            if seen == index:
                try:
                    mutated = module.deep_replace(node, mutation(node))
                except Exception:
                    return None
                return mutated.bytes  # type: ignore[union-attr]
            seen += 1
    return None


def expected_codes(operator: str) -> List[str]:
    return _OPERATORS[operator][0].split("|")


OPERATORS = {name: spec[0] for name, spec in _OPERATORS.items()}
