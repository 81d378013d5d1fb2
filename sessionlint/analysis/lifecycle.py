"""One model of each session's life in one function: created where and how, closed where, on
which paths it leaves the function still open, and whether ownership left the function.

Every lifecycle rule reads these facts; none walks a function body on its own.

The model is built in two steps:
1. During the engine's single traversal, `LifecycleCollector` sees every call, keeps the ones
   whose callee resolves to a session factory, and records how each created session is held
   (bound to a name, a `with` item, returned, yielded, chained, passed on).
2. When the traversal leaves a function (or the module) that created a session bound to a
   name, the function's statements are scanned once for the events that concern those names
   (close, close registered, use, rebind, escape) and the flow interpreter runs per name.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple, Union

import libcst as cst

from sessionlint.analysis.factories import Factory, FactoryKind, Resolver
from sessionlint.analysis.flow import Exit, ExitKind, Finalizer, Interpreter, State, Token, Transfer
from sessionlint.analysis.frameworks import FunctionInfo, describe_function
from sessionlint.analysis.tree import SCOPE_TYPES, iter_children, mentions_name, terminal_name

ScopeNode = Union[cst.FunctionDef, cst.Module]


class Holding(Enum):
    """How the code holds a session right where it is created."""

    BOUND = "bound to a name"  # db = SessionLocal()
    MANAGED = "managed"  # with SessionLocal() as db / closing(...) / enter_context(...)
    RETURNED = "returned"  # return SessionLocal()
    YIELDED = "yielded"  # yield SessionLocal()
    CHAINED = "used once"  # SessionLocal().query(...)
    PASSED = "passed on"  # Repository(SessionLocal()), self.s = SessionLocal(), [...]


@dataclass(frozen=True)
class Creation:
    call: cst.Call
    factory: Factory
    holding: Holding
    name: Optional[str] = None  # for BOUND
    # Bound to a connection someone else owns (Alembic's `op.get_bind()`): see
    # `is_bound_to_borrowed_connection`.
    borrows_connection: bool = False


# Names under which code passes a Connection it was handed (Alembic migrations:
# `bind = op.get_bind()`; test fixtures: `connection`).
_BORROWED_CONNECTION_NAMES = frozenset({"bind", "conn", "connection", "get_bind"})


def is_bound_to_borrowed_connection(call: cst.Call) -> bool:
    """Idiom: `Session(bind=op.get_bind())` in an Alembic migration, `Session(bind=connection)`
    in a fixture. A Session bound to an existing Connection checks nothing out of the pool; the
    connection's owner (Alembic, the fixture) closes it, so leaving the Session unclosed leaks
    no connection. Fixture: tests/fixtures/SL001/session_on_borrowed_connection.py."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value != "bind":
            continue
        value = arg.value
        if isinstance(value, cst.Call):
            value = value.func
        if terminal_name(value) in _BORROWED_CONNECTION_NAMES:
            return True
        if arg.keyword is None:
            return False  # only the first positional argument is the bind
    return False


# Callees that take over closing what they are given (first argument).
CLOSING_WRAPPERS = frozenset({"closing", "aclosing", "enter_context", "enter_async_context", "push", "push_async_exit"})
# Callees that store or hand over what they are given: ownership leaves the function.
STORING_CALLEES = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "insert",
        "add",
        "put",
        "put_nowait",
        "setdefault",
        "update",
        "submit",
        "add_task",
        "create_task",
        "ensure_future",
        "run_in_executor",
        "run_coroutine_threadsafe",
        "apply_async",
        "delay",
        "start_soon",
        "spawn",
        "partial",
        "setattr",
        "set",
        "send",
        "register",
        "callback",
        "finalize",
        "addfinalizer",
        "addCleanup",
    }
)

# Token statuses (the second element is the creation index, -1 when irrelevant).
UNBOUND = 0
OPEN = 1
CLOSED = 2
MANAGED = 3

_UNBOUND_STATE: State = frozenset({(UNBOUND, -1)})


