"""Node builders for the fixes. They make nodes, never source strings, and reuse the nodes of
the linted tree, so comments and formatting of everything they move are kept; new nodes take
the module's indentation and newline when the module is rendered."""

from typing import Iterator, List, Optional, Sequence, Set, Tuple, Union

import libcst as cst

from sessionlint.analysis.tree import SCOPE_TYPES, dotted_name, suite_statements, walk
from sessionlint.diagnostics import Applicability
from sessionlint.fixes.plan import Edit, FixPlan

Block = Union[cst.Module, cst.IndentedBlock]


# --- finding places -------------------------------------------------------------------------


def contains(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    return any(node is target for node in walk(root))


def _child_suites(statement: cst.CSTNode) -> Iterator[cst.IndentedBlock]:
    """The indented blocks directly inside a compound statement."""
    for name in ("body", "orelse", "finalbody"):
        part = getattr(statement, name, None)
        if isinstance(part, cst.IndentedBlock):
            yield part
        elif isinstance(part, cst.If):
            yield from _child_suites(part)
        elif part is not None and isinstance(getattr(part, "body", None), cst.IndentedBlock):
            yield part.body
    for handler in getattr(statement, "handlers", ()) or ():
        if isinstance(handler.body, cst.IndentedBlock):
            yield handler.body
    for case in getattr(statement, "cases", ()) or ():
        if isinstance(case.body, cst.IndentedBlock):
            yield case.body


def find_statement(root: Block, target: cst.CSTNode) -> Optional[Tuple[Block, int]]:
    """The innermost block whose statement at the returned index contains `target`, without
    entering nested functions or classes unless `root` is one of their blocks."""
    block: Block = root
    while True:
        for index, statement in enumerate(block.body):
            if contains(statement, target):
                if statement is target:
                    return block, index
                inner = next((s for s in _child_suites(statement) if contains(s, target)), None)
                if inner is None or isinstance(statement, SCOPE_TYPES):
                    return block, index
                block = inner
                break
        else:
            return None


def function_block(function: cst.FunctionDef) -> Optional[cst.IndentedBlock]:
    return function.body if isinstance(function.body, cst.IndentedBlock) else None


def simple_assignment(statement: cst.CSTNode, call: cst.Call) -> Optional[str]:
    """`name = <call>` as a whole statement line: the name."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
        target = small.targets[0].target
        if isinstance(target, cst.Name):
            return target.value
    if isinstance(small, cst.AnnAssign) and small.value is call and isinstance(small.target, cst.Name):
        return small.target.value
    return None


def is_method_call_statement(statement: cst.CSTNode, name: str, method: str) -> bool:
    """`name.method()` or `await name.method()` as a whole statement line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == method
        and isinstance(value.func.value, cst.Name)
        and value.func.value.value == name
    )


def _replace_body(block: Block, statements: Sequence[cst.CSTNode]) -> Block:
    return block.with_changes(body=list(statements))


# --- SL006: await -----------------------------------------------------------------------------


