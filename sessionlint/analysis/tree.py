"""Cheap traversal of libcst trees.

libcst's own `node.visit(visitor)` rebuilds every node it passes (it goes through
`_visit_and_replace_children` even for read-only visitors), which costs about as much as the
parse itself. sessionlint walks the dataclass fields instead, skipping the fields that only
hold whitespace and punctuation, far cheaper than a no-op libcst visit. The walk is iterative, so deeply nested expressions do not hit the recursion limit.
"""

import dataclasses
from typing import (
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
)

import libcst as cst

# Field names (or prefixes) that hold only formatting tokens: whitespace, commas, brackets,
# operators, comments. Nothing a rule reads lives there.
_TRIVIA_PREFIXES: Tuple[str, ...] = (
    "whitespace",
    "lpar",
    "rpar",
    "comma",
    "leading_lines",
    "lines_after_decorators",
    "header",
    "footer",
    "semicolon",
    "newline",
    "colon",
    "equal",
    "dot",
    "operator",
    "lbracket",
    "rbracket",
    "lbrace",
    "rbrace",
    "trailing_whitespace",
    "asynchronous",
    "empty_lines",
    "encoding",
    "default_indent",
    "default_newline",
    "has_trailing_newline",
    "indent",
    "prefix",
    "quote",
    "relative",
    "first_line",
)

# Fields that must come first to keep source order where the dataclass order differs.
_FIELD_ORDER_OVERRIDES: Dict[str, Tuple[str, ...]] = {
    "FunctionDef": ("decorators", "name", "params", "returns", "body"),
    "ClassDef": ("decorators", "name", "bases", "keywords", "body"),
}

_FIELDS: Dict[type, Tuple[str, ...]] = {}

NODE = cst.CSTNode

# type -> whether it is a CSTNode subclass. `isinstance(x, cst.CSTNode)` goes through
# ABCMeta.__instancecheck__ (CSTNode is an ABC): about a fifth of a traversal's time.
_IS_NODE: Dict[type, bool] = {}


def _is_node_type(kind: type) -> bool:
    known = _IS_NODE.get(kind)
    if known is None:
        known = _IS_NODE[kind] = issubclass(kind, NODE)
    return known

# Nodes that open a new scope: a rule about one function never looks inside another.
SCOPE_TYPES: Tuple[Type[cst.CSTNode], ...] = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def child_fields(node_type: type) -> Tuple[str, ...]:
    """The fields of `node_type` that can hold meaningful child nodes, in source order."""
    fields = _FIELDS.get(node_type)
    if fields is None:
        names = [
            f.name
            for f in dataclasses.fields(node_type)
            if not f.name.startswith(_TRIVIA_PREFIXES) and f.name != "star"
        ]
        override = _FIELD_ORDER_OVERRIDES.get(node_type.__name__)
        if override:
            names = [n for n in override if n in names] + [n for n in names if n not in override]
        fields = tuple(names)
        _FIELDS[node_type] = fields
    return fields


