"""What happens to each tracked session in a function, statement by statement: created,
used, closed, a close registered, rebound, or handed over (ownership leaves). What a call does
to a session passed to it is the callee oracle's answer (`CalleeOracle`), the one place that
decides it."""

from dataclasses import dataclass
from typing import AbstractSet, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

import libcst as cst

from sessionlint.analysis.facts import Event, EventKind
from sessionlint.analysis.tree import (
    SCOPE_TYPES,
    captures,
    dotted_name,
    iter_children,
    mentions_name,
    suite_statements,
    terminal_name,
    walk,
)
from sessionlint.knowledge import (
    BORROWING_CLASSES,
    CLOSING_METHODS,
    CLOSING_WRAPPERS,
    INSPECTING_CALLEES,
    RETURNS_SELF,
    STORING_CALLEES,
    ArgumentEffect,
    EscapeReason,
    is_storing_setter,
)


@dataclass(frozen=True)
class Closer:
    """A module-level function that closes some of its parameters on every path: in a
    `finally:` of its body (`param.close()` / `await param.close()`) or by `with param:` /
    `with closing(param):` around its body."""

    positions: FrozenSet[int]
    keywords: FrozenSet[str]


def find_closers(module: cst.CSTNode, known: Optional[Mapping[str, Closer]] = None) -> Dict[str, Closer]:
    """The module's functions that close some of their parameters on every path. `known`:
    closers imported from other modules, which a `with known(param):` counts as closing."""
    found: Dict[str, Closer] = {}
    for statement in getattr(module, "body", ()):
        if not isinstance(statement, cst.FunctionDef):
            continue
        params = list(statement.params.posonly_params) + list(statement.params.params)
        names = [p.name.value for p in params] + [p.name.value for p in statement.params.kwonly_params]
        closed = _closed_parameters(statement, set(names), known or {})
        if closed:
            found[statement.name.value] = Closer(
                frozenset(i for i, p in enumerate(params) if p.name.value in closed), frozenset(closed)
            )
    return found


def _closed_parameters(function: cst.FunctionDef, params: Set[str], known: Mapping[str, Closer]) -> Set[str]:
    closed: Set[str] = set()
    pending = list(suite_statements(function.body))
    while pending:
        statement = pending.pop()
        if isinstance(statement, cst.With):
            # a `try` in a `with` block runs as one of the body's (callables.closing_functions)
            pending.extend(suite_statements(statement.body))
            for item in statement.items:
                value = item.item
                if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in known:
                    closer = known[value.func.value]
                    for position, arg in enumerate(value.args):
                        if isinstance(arg.value, cst.Name) and arg.value.value in params:
                            keyword = arg.keyword.value if arg.keyword is not None else None
                            if (keyword in closer.keywords) if keyword else (position in closer.positions):
                                closed.add(arg.value.value)
        if isinstance(statement, cst.Try) and statement.finalbody is not None:
            for node in walk(statement.finalbody, enter_scopes=False):
                if (
                    isinstance(node, cst.Call)
                    and isinstance(node.func, cst.Attribute)
                    and node.func.attr.value == "close"
                    and isinstance(node.func.value, cst.Name)
                    and node.func.value.value in params
                ):
                    closed.add(node.func.value.value)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                closed.update(n for n in params if _with_item_closes(item, {n}))
    return closed