class EventKind(Enum):
    CREATE = "create"
    CLOSE = "close"  # db.close() / await db.close()
    REGISTER = "register"  # a close is guaranteed from here on (enter_context, callback(db.close))
    USE = "use"
    REBIND = "rebind"  # the name gets another value while the session may be open
    RELEASE = "release"  # the name gets a value derived from the session (ownership moves)
    MANAGE = "manage"  # with Factory() as db
    ESCAPE = "escape"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    name: str
    node: cst.CSTNode
    creation: int = -1
    reason: str = ""


@dataclass(frozen=True)
class Leak:
    """A point where the function is left, or the name rebound, with the session open."""

    kind: str  # "return", "raise", "end", "rebind"
    node: cst.CSTNode
    on_every_path: bool


@dataclass(frozen=True)
class SessionLife:
    creation: Creation
    function: FunctionInfo
    closes: Tuple[cst.CSTNode, ...]
    escape: Optional[str]  # why ownership is not this function's (None: it is)
    returned: bool
    leaks: Tuple[Leak, ...]


@dataclass
class ScopeFacts:
    """Everything the lifecycle analysis knows about one function or module body."""

    node: ScopeNode
    creations: List[Creation] = field(default_factory=list)
    lives: List[SessionLife] = field(default_factory=list)
    gave_up: bool = False  # the body was beyond the analysis (recursion): stay silent


# --- step 1: during the traversal ---------------------------------------------------------


class LifecycleCollector:
    """Analysis side of the single traversal: creation sites per scope, lives on leave."""

    def __init__(self, resolver: Resolver, depends_targets: FrozenSet[str]) -> None:
        self.resolver = resolver
        self.depends_targets = depends_targets
        self.scopes: List[ScopeFacts] = []
        self.finished: Dict[int, ScopeFacts] = {}

    def facts_for(self, node: ScopeNode) -> Optional[ScopeFacts]:
        return self.finished.get(id(node))

    def enter_scope(self, node: cst.CSTNode) -> None:
        if isinstance(node, (cst.FunctionDef, cst.Module)):
            self.scopes.append(ScopeFacts(node))
        else:
            # Class bodies and lambdas hold no lives of their own here; a placeholder keeps
            # their calls out of the enclosing function.
            self.scopes.append(ScopeFacts(node))  # type: ignore[arg-type]

    def leave_scope(self, node: cst.CSTNode) -> None:
        facts = self.scopes.pop()
        if isinstance(node, (cst.FunctionDef, cst.Module)) and facts.creations:
            info = describe_function(node, self.depends_targets)
            try:
                facts.lives = build_lives(facts, info)
            except RecursionError:
                facts.gave_up = True
                facts.lives = []
        self.finished[id(node)] = facts

    def on_call(self, node: cst.Call, ancestors: Sequence[cst.CSTNode]) -> None:
        if not self.scopes or not self.resolver.may_be_factory(node.func):
            return
        factory = self.resolver.factory_of(node.func)
        if factory is None or factory.kind is not FactoryKind.SESSION:
            return
        holding, name = classify_holding(node, ancestors)
        borrowed = is_bound_to_borrowed_connection(node)
        self.scopes[-1].creations.append(Creation(node, factory, holding, name, borrowed))


