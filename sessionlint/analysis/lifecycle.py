"""The typestate of a tracked session or connection through a function: unbound, fresh
(created, not used yet), open, closed, managed by a `with`, per creation and close site, run by
the flow interpreter (`analysis.flow`). From it: the paths that leave the function with the
object open (leaks), and uses after a close.

Every lifecycle rule (SL001, SL002, SL003, SL006, SL007, SL010) reads these facts; none walks
a function body on its own.
"""

from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

import libcst as cst

from sessionlint.analysis.facts import (
    _UNBOUND_STATE,
    CLOSED,
    FRESH,
    MANAGED,
    OPEN,
    UNBOUND,
    Event,
    EventKind,
    Holding,
    Leak,
    ScopeFacts,
    SessionLife,
    UseAfterClose,
)
from sessionlint.analysis.flow import (
    Exit,
    ExitKind,
    Finalizer,
    Interpreter,
    State,
    Transfer,
)
from sessionlint.analysis.frameworks import FunctionInfo
from sessionlint.analysis.keeping import kept_calls, local_holders
from sessionlint.analysis.ownership import (
    CalleeOracle,
    Closer,
    EventScanner,
    _with_item_closes,
)
from sessionlint.analysis.tree import (
    SCOPE_TYPES,
    dotted_name,
    nested_blocks,
    suite_statements,
    walk,
)
from sessionlint.knowledge import SAFE_AFTER_CLOSE, EscapeReason, LeakKind, Origin

# The key under which sessions made by a method of the object wait for any
# `self.<registry>.remove()` (EventScanner).
SELF_REGISTRY = "self.*"


def build_lives(
    facts: ScopeFacts,
    info: FunctionInfo,
    closers: Optional[Dict[str, "Closer"]] = None,
    holder_closes: Optional[Callable[[cst.BaseExpression], Optional[bool]]] = None,
) -> None:
    """Fill `facts.lives` and `facts.uses_after_close`."""
    tracked = [c for c in facts.creations if c.holding in (Holding.BOUND, Holding.MANAGED) and c.name]
    names = {c.name for c in tracked if c.name}
    index_of = {id(c.call): i for i, c in enumerate(facts.creations)}
    events: Dict[int, List[Event]] = {}
    registries: Dict[str, Set[str]] = {}
    for creation in tracked:
        if creation.registry is not None and creation.name is not None:
            registries.setdefault(creation.registry, set()).add(creation.name)
        elif creation.name is not None and (dotted_name(creation.call.func) or "").startswith("self."):
            # `session = self.make_session(engine)` ... `self._scoped_session.remove()`: the
            # object's registry made it (keylime's session_context)
            registries.setdefault(SELF_REGISTRY, set()).add(creation.name)
    scanner = EventScanner(
        names,
        index_of,
        yield_raises=not info.is_pytest_fixture,
        oracle=CalleeOracle(closers, holder_closes, kept_calls(facts.node) if names and holder_closes else frozenset()),
        registries=registries,
        holders=local_holders(facts.node) if names and isinstance(facts.node, cst.FunctionDef) else frozenset(),
    )
    scanner.opened = frozenset(id(c.call) for c in tracked if c.factory.origin is Origin.OPEN_CONTEXT)
    # (`session.begin()` marks a transaction lazily; a Connection's may run SQL)
    scanner.session_names = {c.name for c in tracked if c.name and not c.is_connection}
    all_events = scanner.scan_scope(_scope_body(facts.node), events) if names else []

    escapes: Dict[str, EscapeReason] = {}
    returned: Set[str] = set()
    closes: Dict[str, List[cst.CSTNode]] = {n: [] for n in names}
    for event in all_events:
        if event.kind is EventKind.ESCAPE:
            if event.reason is EscapeReason.RETURNED:
                returned.add(event.name)
            if event.reason is not None:
                escapes.setdefault(event.name, event.reason)
        elif event.kind in (EventKind.CLOSE, EventKind.REGISTER):
            closes[event.name].append(event.node)
    for name, with_node in scanner.with_closed:
        closes.setdefault(name, []).append(with_node)

    leaks_by_name: Dict[str, Dict[int, List[Leak]]] = {}
    # Sessions start FRESH; connections are checked out at once, and a project function that
    # returns a session may already have used it.
    lazy = frozenset(i for i, c in enumerate(facts.creations) if not c.is_connection and c.factory.origin is not Origin.FUNCTION)
    assumptions: Optional[Dict[int, FrozenSet[Tuple[str, bool]]]] = None

    # `if self._registry is not None: self._registry.remove()`: a session the object's
    # registry made exists only when the registry does (keylime's session_context)
    self_registries = frozenset(
        receiver
        for node in walk(facts.node)
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "remove"
        for receiver in [dotted_name(node.func.value) or ""]
        if receiver.startswith("self.")
    ) if SELF_REGISTRY in registries else frozenset()

    def interpret(name: str, assume: Dict[int, FrozenSet[Tuple[str, bool]]]) -> Tuple[Dict[int, List[Leak]], List[UseAfterClose]]:
        guards = self_registries if name in registries.get(SELF_REGISTRY, ()) else frozenset()
        transfer = SessionTransfer(name, events, scanner.raising, lazy, assume, guards)
        interpreter = Interpreter(transfer)
        if isinstance(facts.node, cst.Module):
            exits = interpreter.run_module(facts.node, _UNBOUND_STATE)
        else:
            assert isinstance(facts.node, cst.FunctionDef)
            exits = interpreter.run_function(facts.node.body, facts.node, _UNBOUND_STATE)
        return _leaks_per_creation(exits, transfer.rebinds), transfer.uses_after_close()

    for name in sorted(names):
        # A name whose object escapes has no leaks of its own (ownership is unclear), but a
        # use after its close is still a use after close.
        leaks, uses = interpret(name, {})
        if leaks or uses:
            # Only then are the flags around creations worth computing (a walk of the scope):
            # they can only remove paths.
            if assumptions is None:
                assumptions = creation_assumptions(facts)
            if assumptions:
                leaks, uses = interpret(name, assumptions)
        leaks_by_name[name] = leaks
        facts.uses_after_close.extend(uses)

    for i, creation in enumerate(facts.creations):
        bound = creation.name
        if creation.holding is not Holding.BOUND or bound is None:
            facts.lives.append(SessionLife(creation, info, (), None, creation.holding is Holding.RETURNED, ()))
            continue
        own_leaks = tuple(leaks_by_name.get(bound, {}).get(i, ()))
        if creation.factory.origin is Origin.OPEN_CONTEXT:
            # the context manager closes it when the block raises: only normal exits leak
            own_leaks = tuple(leak for leak in own_leaks if not leak.via_exception and leak.kind is not LeakKind.RAISE)
        facts.lives.append(SessionLife(creation, info, tuple(closes.get(bound, ())), escapes.get(bound), bound in returned, own_leaks))