class CalleeOracle:
    """What a call does to a session or connection passed to it: the one place that decides.
    It asks what is known of the callee: the functions of the linted module that close a
    parameter on every path (`closers`), then the tables of known APIs (knowledge); anything
    else borrows what it is given."""

    def __init__(
        self,
        closers: Optional[Dict[str, "Closer"]] = None,
        holder_closes: Optional[Callable[[cst.BaseExpression], Optional[bool]]] = None,
        kept_calls: AbstractSet[int] = frozenset(),
    ) -> None:
        self.closers = closers or {}
        # project classes: whether their objects may close a session given to them
        self.holder_closes = holder_closes
        # calls whose result outlives the function (returned, stored, handed on)
        self.kept_calls = kept_calls

    def argument_effect(self, call: cst.Call, position: int, arg: cst.Arg) -> ArgumentEffect:
        func = call.func
        callee = terminal_name(func) or ""
        closer = self.closers.get(func.value) if type(func) is cst.Name else None
        if closer is not None:
            # A function of this module that closes the parameter in a `finally`: the call
            # hands the session over for good. Fixture: SL001/closed_by_module_helper.py
            keyword = arg.keyword.value if arg.keyword is not None else None
            closes = keyword in closer.keywords if keyword else position in closer.positions
            return ArgumentEffect.CLOSES if closes else ArgumentEffect.BORROWS
        if callee in CLOSING_WRAPPERS:
            return ArgumentEffect.CLOSES
        if callee in BORROWING_CLASSES:
            return ArgumentEffect.BORROWS
        if callee.lstrip("_")[:1].isupper() and self.holder_closes is not None and id(call) not in self.kept_calls:
            # A project class that never closes what it holds (a repository, a service),
            # built and dropped here: it borrows the session. Fixture:
            # tests/fixtures/projects/repository_borrows
            if self.holder_closes(func) is False:
                return ArgumentEffect.BORROWS
        named_string = any(isinstance(a.value, cst.SimpleString) for a in call.args)
        if callee in STORING_CALLEES or callee.lstrip("_")[:1].isupper() or is_storing_setter(callee, named_string):
            if callee == "update" and arg.keyword is None and type(arg.value) is cst.Name:
                # `dict.update()` stores keyword values and mapping items; a session given as
                # its positional argument is no mapping: `user.update(session, role=role)`
                # is a model's update method borrowing the session. Fixture:
                # SL001/borrowed_by_function_call.py
                return ArgumentEffect.BORROWS
            return ArgumentEffect.TAKES_OWNERSHIP
        if callee in INSPECTING_CALLEES:
            return ArgumentEffect.INSPECTS
        return ArgumentEffect.BORROWS


# How the scanner reads an argument, by what the call does to it.
_CONTEXT_OF_EFFECT = {
    ArgumentEffect.CLOSES: "closer",
    ArgumentEffect.REGISTERS_CLOSE: "closer",
    ArgumentEffect.TAKES_OWNERSHIP: "owner",
    ArgumentEffect.BORROWS: "borrow",
    ArgumentEffect.INSPECTS: "check",
    ArgumentEffect.UNKNOWN: "borrow",
}