def iter_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Direct children of `node` that can matter to an analysis, in source order."""
    return iter(_children(node))


def _children(node: cst.CSTNode) -> List[cst.CSTNode]:
    """`iter_children(node)` as a list (the walks' inner loop)."""
    children: List[cst.CSTNode] = []
    for name in child_fields(type(node)):
        value = getattr(node, name)
        kind = type(value)
        if kind is list or kind is tuple:
            for item in value:
                known = _IS_NODE.get(type(item))
                if known or (known is None and _is_node_type(type(item))):
                    children.append(item)
        else:
            known = _IS_NODE.get(kind)
            if known or (known is None and _is_node_type(kind)):
                children.append(value)
    return children


def walk(root: cst.CSTNode, enter_scopes: bool = True) -> Iterator[cst.CSTNode]:
    """Pre-order walk from `root` (included). With `enter_scopes=False` the bodies of nested
    functions, classes and lambdas are not entered (the nested node itself is yielded)."""
    stack: List[cst.CSTNode] = [root]
    pop = stack.pop
    push = stack.append
    while stack:
        node = pop()
        yield node
        if not enter_scopes and node is not root and isinstance(node, SCOPE_TYPES):
            continue
        for child in reversed(_children(node)):
            push(child)


def traverse(
    root: cst.CSTNode,
    visit: Callable[[cst.CSTNode], None],
    leave: Callable[[cst.CSTNode], None],
) -> None:
    """Depth-first traversal calling `visit` on the way down and `leave` on the way up.
    Iterative: nesting depth is bounded by memory, not by the recursion limit."""
    _LEAVE = object()
    stack: list = [root]
    pop = stack.pop
    push = stack.append
    while stack:
        item = pop()
        if item is _LEAVE:
            leave(pop())
            continue
        visit(item)
        push(item)
        push(_LEAVE)
        for child in reversed(_children(item)):
            push(child)


def mentions_name(root: cst.CSTNode, name: str) -> bool:
    """Whether `name` occurs as an identifier anywhere below `root`, nested scopes included."""
    for node in walk(root):
        if type(node) is cst.Name and node.value == name:
            return True
    return False


def dotted_name(node: cst.BaseExpression) -> Optional[str]:
    """`a.b.c` for a chain of Names and Attributes, else None."""
    parts: List[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def terminal_name(node: cst.BaseExpression) -> Optional[str]:
    """The last identifier of a callee: `f` for `f`, `c` for `a.b.c`, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def suite_statements(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    """The statements of a suite: compound or simple-statement lines for an indented block,
    small statements for a suite on the header line (`if x: return`)."""
    if isinstance(suite, cst.IndentedBlock):
        return suite.body
    if isinstance(suite, cst.SimpleStatementSuite):
        return suite.body
    return ()


def nested_blocks(statement: cst.CSTNode) -> Iterable[Sequence[cst.CSTNode]]:
    """The statement lists directly inside a compound statement: its body, handlers, `else`
    (an `elif` as a one-statement list), `finally` and `match` cases."""
    body = getattr(statement, "body", None)
    if isinstance(body, cst.BaseSuite):
        yield suite_statements(body)
    for handler in getattr(statement, "handlers", ()) or ():
        yield suite_statements(handler.body)
    for name in ("orelse", "finalbody"):
        part = getattr(statement, name, None)
        if isinstance(part, cst.If):
            yield [part]
        elif part is not None and isinstance(getattr(part, "body", None), cst.BaseSuite):
            yield suite_statements(part.body)
    for case in getattr(statement, "cases", ()) or ():
        yield suite_statements(case.body)


def _bound_by_target(target: cst.CSTNode, name: str) -> bool:
    """Whether an assignment target binds `name` (`name`, `a, name`, `*name`); attributes and
    subscripts bind nothing."""
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_bound_by_target(element.value, name) for element in target.elements)
    if isinstance(target, cst.StarredElement):
        return _bound_by_target(target.value, name)
    return False


def captures(scope: cst.CSTNode, name: str) -> bool:
    """Whether a nested function, class or lambda refers to the enclosing scope's `name`. A
    function that binds `name` itself (a parameter, an assignment, `with ... as name`) and
    declares it neither `global` nor `nonlocal` has a local of that name: Python makes every
    use in its body refer to the local. Its decorators and default values are evaluated
    outside it, so a mention there is a capture."""
    if not mentions_name(scope, name):
        return False
    if type(scope) is not cst.FunctionDef:
        return True
    params = scope.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    outside = [d.decorator for d in scope.decorators] + [p.default for p in every if p.default is not None]
    if any(mentions_name(part, name) for part in outside):
        return True
    local = any(p.name.value == name for p in every)
    for node in walk(scope.body, enter_scopes=False):
        if isinstance(node, (cst.Nonlocal, cst.Global)):
            if any(n.name.value == name for n in node.names):
                return True
        elif local:
            continue
        elif isinstance(node, cst.AsName):  # with ... as name, except ... as name, import ... as name
            local = _bound_by_target(node.name, name)
        elif isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.NamedExpr, cst.For)):
            local = _bound_by_target(node.target, name)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            local = node is not scope and node.name.value == name
    return not local