def classify_holding(call: cst.Call, ancestors: Sequence[cst.CSTNode]) -> Tuple[Holding, Optional[str]]:
    """How the session created by `call` is held, from its parent nodes."""
    child: cst.CSTNode = call
    index = len(ancestors) - 1
    parent = ancestors[index] if index >= 0 else None
    while isinstance(parent, cst.Await) and index > 0:  # `await make_session()`
        child, index = parent, index - 1
        parent = ancestors[index]
    grandparent = ancestors[index - 1] if index >= 1 else None
    if isinstance(parent, cst.Assign) and parent.value is child:
        targets = parent.targets
        if len(targets) == 1 and isinstance(targets[0].target, cst.Name):
            return Holding.BOUND, targets[0].target.value
        return Holding.PASSED, None
    if isinstance(parent, (cst.AnnAssign, cst.NamedExpr)) and parent.value is child:
        if isinstance(parent.target, cst.Name):
            return Holding.BOUND, parent.target.value
        return Holding.PASSED, None
    if isinstance(parent, cst.WithItem):
        return Holding.MANAGED, None
    if isinstance(parent, cst.Return):
        return Holding.RETURNED, None
    if isinstance(parent, cst.Yield):
        return Holding.YIELDED, None
    if isinstance(parent, cst.Attribute) and isinstance(grandparent, cst.Call) and grandparent.func is parent:
        if parent.attr.value in ("begin", "__enter__", "__aenter__"):
            return Holding.MANAGED, None
        return Holding.CHAINED, None
    if isinstance(parent, cst.Arg) and isinstance(grandparent, cst.Call):
        if terminal_name(grandparent.func) in CLOSING_WRAPPERS:
            return Holding.MANAGED, None
    return Holding.PASSED, None


# --- step 2: per function ----------------------------------------------------------------


def build_lives(facts: ScopeFacts, info: FunctionInfo) -> List[SessionLife]:
    bound = [c for c in facts.creations if c.holding is Holding.BOUND]
    names = {c.name for c in bound if c.name}
    index_of = {id(c.call): i for i, c in enumerate(facts.creations)}
    events: Dict[int, List[Event]] = {}
    scanner = EventScanner(names, index_of)
    body_roots = _scope_body(facts.node)
    all_events = scanner.scan_scope(body_roots, events)

    escapes: Dict[str, str] = {}
    returned: Set[str] = set()
    closes: Dict[str, List[cst.CSTNode]] = {n: [] for n in names}
    for event in all_events:
        if event.kind is EventKind.ESCAPE:
            if event.reason == "returned":
                returned.add(event.name)
            escapes.setdefault(event.name, event.reason)
        elif event.kind in (EventKind.CLOSE, EventKind.REGISTER):
            closes[event.name].append(event.node)
    for name in scanner.with_closed:
        closes.setdefault(name, []).append(facts.node)

    lives: List[SessionLife] = []
    leaks_by_name: Dict[str, Dict[int, List[Leak]]] = {}
    for name in sorted(names):
        if name in escapes:
            continue
        transfer = SessionTransfer(name, events)
        interpreter = Interpreter(transfer)
        if isinstance(facts.node, cst.Module):
            exits = interpreter.run_module(facts.node, _UNBOUND_STATE)
        else:
            exits = interpreter.run_function(facts.node.body, facts.node, _UNBOUND_STATE)
        leaks_by_name[name] = _leaks_per_creation(exits, transfer.rebinds)

    for i, creation in enumerate(facts.creations):
        name = creation.name
        if creation.holding is not Holding.BOUND or name is None:
            lives.append(SessionLife(creation, info, (), None, creation.holding is Holding.RETURNED, ()))
            continue
        escape = escapes.get(name)
        leaks = tuple(leaks_by_name.get(name, {}).get(i, ()))
        lives.append(
            SessionLife(creation, info, tuple(closes.get(name, ())), escape, name in returned, leaks)
        )
    return lives


def _scope_body(node: ScopeNode) -> Sequence[cst.CSTNode]:
    if isinstance(node, cst.Module):
        return node.body
    body = node.body
    return body.body if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)) else ()


def _leaks_per_creation(exits: List[Exit], rebinds: List[Tuple[cst.CSTNode, State]]) -> Dict[int, List[Leak]]:
    found: Dict[int, List[Leak]] = {}
    kinds = {ExitKind.RETURN: "return", ExitKind.RAISE: "raise", ExitKind.END: "end"}
    for e in exits:
        kind = kinds.get(e.kind)
        if kind is None:
            continue
        for status, creation in e.state:
            if status == OPEN:
                every = all(s == OPEN for s, _ in e.state)
                found.setdefault(creation, []).append(Leak(kind, e.node, every))
    for node, state in rebinds:
        for status, creation in state:
            if status == OPEN:
                every = all(s == OPEN for s, _ in state)
                found.setdefault(creation, []).append(Leak("rebind", node, every))
    return found