class EventScanner:
    """Finds, per statement, what happens to the tracked names, in evaluation order, and
    which statements may raise."""

    def __init__(
        self,
        names: Set[str],
        creation_index: Dict[int, int],
        yield_raises: bool = True,
        oracle: Optional["CalleeOracle"] = None,
        registries: Optional[Dict[str, Set[str]]] = None,
        holders: AbstractSet[str] = frozenset(),
    ) -> None:
        self.names = names
        self.oracle = oracle or CalleeOracle()
        # local objects that die with the function (`local_holders`): a session stored on
        # one (`adapter.session = sess`) is lent to it, not handed over
        self.holders = holders
        # registry name -> the tracked names it made: `registry.remove()` closes them
        self.registries = registries or {}
        self.session_names: Set[str] = set(names)  # the tracked names that hold sessions
        self.creation_index = creation_index
        self.yield_raises = yield_raises
        self.with_closed: List[Tuple[str, cst.CSTNode]] = []
        # `id()` of the creating calls of context managers that close only on error
        # (Origin.OPEN_CONTEXT): `with` binds their session without managing it
        self.opened: FrozenSet[int] = frozenset()
        self.raising: Set[int] = set()

    def scan_scope(self, statements: Sequence[cst.CSTNode], out: Dict[int, List[Event]]) -> List[Event]:
        """Scan every statement of a scope (nested scopes excluded); fill `out` keyed by the
        id of each small statement / header expression; return all events."""
        everything: List[Event] = []
        stack: List[Tuple[cst.CSTNode, bool]] = [(statement, False) for statement in reversed(statements)]
        while stack:
            node, in_transaction = stack.pop()
            if isinstance(node, SCOPE_TYPES):
                for name in self.names:
                    if captures(node, name):
                        everything.append(Event(EventKind.ESCAPE, name, node, reason=EscapeReason.CAPTURED))
                continue
            roots, nested = _split_statement(node)
            for root in roots:
                found = self.scan_root(root)
                out[id(root)] = found
                everything.extend(found)
                # (inside `with session.begin():` an exception rolls the transaction back on
                # the way out: no connection is left behind. Corpus review: oslo.db's tests.)
                if not in_transaction and self._may_raise(root):
                    self.raising.add(id(root))
            if isinstance(node, cst.With):
                for item in node.items:
                    closed = _with_item_closes(item, self.names)
                    if closed:
                        self.with_closed.append((closed, node))
            inner = in_transaction or (
                isinstance(node, cst.With) and any(isinstance(i.item, cst.Call) and _lazy_begin(i.item, self.session_names) for i in node.items)
            )
            stack.extend((child, inner) for child in reversed(nested))
        return everything

    def _may_raise(self, root: cst.CSTNode) -> bool:
        """Calls, awaits, subscripts, asserts, imports may raise; so may a `yield` where the
        consumer can throw into the generator (not a pytest fixture). Assignments of names
        and constants cannot."""
        if isinstance(root, cst.With):
            # `with db:` / `with closing(db):` only arranges the close: nothing to raise.
            return any(self._may_raise(item.item) for item in root.items if not _with_item_closes(item, self.names))
        if isinstance(root, (cst.Assert, cst.Import, cst.ImportFrom)):
            return True
        for node in walk(root, enter_scopes=False):
            if isinstance(node, cst.Call) and _lazy_begin(node, self.session_names):
                continue
            if isinstance(node, cst.Call) and _cannot_raise(node):
                continue
            if isinstance(node, (cst.Call, cst.Await, cst.Subscript)):
                return True
            if isinstance(node, cst.Yield) and self.yield_raises:
                return True
        return False

    # -- one root ------------------------------------------------------------------------
    def scan_root(self, root: cst.CSTNode) -> List[Event]:
        out: List[Event] = []
        if isinstance(root, cst.Assign):
            lent = self.holders and all(
                isinstance(t.target, cst.Attribute) and isinstance(t.target.value, cst.Name) and t.target.value.value in self.holders
                for t in root.targets
            )
            self._expr(root.value, "borrow" if lent else "value", out)
            for target in root.targets:
                self._target(target.target, root.value, root, out)
        elif isinstance(root, cst.AnnAssign):
            if root.value is not None:
                self._expr(root.value, "value", out)
                self._target(root.target, root.value, root, out)
        elif isinstance(root, cst.AugAssign):
            self._expr(root.value, "value", out)
            self._expr(root.target, "use", out)
            if isinstance(root.target, cst.Name) and root.target.value in self.names:
                out.append(Event(EventKind.ESCAPE, root.target.value, root, reason=EscapeReason.AUGMENTED))
        elif isinstance(root, cst.Return):
            if root.value is not None:
                self._expr(root.value, "return", out)
        elif isinstance(root, cst.Expr):
            self._expr(root.value, "use", out)
        elif isinstance(root, cst.Del):
            self._expr(root.target, "escape", out)
        elif isinstance(root, (cst.Global, cst.Nonlocal)):
            for item in root.names:
                if item.name.value in self.names:
                    out.append(Event(EventKind.ESCAPE, item.name.value, root, reason=EscapeReason.GLOBAL))
        elif isinstance(root, cst.With):
            self._with_header(root, out)
        elif isinstance(root, cst.BaseExpression):
            self._expr(root, "check", out)
        else:
            for child in iter_children(root):
                self._expr(child, "use", out)
        return out

    def _with_header(self, node: cst.With, out: List[Event]) -> None:
        for item in node.items:
            closed = _with_item_closes(item, self.names)
            if closed:
                continue  # `with db:` / `with closing(db):` is handled by the finalizer
            self._expr(item.item, "use", out)
            if item.asname is not None:
                target = item.asname.name
                if isinstance(target, cst.Name) and target.value in self.names:
                    creation = self.creation_index.get(id(_creating_call(item.item)), -1)
                    if creation >= 0 and id(_creating_call(item.item)) in self.opened:
                        out.append(Event(EventKind.CREATE, target.value, item, creation))
                    elif creation >= 0:
                        out.append(Event(EventKind.MANAGE, target.value, item, creation))
                    else:
                        out.append(Event(EventKind.REBIND, target.value, item))

    def _target(self, target: cst.BaseExpression, value: cst.BaseExpression, statement: cst.CSTNode, out: List[Event]) -> None:
        if isinstance(target, cst.Name):
            name = target.value
            if name not in self.names:
                return
            creation = self.creation_index.get(id(_creating_call(value)), -1)
            if creation >= 0:
                out.append(Event(EventKind.CREATE, name, statement, creation))
            elif _same_object(value, name):
                # `conn = await conn.execution_options(...)`: the same connection, still open.
                # Fixture: SL010/execution_options_chain.py
                out.append(Event(EventKind.USE, name, statement, detail="execution_options"))
            elif mentions_name(value, name):
                out.append(Event(EventKind.RELEASE, name, statement))
            else:
                out.append(Event(EventKind.REBIND, name, statement))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                if isinstance(element.value, cst.Name) and element.value.value in self.names:
                    out.append(Event(EventKind.ESCAPE, element.value.value, statement, reason=EscapeReason.UNPACKED))
        else:
            self._expr(target, "use", out)

    def _expr(self, node: cst.CSTNode, context: str, out: List[Event]) -> None:
        """Events of one expression. `context` says how the value of `node` is consumed:
        use, check (a test or comparison), return, value (assigned), container, escape,
        borrow (argument of a function), owner (argument of a constructor or a storing
        call), closer."""
        if isinstance(node, cst.Name):
            name = node.value
            if name in self.names:
                out.append(self._classify(name, context, node))
            return
        if isinstance(node, cst.Attribute):
            base = node.value
            if type(base) is cst.Name and base.value in self.names:
                if node.attr.value in ("close", "rollback") and context in ("borrow", "owner", "closer"):
                    # db.close handed to stack.callback/atexit.register/...: a close registered
                    # (`self.addCleanup(session.rollback)` ends its transaction: the connection
                    # goes back; corpus review, oslo.db tests)
                    out.append(Event(EventKind.REGISTER, base.value, node))
                else:
                    out.append(Event(EventKind.USE, base.value, node, detail=node.attr.value))
                return
            self._expr(base, "use", out)
            return
        if isinstance(node, cst.Call):
            self._call(node, out)
            return
        if isinstance(node, cst.Await):
            self._expr(node.expression, context, out)
            return
        if isinstance(node, cst.Lambda):
            for name in self.names:
                if mentions_name(node, name):
                    out.append(Event(EventKind.ESCAPE, name, node, reason=EscapeReason.LAMBDA))
            return
        if isinstance(node, cst.NamedExpr):
            self._expr(node.value, "value", out)
            self._target(node.target, node.value, node, out)
            return
        if isinstance(node, cst.Yield):
            value = node.value
            if isinstance(value, cst.From):
                self._expr(value.item, "escape", out)
            elif value is not None:
                self._expr(value, "borrow", out)  # the generator lends it and gets it back
            return
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            inner = "return" if context == "return" else "container"
            for element in node.elements:
                self._expr(element.value, inner, out)
            return
        if isinstance(node, cst.Dict):
            for item in node.elements:
                for child in iter_children(item):
                    self._expr(child, "container", out)
            return
        if isinstance(node, cst.StarredElement):
            self._expr(node.value, "escape", out)
            return
        if isinstance(node, cst.IfExp):
            self._expr(node.test, "check", out)
            self._expr(node.body, context, out)
            self._expr(node.orelse, context, out)
            return
        if isinstance(node, cst.BooleanOperation):
            inner = context if context == "return" else "check"
            self._expr(node.left, inner, out)
            self._expr(node.right, inner, out)
            return
        if isinstance(node, (cst.Comparison, cst.UnaryOperation, cst.FormattedString, cst.FormattedStringExpression)):
            for child in iter_children(node):
                self._expr(child, "check", out)
            return
        for child in iter_children(node):
            self._expr(child, "use", out)

    def _call(self, node: cst.Call, out: List[Event]) -> None:
        func = node.func
        if type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value in self.names:
            for arg in node.args:
                self._expr(arg.value, "borrow", out)
            if func.attr.value in CLOSING_METHODS:
                out.append(Event(EventKind.CLOSE, func.value.value, node))
            elif func.attr.value == "detach":
                # `conn.detach()`: the DBAPI connection leaves the pool for good, the
                # caller's to close (corpus review: sqlbag's autocommit connection).
                # Fixture: SL010/detached_connection.py
                out.append(Event(EventKind.RELEASE, func.value.value, node))
            else:
                out.append(Event(EventKind.USE, func.value.value, node, detail=func.attr.value))
            return
        if type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value in self.registries:
            if func.attr.value in ("remove", "close"):
                for name in sorted(self.registries[func.value.value]):
                    out.append(Event(EventKind.CLOSE, name, node))
                return
        if type(func) is cst.Attribute and func.attr.value == "remove" and "self.*" in self.registries:
            if (dotted_name(func.value) or "").startswith("self."):
                for name in sorted(self.registries["self.*"]):
                    out.append(Event(EventKind.CLOSE, name, node))
                return
        self._expr(func, "use", out)
        for position, arg in enumerate(node.args):
            if arg.star:
                self._expr(arg.value, "escape", out)
            else:
                effect = self.oracle.argument_effect(node, position, arg)
                self._expr(arg.value, _CONTEXT_OF_EFFECT[effect], out)

    def _classify(self, name: str, context: str, node: cst.CSTNode) -> Event:
        if context == "use":
            return Event(EventKind.USE, name, node, detail="value")
        if context == "check":
            return Event(EventKind.USE, name, node, detail="check")
        if context == "borrow":
            return Event(EventKind.USE, name, node, detail="argument")
        if context == "closer":
            return Event(EventKind.REGISTER, name, node)
        reason = {
            "return": EscapeReason.RETURNED,
            "value": EscapeReason.ASSIGNED,
            "container": EscapeReason.CONTAINER,
            "owner": EscapeReason.OWNER,
        }.get(context, EscapeReason.PASSED)
        return Event(EventKind.ESCAPE, name, node, reason=reason)