def _flag_test(test: cst.BaseExpression) -> Optional[Tuple[str, bool]]:
    """`flag`, `self.flag`, `not flag`: (the flag's dotted name, whether the test is true
    when the flag is)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _flag_test(test.expression)
        return None if inner is None else (inner[0], not inner[1])
    if isinstance(test, (cst.Name, cst.Attribute)):
        key = dotted_name(test)
        if key is not None and key not in ("True", "False", "None"):
            return key, True
    return None


def _none_test(test: cst.BaseExpression) -> Optional[Tuple[str, bool]]:
    """`x is None` (or `== None`) -> ("x", True), `self.x is not None` -> ("self.x", False)."""
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.left, (cst.Name, cst.Attribute)):
        target = test.comparisons[0]
        subject = dotted_name(test.left)
        if subject is not None and isinstance(target.comparator, cst.Name) and target.comparator.value == "None":
            if isinstance(target.operator, (cst.Is, cst.Equal)):
                return subject, True
            if isinstance(target.operator, (cst.IsNot, cst.NotEqual)):
                return subject, False
    return None


def creation_assumptions(facts: ScopeFacts) -> Dict[int, FrozenSet[Tuple[str, bool]]]:
    """For each creation (by index), the flag tests of the `if` branches around it, for
    flags the scope never assigns (names and attribute chains): those keep their value for
    the whole call."""
    body = _scope_body(facts.node)
    assigned: Set[str] = set()
    for root in body:
        for node in walk(root, enter_scopes=False):
            targets: List[cst.BaseExpression] = []
            if isinstance(node, cst.Assign):
                targets = [t.target for t in node.targets]
            elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.NamedExpr)):
                targets = [node.target]
            elif isinstance(node, (cst.For, cst.CompFor)):
                targets = [node.target]
            elif isinstance(node, cst.AsName):
                targets = [node.name]
            elif isinstance(node, cst.Global) or isinstance(node, cst.Nonlocal):
                assigned.update(n.name.value for n in node.names)
            for target in targets:
                for sub in walk(target):
                    key = dotted_name(sub) if isinstance(sub, (cst.Name, cst.Attribute)) else None
                    if key:
                        assigned.add(key)
    # `owns = session is None` once at the top, then `if session is None: session =
    # factory()` ... `finally: if owns: session.close()`: inside that `if`, the flag is true
    # (real-bug corpus: keep's dismissal-expiry and maintenance-window checks).
    # Fixture: SL001/ownership_flag_from_none_test.py
    aliases: Dict[str, Tuple[str, bool]] = {}  # flag -> (name, whether the flag means "is None")
    counts: Dict[str, int] = {}
    for root in body:
        for node in walk(root, enter_scopes=False):
            if isinstance(node, cst.Assign):
                for t in node.targets:
                    if isinstance(t.target, cst.Name):
                        counts[t.target.value] = counts.get(t.target.value, 0) + 1
    for statement in body:
        small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 else None
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
            name = small.targets[0].target.value
            tested = _none_test(small.value)
            if tested is not None and counts.get(name) == 1:
                aliases[name] = tested
    index_of = {id(c.call): i for i, c in enumerate(facts.creations)}
    found: Dict[int, FrozenSet[Tuple[str, bool]]] = {}

    def alias_flags(test: cst.BaseExpression, truth: bool) -> FrozenSet[Tuple[str, bool]]:
        tested = _none_test(test)
        if tested is None:
            return frozenset()
        subject, is_none = tested
        # on this branch, `subject is None` holds exactly when...
        holds = is_none == truth
        return frozenset((flag, means_none == holds) for flag, (name, means_none) in aliases.items() if name == subject)

    def visit(statements: Sequence[cst.CSTNode], held: FrozenSet[Tuple[str, bool]]) -> None:
        for statement in statements:
            if isinstance(statement, SCOPE_TYPES):
                continue
            if isinstance(statement, cst.If):
                visit_if(statement, held)
                continue
            if held:
                for node in walk(statement, enter_scopes=False):
                    if type(node) is cst.Call and id(node) in index_of:
                        found[index_of[id(node)]] = held
                    if isinstance(node, cst.If):
                        break  # nested blocks are visited below with their own flags
            for block in nested_blocks(statement):
                visit(block, held)

    def visit_if(node: cst.If, held: FrozenSet[Tuple[str, bool]]) -> None:
        flag = _flag_test(node.test)
        usable = flag is not None and flag[0] not in assigned
        body_held = (held | {flag} if flag is not None and usable else held) | alias_flags(node.test, True)
        visit(suite_statements(node.body), body_held)
        orelse = node.orelse
        other = (held | {(flag[0], not flag[1])} if flag is not None and usable else held) | alias_flags(node.test, False)
        if isinstance(orelse, cst.If):
            visit_if(orelse, other)
        elif orelse is not None:
            visit(suite_statements(orelse.body), other)

    visit(body, frozenset())
    return found


def _scope_body(node: cst.CSTNode) -> Sequence[cst.CSTNode]:
    if isinstance(node, cst.Module):
        return node.body
    body = getattr(node, "body", None)
    return body.body if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)) else ()


_EXIT_NAMES = {
    ExitKind.RETURN: LeakKind.RETURN,
    ExitKind.RAISE: LeakKind.RAISE,
    ExitKind.END: LeakKind.END,
    ExitKind.EXCEPTION: LeakKind.EXCEPTION,
}


def _leaks_per_creation(exits: List[Exit], rebinds: List[Tuple[cst.CSTNode, State]]) -> Dict[int, List[Leak]]:
    found: Dict[int, List[Leak]] = {}
    seen: Set[Tuple[int, LeakKind, int, bool]] = set()

    def add(kind: LeakKind, node: cst.CSTNode, state: State) -> None:
        for status, ref, via_exception in state:
            if status != OPEN:
                continue
            exceptional = bool(via_exception) or kind is LeakKind.EXCEPTION
            key = (ref, kind, id(node), exceptional)
            if key in seen:
                continue
            seen.add(key)
            every = all(s == OPEN for s, _, _ in state)
            found.setdefault(ref, []).append(Leak(kind, node, every, exceptional))

    for e in exits:
        kind = _EXIT_NAMES.get(e.kind)
        if kind is not None:
            add(kind, e.node, e.state)
    for node, state in rebinds:
        add(LeakKind.REBIND, node, state)
    return found


class SessionTransfer(Transfer):
    """The state of one tracked name through a function: unbound, open (per creation),
    closed (per close site), or managed by a `with`."""

    def __init__(
        self,
        name: str,
        events: Dict[int, List[Event]],
        raising: Set[int],
        lazy: FrozenSet[int] = frozenset(),
        assumptions: Optional[Dict[int, FrozenSet[Tuple[str, bool]]]] = None,
        guards: FrozenSet[str] = frozenset(),
    ) -> None:
        self.name = name
        # attributes (`self._registry`) whose absence means the name holds no session
        self.guards = guards
        # creation index -> flags (never reassigned in the function) and their values on
        # every path to that creation
        self.assumptions = assumptions or {}
        self.lazy = lazy  # creations that start FRESH (sessions, not connections)
        self.events = events
        self.raising = raising
        self.rebinds: List[Tuple[cst.CSTNode, State]] = []
        self.close_sites: List[Tuple[cst.CSTNode, bool]] = []  # (node, by a `with`)
        self._site_index: Dict[int, int] = {}
        self._uses: Dict[int, Tuple[cst.CSTNode, Set[int], bool]] = {}

    def _site(self, node: cst.CSTNode, by_with: bool) -> int:
        key = id(node)
        if key not in self._site_index:
            self._site_index[key] = len(self.close_sites)
            self.close_sites.append((node, by_with))
        return self._site_index[key]

    def _mine(self, root: cst.CSTNode) -> List[Event]:
        return [e for e in self.events.get(id(root), ()) if e.name == self.name]

    def apply(self, root: cst.CSTNode, state: State) -> State:
        if type(root) is cst.With:
            return state
        for event in self._mine(root):
            state = self._step(event, state)
        return state

    def can_raise(self, root: cst.CSTNode) -> bool:
        return id(root) in self.raising

    def raised_state(self, root: cst.CSTNode, before: State, after: State) -> State:
        # A statement that closes the session counts as closing it even if it then raises
        # (the close is the last thing it does); any other statement raises before its
        # effect on the name (a creation that raises creates nothing).
        mine = self._mine(root)
        if any(e.kind in (EventKind.CLOSE, EventKind.REGISTER) for e in mine):
            return after
        if any(e.kind in (EventKind.USE, EventKind.ESCAPE) for e in mine):
            # `db.execute(...)` that raises has used the session (and may hold a connection);
            # `yield db` hands it to the endpoint before the exception is thrown back in.
            return frozenset((OPEN, r, x) if s == FRESH else (s, r, x) for s, r, x in before)
        return before

    def into_handler(self, state: State) -> State:
        return frozenset((s, r, 1) for s, r, _ in state)

    def _step(self, event: Event, state: State) -> State:
        kind = event.kind
        if kind is EventKind.CREATE:
            self._note_rebind(event.node, state)
            return frozenset({(FRESH if event.creation in self.lazy else OPEN, event.creation, 0)})
        if kind is EventKind.REGISTER:
            # A close is now guaranteed later (ExitStack, atexit, finalizers, addCleanup): the
            # session is as good as managed, neither open nor closed yet.
            return frozenset((MANAGED, r, x) if s in (OPEN, FRESH) else (s, r, x) for s, r, x in state)
        if kind is EventKind.CLOSE:
            site = self._site(event.node, False)
            return frozenset((CLOSED, site, x) if s in (OPEN, FRESH) else (s, r, x) for s, r, x in state)
        if kind in (EventKind.USE, EventKind.ESCAPE):
            state = frozenset((OPEN, r, x) if s == FRESH else (s, r, x) for s, r, x in state)
        if kind is EventKind.USE:
            if event.detail not in SAFE_AFTER_CLOSE and event.detail != "check":
                closed = {r for s, r, _ in state if s == CLOSED}
                if closed:
                    every = all(s == CLOSED for s, _, _ in state)
                    previous = self._uses.get(id(event.node))
                    if previous is not None:
                        closed |= previous[1]
                        every = every and previous[2]
                    self._uses[id(event.node)] = (event.node, closed, every)
            return state
        if kind is EventKind.REBIND:
            self._note_rebind(event.node, state)
            return _UNBOUND_STATE
        if kind is EventKind.RELEASE:
            return _UNBOUND_STATE
        if kind is EventKind.ESCAPE and event.reason is not None and event.reason.is_a_use:
            # Handing over or returning a closed session is a use of it.
            return self._step(Event(EventKind.USE, event.name, event.node, detail="argument"), state)
        if kind is EventKind.MANAGE:
            self._note_rebind(event.node, state)
            return frozenset({(MANAGED, event.creation, 0)})
        return state

    def _note_rebind(self, node: cst.CSTNode, state: State) -> None:
        if any(s == OPEN for s, _, _ in state):
            self.rebinds.append((node, state))

    def enter_with(self, node: cst.With, state: State) -> Tuple[State, Optional[Finalizer]]:
        mine = self._mine(node)
        for event in mine:
            state = self._step(event, state)
        closes = any(_with_item_closes(item, {self.name}) for item in node.items)
        manages = any(e.kind is EventKind.MANAGE for e in mine)
        if not closes and not manages:
            return state, None
        site = self._site(node, True)

        def finalize(at_exit: State) -> State:
            return frozenset((CLOSED, site, x) if s in (OPEN, MANAGED, FRESH) else (s, r, x) for s, r, x in at_exit)

        return state, finalize

    def refine(self, test: cst.BaseExpression, state: State, truthy: bool) -> State:
        """`if db:` / `if db is not None:` / `if db is None:` / `if not db:` narrow the state:
        a None name is unbound, a session object is truthy. An empty result means the
        branch cannot run with the name in any state it may hold (unreachable)."""
        positive = _presence_test(test, self.name)
        if positive is None:
            guarded = next((p for p in (_presence_test(test, g) for g in self.guards) if p is not None), None)
            if guarded is not None and guarded != truthy:
                return frozenset(t for t in state if t[0] == UNBOUND)  # the registry is None
            return self._refine_by_flag(test, state, truthy)
        present = positive if truthy else not positive
        return frozenset(t for t in state if (t[0] != UNBOUND) == present)

    def _refine_by_flag(self, test: cst.BaseExpression, state: State, truthy: bool) -> State:
        """`if with_engine: arg = engine else: arg = engine.connect()` ... `finally: if not
        with_engine: arg.close()`: a flag the function never reassigns has the value it had
        when the object was created, so a branch that contradicts it cannot see that object.
        Fixture: SL010/connection_opened_and_closed_under_one_flag.py"""
        flag = _flag_test(test)
        if flag is None or not self.assumptions:
            return state
        key, positive = flag
        value = positive if truthy else not positive
        return frozenset(
            t
            for t in state
            if t[0] not in (OPEN, FRESH, MANAGED) or (key, not value) not in self.assumptions.get(t[1], ())
        )

    def uses_after_close(self) -> List[UseAfterClose]:
        found = []
        for node, sites, every in self._uses.values():
            site_node, by_with = self.close_sites[min(sites)]
            found.append(UseAfterClose(self.name, node, site_node, by_with, every))
        return found


def _presence_test(test: cst.BaseExpression, name: str) -> Optional[bool]:
    """True if `test` is true exactly when `name` holds a session, False if exactly when it
    does not, None if it says nothing about it."""
    if isinstance(test, (cst.Name, cst.Attribute)) and dotted_name(test) == name:
        return True
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _presence_test(test.expression, name)
        return None if inner is None else not inner
    tested = _none_test(test)
    if tested is not None and tested[0] == name:
        return not tested[1]
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and dotted_name(test.left) == name:
        # `if dbo is not engine: dbo.close()`: a session is never the other object, so the
        # test holds whenever the name holds the session (corpus review: petl's fixture that
        # yields an engine, a connection or a session). Fixture: SL001/closed_unless_the_other_object.py
        target = test.comparisons[0]
        other = target.comparator
        if isinstance(other, (cst.Name, cst.Attribute)) and dotted_name(other) not in (None, "None", name):
            if isinstance(target.operator, cst.IsNot):
                return True
            if isinstance(target.operator, cst.Is):
                return False
    return None