def await_call(call: cst.Call, as_statement: bool) -> FixPlan:
    """`db.commit()` -> `await db.commit()`; `db.execute(q).all()` -> `(await db.execute(q)).all()`."""
    if as_statement:
        replacement = cst.Await(expression=call)
    else:
        replacement = cst.Await(expression=call, lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return FixPlan(Applicability.SAFE, "Add `await`", (Edit(call, replacement),))


def async_with(with_node: cst.With) -> FixPlan:
    return FixPlan(
        Applicability.SAFE,
        "Use `async with`",
        (Edit(with_node, with_node.with_changes(asynchronous=cst.Asynchronous())),),
    )


# --- SL007: rollback first in the handler -----------------------------------------------------


def rollback_first(handler: cst.ExceptHandler, receiver: cst.BaseExpression, is_async: bool) -> Optional[FixPlan]:
    if not isinstance(handler.body, cst.IndentedBlock):
        return None
    call: cst.BaseExpression = cst.Call(func=cst.Attribute(value=receiver, attr=cst.Name("rollback")))
    if is_async:
        call = cst.Await(expression=call)
    statement = cst.SimpleStatementLine(body=[cst.Expr(value=call)])
    body = handler.body
    first = body.body[0] if body.body else None
    # Keep comments that open the handler above the new call.
    leading = getattr(first, "leading_lines", None)
    if first is not None and leading:
        statement = statement.with_changes(leading_lines=leading)
        rest = [first.with_changes(leading_lines=()), *body.body[1:]]
    else:
        rest = list(body.body)
    new_body = body.with_changes(body=[statement, *rest])
    name = dotted_name(receiver) or "session"
    return FixPlan(
        Applicability.UNSAFE,
        f"Call `{'await ' if is_async else ''}{name}.rollback()` first in the handler",
        (Edit(handler, handler.with_changes(body=new_body)),),
    )


# --- SL002 / SL010: try/finally around the code between creation and close --------------------


def try_finally(block: Block, creation_index: int, close_index: int) -> Optional[FixPlan]:
    between = list(block.body[creation_index + 1 : close_index])
    if not between:
        return None
    close = block.body[close_index]
    first = between[0]
    leading = getattr(first, "leading_lines", ())
    between[0] = first.with_changes(leading_lines=()) if leading else first
    close_statement = close.with_changes(leading_lines=()) if getattr(close, "leading_lines", ()) else close
    node = cst.Try(
        body=cst.IndentedBlock(body=between),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=[close_statement])),
        leading_lines=leading,
    )
    statements = [*block.body[: creation_index + 1], node, *block.body[close_index + 1 :]]
    return FixPlan(
        Applicability.SAFE,
        "Move the close into a `finally:` block",
        (Edit(block, _replace_body(block, statements)),),
    )


# --- SL001 / SL010: `with` around the rest of the block ---------------------------------------


def with_block(
    block: Block, index: int, call: cst.Call, name: str, is_async: bool, safe: bool
) -> Optional[FixPlan]:
    """`name = Factory(...)` followed by the rest of its block -> `with Factory(...) as name:`
    around that rest; a `name.close()` ending the block is dropped (the `with` closes)."""
    statement = block.body[index]
    rest = list(block.body[index + 1 :])
    while rest and is_method_call_statement(rest[-1], name, "close"):
        rest.pop()
    if not rest:
        return None
    # A comment after `name = Factory()` moves to the end of the `with` line.
    header = statement.trailing_whitespace if isinstance(statement, cst.SimpleStatementLine) else cst.TrailingWhitespace()
    node = cst.With(
        items=[cst.WithItem(item=call, asname=cst.AsName(name=cst.Name(name)))],
        body=cst.IndentedBlock(body=rest, header=header),
        asynchronous=cst.Asynchronous() if is_async else None,
        leading_lines=getattr(statement, "leading_lines", ()),
    )
    keyword = "async with" if is_async else "with"
    return FixPlan(
        Applicability.SAFE if safe else Applicability.UNSAFE,
        f"Use `{keyword} ... as {name}:` for the rest of the block",
        (Edit(block, _replace_body(block, [*block.body[:index], node])),),
    )


def try_finally_rest(block: Block, index: int, name: str, is_async: bool, safe: bool) -> Optional[FixPlan]:
    """`name = Factory(...)` followed by the rest of its block -> that rest in `try:` and
    `name.close()` in `finally:`: what `with` does, written for the SQLAlchemy versions
    whose sessions are no context managers (before 1.4). A `name.close()` ending the block
    becomes the `finally:`'s, with the comments above it."""
    rest = list(block.body[index + 1 :])
    close: Optional[cst.BaseStatement] = None
    while rest and is_method_call_statement(rest[-1], name, "close"):
        close = rest.pop()
    if not rest:
        return None
    if close is None:
        call: cst.BaseExpression = cst.Call(func=cst.Attribute(value=cst.Name(name), attr=cst.Name("close")))
        close = cst.SimpleStatementLine(body=[cst.Expr(value=cst.Await(expression=call) if is_async else call)])
    else:
        comments = [line for line in getattr(close, "leading_lines", ()) if line.comment is not None]
        close = close.with_changes(leading_lines=comments)
    first = rest[0]
    leading = getattr(first, "leading_lines", ())
    rest[0] = first.with_changes(leading_lines=()) if leading else first
    node = cst.Try(
        body=cst.IndentedBlock(body=rest),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=[close])),
        leading_lines=leading,
    )
    return FixPlan(
        Applicability.SAFE if safe else Applicability.UNSAFE,
        f"Use `try:` for the rest of the block and close `{name}` in `finally:`",
        (Edit(block, _replace_body(block, [*block.body[: index + 1], node])),),
    )