class EventScanner:
    """Finds, per statement, what happens to the tracked names, in evaluation order."""

    def __init__(self, names: Set[str], creation_index: Dict[int, int]) -> None:
        self.names = names
        self.creation_index = creation_index
        self.with_closed: Set[str] = set()

    def scan_scope(self, statements: Sequence[cst.CSTNode], out: Dict[int, List[Event]]) -> List[Event]:
        """Scan every statement of a scope (nested scopes excluded); fill `out` keyed by the
        id of each small statement / header expression; return all events."""
        everything: List[Event] = []
        stack: List[cst.CSTNode] = list(reversed(statements))
        while stack:
            node = stack.pop()
            if isinstance(node, SCOPE_TYPES):
                for name in self.names:
                    if _captures(node, name):
                        everything.append(Event(EventKind.ESCAPE, name, node, reason="captured by a nested scope"))
                continue
            roots, nested = _split_statement(node)
            for root in roots:
                found = self.scan_root(root)
                out[id(root)] = found
                everything.extend(found)
            if isinstance(node, cst.With):
                for item in node.items:
                    if _with_item_closes(item, self.names):
                        self.with_closed.add(_with_item_closes(item, self.names) or "")
            stack.extend(reversed(nested))
        return everything

    # -- one root ------------------------------------------------------------------------
    def scan_root(self, root: cst.CSTNode) -> List[Event]:
        out: List[Event] = []
        t = type(root)
        if t is cst.Assign:
            self._expr(root.value, "value", out)
            for target in root.targets:
                self._target(target.target, root.value, root, out)
        elif t is cst.AnnAssign:
            if root.value is not None:
                self._expr(root.value, "value", out)
                self._target(root.target, root.value, root, out)
        elif t is cst.AugAssign:
            self._expr(root.value, "value", out)
            self._expr(root.target, "use", out)
            if isinstance(root.target, cst.Name) and root.target.value in self.names:
                out.append(Event(EventKind.ESCAPE, root.target.value, root, reason="augmented"))
        elif t is cst.Return:
            if root.value is not None:
                self._expr(root.value, "return", out)
        elif t is cst.Expr:
            self._expr(root.value, "use", out)
        elif t is cst.Del:
            self._expr(root.target, "escape", out)
        elif t in (cst.Global, cst.Nonlocal):
            for item in root.names:
                if item.name.value in self.names:
                    out.append(Event(EventKind.ESCAPE, item.name.value, root, reason="global"))
        elif t is cst.With:
            self._with_header(root, out)
        elif isinstance(root, cst.BaseExpression):
            self._expr(root, "use", out)
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
                    managed = id(item.item) in self.creation_index
                    kind = EventKind.MANAGE if managed else EventKind.REBIND
                    out.append(Event(kind, target.value, item))

    def _target(self, target: cst.BaseExpression, value: cst.BaseExpression, statement: cst.CSTNode, out: List[Event]) -> None:
        if isinstance(target, cst.Name):
            name = target.value
            if name not in self.names:
                return
            inner = value.expression if isinstance(value, cst.Await) else value
            creation = self.creation_index.get(id(inner), -1)
            if creation >= 0:
                out.append(Event(EventKind.CREATE, name, statement, creation))
            elif mentions_name(value, name):
                out.append(Event(EventKind.RELEASE, name, statement))
            else:
                out.append(Event(EventKind.REBIND, name, statement))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                if isinstance(element.value, cst.Name) and element.value.value in self.names:
                    out.append(Event(EventKind.ESCAPE, element.value.value, statement, reason="unpacked"))
        else:
            self._expr(target, "use", out)

    def _expr(self, node: cst.CSTNode, context: str, out: List[Event]) -> None:
        """Events of one expression. `context` says how the value of `node` is consumed:
        use, return, value (assigned), container, escape, borrow (argument of a function),
        owner (argument of a constructor or a storing call), closer."""
        t = type(node)
        if t is cst.Name:
            name = node.value
            if name in self.names:
                out.append(self._classify(name, context, node))
            return
        if t is cst.Attribute:
            base = node.value
            if type(base) is cst.Name and base.value in self.names:
                if node.attr.value == "close" and context in ("borrow", "owner", "closer"):
                    # db.close handed to stack.callback/atexit.register/...: a close registered
                    out.append(Event(EventKind.REGISTER, base.value, node))
                else:
                    out.append(Event(EventKind.USE, base.value, node))
                return
            self._expr(base, "use", out)
            return
        if t is cst.Call:
            self._call(node, out)
            return
        if t is cst.Await:
            self._expr(node.expression, context, out)
            return
        if t in (cst.Lambda,):
            for name in self.names:
                if mentions_name(node, name):
                    out.append(Event(EventKind.ESCAPE, name, node, reason="captured by a lambda"))
            return
        if t is cst.NamedExpr:
            self._expr(node.value, "value", out)
            self._target(node.target, node.value, node, out)
            return
        if t is cst.Yield:
            value = node.value
            if isinstance(value, cst.From):
                self._expr(value.item, "escape", out)
            elif value is not None:
                self._expr(value, "use", out)  # the generator lends it and gets it back
            return
        if t in (cst.Tuple, cst.List, cst.Set):
            inner = "return" if context == "return" else "container"
            for element in node.elements:
                self._expr(element.value, inner, out)
            return
        if t is cst.Dict:
            for element in node.elements:
                for child in iter_children(element):
                    self._expr(child, "container", out)
            return
        if t in (cst.StarredElement,):
            self._expr(node.value, "escape", out)
            return
        if t is cst.IfExp:
            self._expr(node.test, "use", out)
            self._expr(node.body, context, out)
            self._expr(node.orelse, context, out)
            return
        if t is cst.BooleanOperation:
            self._expr(node.left, context if context == "return" else "use", out)
            self._expr(node.right, context if context == "return" else "use", out)
            return
        for child in iter_children(node):
            self._expr(child, "use", out)

    def _call(self, node: cst.Call, out: List[Event]) -> None:
        func = node.func
        if type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value in self.names:
            for arg in node.args:
                self._expr(arg.value, "borrow", out)
            kind = EventKind.CLOSE if func.attr.value == "close" else EventKind.USE
            out.append(Event(kind, func.value.value, node))
            return
        self._expr(func, "use", out)
        callee = terminal_name(func) or ""
        if callee in CLOSING_WRAPPERS:
            context = "closer"
        elif callee in STORING_CALLEES or callee[:1].isupper():
            context = "owner"
        else:
            context = "borrow"
        for arg in node.args:
            if arg.star:
                self._expr(arg.value, "escape", out)
            else:
                self._expr(arg.value, context, out)

    def _classify(self, name: str, context: str, node: cst.CSTNode) -> Event:
        if context in ("use", "borrow"):
            return Event(EventKind.USE, name, node)
        if context == "closer":
            return Event(EventKind.REGISTER, name, node)
        reason = {
            "return": "returned",
            "value": "assigned to another name",
            "container": "stored in a container",
            "owner": "handed to an owner",
        }.get(context, "passed on")
        return Event(EventKind.ESCAPE, name, node, reason=reason)