def _lazy_begin(call: cst.Call, names: Set[str]) -> bool:
    """`session.begin()` on a tracked session, as a statement of its own: it only marks a
    transaction; the connection is checked out by the first statement that runs SQL."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value in ("begin", "begin_nested")
        and isinstance(func.value, cst.Name)
        and func.value.value in names
        and not call.args
    )


def _same_object(value: cst.BaseExpression, name: str) -> bool:
    """`name.execution_options(...)`, awaited or not: evaluates to the object `name` holds."""
    if isinstance(value, cst.Await):
        value = value.expression
    chained = False
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in RETURNS_SELF:
        value = value.func.value
        chained = True
    return chained and isinstance(value, cst.Name) and value.value == name


def _creating_call(value: cst.BaseExpression) -> cst.BaseExpression:
    """The call that created what `value` evaluates to: through `await` and through methods
    that return their object (`engine.connect().execution_options(...)`)."""
    if isinstance(value, cst.Await):
        value = value.expression
    while (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in RETURNS_SELF
        and isinstance(value.func.value, cst.Call)
    ):
        value = value.func.value
    return value


def _cannot_raise(call: cst.Call) -> bool:
    """`id(x)`, `callable(x)`, `type(x)`: builtins that return for any one argument
    (fresh-project review: Empire's test keeps `id(db)` before the `try` that closes db)."""
    return (
        isinstance(call.func, cst.Name)
        and call.func.value in ("id", "callable", "type")
        and len(call.args) == 1
        and call.args[0].keyword is None
        and not call.args[0].star
        and isinstance(call.args[0].value, (cst.Name, cst.Attribute))
    )


def _with_item_closes(item: cst.WithItem, names: Set[str]) -> Optional[str]:
    """The tracked name a `with` item closes on exit: `with db:` or `with closing(db):`."""
    value = item.item
    if isinstance(value, cst.Name) and value.value in names:
        return value.value
    if (
        isinstance(value, cst.Call)
        and terminal_name(value.func) in ("closing", "aclosing")
        and value.args
        and isinstance(value.args[0].value, cst.Name)
        and value.args[0].value.value in names
    ):
        return value.args[0].value.value
    return None


def _split_statement(node: cst.CSTNode) -> Tuple[List[cst.CSTNode], List[cst.CSTNode]]:
    """The roots a statement contributes (small statements, header expressions) and the
    statements nested in it."""
    if isinstance(node, cst.SimpleStatementLine):
        return list(node.body), []
    if isinstance(node, cst.If):
        nested = list(_suite(node.body))
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            nested.append(orelse)
        elif orelse is not None:
            nested.extend(_suite(orelse.body))
        return [node.test], nested
    if isinstance(node, cst.For):
        nested = list(_suite(node.body)) + (list(_suite(node.orelse.body)) if node.orelse else [])
        return [node.target, node.iter], nested
    if isinstance(node, cst.While):
        nested = list(_suite(node.body)) + (list(_suite(node.orelse.body)) if node.orelse else [])
        return [node.test], nested
    if isinstance(node, cst.With):
        return [node], list(_suite(node.body))
    if isinstance(node, (cst.Try, cst.TryStar)):
        nested = list(_suite(node.body))
        for handler in node.handlers:
            nested.extend(_suite(handler.body))
        if node.orelse is not None:
            nested.extend(_suite(node.orelse.body))
        if node.finalbody is not None:
            nested.extend(_suite(node.finalbody.body))
        return [], nested
    if isinstance(node, cst.Match):
        nested = []
        roots: List[cst.CSTNode] = [node.subject]
        for case in node.cases:
            if case.guard is not None:
                roots.append(case.guard)
            nested.extend(_suite(case.body))
        return roots, nested
    if isinstance(node, cst.BaseSmallStatement):
        return [node], []
    return [], []


def _suite(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    if isinstance(suite, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return suite.body
    return ()