def returns_values(statements: Sequence[cst.CSTNode], name: str) -> bool:
    """Whether any of the statements returns or yields a value other than a constant or
    `name` itself."""
    return any(not _is_constant_value(value) for value in _returned(statements, name))


def returns_session_objects(statements: Sequence[cst.CSTNode], name: str) -> bool:
    """Whether any of the statements returns or yields something that may be an ORM object
    loaded through the session (or a collection of them): once a `with` closes the session,
    such an object is detached, and the caller's first lazy load raises
    DetachedInstanceError. Plain values (constants, counts, lengths, comparisons, strings)
    are not."""
    return any(not _is_plain_value(value) for value in _returned(statements, name))


def _returned(statements: Sequence[cst.CSTNode], name: str) -> Iterator[cst.CSTNode]:
    for statement in statements:
        for node in walk(statement, enter_scopes=False):
            if isinstance(node, (cst.Return, cst.Yield)) and node.value is not None:
                value = node.value
                if isinstance(value, cst.Name) and value.value == name and isinstance(node, cst.Yield):
                    continue
                yield value


def _is_constant_value(value: cst.CSTNode) -> bool:
    return isinstance(value, (cst.Integer, cst.Float, cst.SimpleString)) or (
        isinstance(value, cst.Name) and value.value in ("None", "True", "False")
    )


# Calls whose result is a plain value whatever they are given.
_PLAIN_CALLS = frozenset({"len", "bool", "int", "float", "str", "repr", "sum", "round", "abs", "count", "exists"})


def _is_plain_value(value: cst.CSTNode) -> bool:
    if _is_constant_value(value) or isinstance(value, (cst.FormattedString, cst.ConcatenatedString, cst.Comparison)):
        return True
    if isinstance(value, (cst.BooleanOperation,)):
        return _is_plain_value(value.left) and _is_plain_value(value.right)
    if isinstance(value, cst.UnaryOperation):
        return isinstance(value.operator, cst.Not) or _is_plain_value(value.expression)
    if isinstance(value, cst.Call):
        callee = value.func.attr.value if isinstance(value.func, cst.Attribute) else getattr(value.func, "value", None)
        return callee in _PLAIN_CALLS or _fetches_textual_rows(value)
    if isinstance(value, (cst.Tuple, cst.List)):
        return all(_is_plain_value(element.value) for element in value.elements)
    if isinstance(value, cst.Dict):
        return all(isinstance(e, cst.DictElement) and _is_plain_value(e.value) for e in value.elements)
    return False


# Methods that fetch rows out of a result (what remains usable once the session closes).
_FETCHES = frozenset({"all", "scalar", "scalar_one", "scalar_one_or_none", "first", "one", "one_or_none", "fetchall", "fetchone", "fetchmany"})


def _fetches_textual_rows(call: cst.Call) -> bool:
    """`db.execute(text("select ..."))....all()`: rows of a textual query, fetched before the
    return (plain tuples and values: no ORM object can come out of raw SQL)."""
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in _FETCHES:
        return False
    node: cst.BaseExpression = call.func.value
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        if node.func.attr.value in ("execute", "exec_driver_sql"):
            if not node.args:
                return False
            query = node.args[0].value
            if isinstance(query, cst.Call) and getattr(query.func, "value", None) == "text":
                query = query.args[0].value if query.args else query
            return isinstance(query, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))
        node = node.func.value
    return False


def used_outside(function: cst.FunctionDef, block: Block, names: Set[str]) -> bool:
    """Whether any of `names` is read in `function` outside `block` (a `with` put around the
    rest of `block` would have closed the session, or detached its objects, by then)."""
    inside = {id(node) for node in walk(block, enter_scopes=False)}
    for node in walk(function.body, enter_scopes=False):
        if id(node) not in inside and isinstance(node, cst.Name) and node.value in names:
            return True
    return False


def bound_names(statements: Sequence[cst.CSTNode]) -> Set[str]:
    """Names assigned in `statements` (their scope only)."""
    names: Set[str] = set()
    for statement in statements:
        for node in walk(statement, enter_scopes=False):
            targets: List[cst.CSTNode] = []
            if isinstance(node, cst.Assign):
                targets = [t.target for t in node.targets]
            elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.For, cst.NamedExpr)):
                targets = [node.target]
            elif isinstance(node, cst.AsName):
                targets = [node.name]
            for target in targets:
                names.update(t.value for t in walk(target) if isinstance(t, cst.Name))
    return names