def _captures(scope: cst.CSTNode, name: str) -> bool:
    return mentions_name(scope, name)


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
    t = type(node)
    if t is cst.SimpleStatementLine:
        return list(node.body), []
    if t is cst.If:
        nested = list(_suite(node.body))
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            nested.append(orelse)
        elif orelse is not None:
            nested.extend(_suite(orelse.body))
        return [node.test], nested
    if t in (cst.For,):
        nested = list(_suite(node.body)) + (list(_suite(node.orelse.body)) if node.orelse else [])
        return [node.target, node.iter], nested
    if t is cst.While:
        nested = list(_suite(node.body)) + (list(_suite(node.orelse.body)) if node.orelse else [])
        return [node.test], nested
    if t is cst.With:
        return [node], list(_suite(node.body))
    if t.__name__ in ("Try", "TryStar"):
        nested = list(_suite(node.body))
        for handler in node.handlers:
            nested.extend(_suite(handler.body))
        if node.orelse is not None:
            nested.extend(_suite(node.orelse.body))
        if node.finalbody is not None:
            nested.extend(_suite(node.finalbody.body))
        return [], nested
    if t.__name__ == "Match":
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


class SessionTransfer(Transfer):
    """The state of one tracked name through a function: unbound, open (per creation),
    closed, or managed by a `with`."""

    def __init__(self, name: str, events: Dict[int, List[Event]]) -> None:
        self.name = name
        self.events = events
        self.rebinds: List[Tuple[cst.CSTNode, State]] = []

    def apply(self, root: cst.CSTNode, state: State) -> State:
        if type(root) is cst.With:
            return state
        for event in self.events.get(id(root), ()):
            if event.name != self.name:
                continue
            state = self._step(event, state)
        return state

    def _step(self, event: Event, state: State) -> State:
        kind = event.kind
        if kind is EventKind.CREATE:
            self._note_rebind(event.node, state)
            return frozenset({(OPEN, event.creation)})
        if kind in (EventKind.CLOSE, EventKind.REGISTER):
            return frozenset((CLOSED, -1) if s == OPEN else (s, c) for s, c in state)
        if kind is EventKind.REBIND:
            self._note_rebind(event.node, state)
            return _UNBOUND_STATE
        if kind is EventKind.RELEASE:
            return _UNBOUND_STATE
        if kind is EventKind.MANAGE:
            self._note_rebind(event.node, state)
            return frozenset({(MANAGED, -1)})
        return state

    def _note_rebind(self, node: cst.CSTNode, state: State) -> None:
        if any(s == OPEN for s, _ in state):
            self.rebinds.append((node, state))

    def enter_with(self, node: cst.With, state: State) -> Tuple[State, Optional[Finalizer]]:
        for event in self.events.get(id(node), ()):
            if event.name == self.name:
                state = self._step(event, state)
        closes = any(_with_item_closes(item, {self.name}) for item in node.items)
        manages = any(
            e.kind is EventKind.MANAGE and e.name == self.name for e in self.events.get(id(node), ())
        )
        if not closes and not manages:
            return state, None

        def finalize(at_exit: State) -> State:
            return frozenset((CLOSED, -1) if s in (OPEN, MANAGED) else (s, c) for s, c in at_exit)

        return state, finalize

    def refine(self, test: cst.BaseExpression, state: State, truthy: bool) -> State:
        """`if db:` / `if db is not None:` / `if db is None:` / `if not db:` narrow the state:
        a None name is unbound, a session object is truthy."""
        positive = _presence_test(test, self.name)
        if positive is None:
            return state
        present = positive if truthy else not positive
        # An empty result means this branch cannot run with the tracked name in any state it
        # may hold: the interpreter treats the branch as unreachable.
        return frozenset(t for t in state if (t[0] != UNBOUND) == present)


def _presence_test(test: cst.BaseExpression, name: str) -> Optional[bool]:
    """True if `test` is true exactly when `name` holds a session, False if exactly when it
    does not, None if it says nothing about it."""
    if isinstance(test, cst.Name) and test.value == name:
        return True
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _presence_test(test.expression, name)
        return None if inner is None else not inner
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        left = test.left
        target = test.comparisons[0]
        right = target.comparator
        if (
            isinstance(left, cst.Name)
            and left.value == name
            and isinstance(right, cst.Name)
            and right.value == "None"
        ):
            if isinstance(target.operator, (cst.IsNot, cst.NotEqual)):
                return True
            if isinstance(target.operator, (cst.Is, cst.Equal)):
                return False
    return None