# --- SL004 / SL005: hoist to module level -----------------------------------------------------


def module_names_before(module: cst.Module, top_index: int) -> Set[str]:
    """Names bound by module-level assignments and imports before statement `top_index`."""
    names: Set[str] = set()
    for statement in module.body[:top_index]:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name):
                        names.add(target.target.value)
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                names.add(small.target.value)
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    names.add((dotted_name(bound) or "").split(".")[0])
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    names.add(dotted_name(bound) or "")
    return names


def module_bindings(module: cst.Module) -> Set[str]:
    return module_names_before(module, len(module.body))


def _is_constant(node: cst.BaseExpression, names: Set[str]) -> bool:
    if isinstance(node, (cst.SimpleString, cst.Integer, cst.Float, cst.ConcatenatedString)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None") or node.value in names
    if isinstance(node, cst.Attribute):
        base: cst.BaseExpression = node
        while isinstance(base, cst.Attribute):
            base = base.value
        return isinstance(base, cst.Name) and base.value in names
    if isinstance(node, (cst.List, cst.Tuple)):
        return all(_is_constant(e.value, names) for e in node.elements)
    if isinstance(node, cst.Dict):
        return all(isinstance(e, cst.DictElement) and _is_constant(e.key, names) and _is_constant(e.value, names) for e in node.elements)
    return False


def hoist(module: cst.Module, function: cst.FunctionDef, call: cst.Call, what: str) -> Optional[FixPlan]:
    """`name = builder(<constants or module-level names>)` inside a module-level function (or a
    method of a module-level class) -> the same statement at module level, before that
    definition; the function then reads the module-level name."""
    top_index = next((i for i, s in enumerate(module.body) if contains(s, function)), None)
    block = function_block(function)
    if top_index is None or block is None:
        return None
    top = module.body[top_index]
    if top is not function and not (isinstance(top, cst.ClassDef) and any(s is function for s in suite_statements(top.body))):
        return None
    if not any(s is not None and contains(s, call) for s in block.body):
        return None
    place = find_statement(block, call)
    if place is None or place[0] is not block:
        return None
    statement = block.body[place[1]]
    name = simple_assignment(statement, call)
    if name is None or len(block.body) < 2:
        return None
    available = module_names_before(module, top_index)
    if name in module_bindings(module) or not all(_is_constant(arg.value, available) for arg in call.args):
        return None
    if _assigned_elsewhere(function, name, statement) or _built_in_another_scope(module, function, name):
        return None
    hoisted = statement.with_changes(leading_lines=top.leading_lines)
    blank = [cst.EmptyLine(), cst.EmptyLine()]
    removed = top.deep_remove(statement)
    assert isinstance(removed, (cst.FunctionDef, cst.ClassDef))  # a statement of its body went, not the definition
    new_top = removed.with_changes(leading_lines=blank)
    return FixPlan(
        Applicability.UNSAFE,
        f"Create the {what} once at module level",
        (Edit(top, cst.FlattenSentinel([hoisted, new_top])),),
    )


def _built_in_another_scope(module: cst.Module, function: cst.FunctionDef, name: str) -> bool:
    """Whether another function of the module binds `name` too: hoisting both (in one round
    of fixes) would make one module-level name of two engines, and one handler would use the
    other's database."""
    for node in walk(module):
        if isinstance(node, cst.FunctionDef) and node is not function and name in bound_names([node.body]):
            return True
    return False


def _assigned_elsewhere(function: cst.FunctionDef, name: str, statement: cst.CSTNode) -> bool:
    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, (cst.Global, cst.Nonlocal)) and any(n.name.value == name for n in node.names):
            return True
        targets: List[cst.CSTNode] = []
        if isinstance(node, cst.Assign) and not contains(statement, node):
            targets = [t.target for t in node.targets]
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)) and not contains(statement, node):
            targets = [node.target]
        elif isinstance(node, cst.AsName):
            targets = [node.name]
        if any(isinstance(t, cst.Name) and t.value == name for target in targets for t in walk(target)):
            return True
    for param in walk(function.params):
        if isinstance(param, cst.Param) and param.name.value == name:
            return True
    return False
