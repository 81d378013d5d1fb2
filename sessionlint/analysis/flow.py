"""Path-sensitive interpretation of one function body over structured control flow.

The interpreter runs a function's statements once (loops to a small fixpoint) carrying an
abstract state: the set of states a tracked value may be in at that point. `if` branches,
loops with `break`/`continue`/`else`, `try`/`except`/`else`/`finally`, `with` and `match` are
followed; `return`, `raise` and the end of the function are exits, each with the state it
leaves in. What a statement does to the state is the `Transfer`'s business (lifecycle.py):
this module knows control flow, not sessions.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

import libcst as cst

from sessionlint.analysis.tree import suite_statements

# One element of an abstract state; its meaning belongs to the Transfer.
Token = Tuple[int, int, int]
State = FrozenSet[Token]


class ExitKind(Enum):
    RETURN = "return"
    RAISE = "raise"
    END = "end"  # falling off the end of the body
    BREAK = "break"
    CONTINUE = "continue"
    EXCEPTION = "exception"  # an exception raised by a statement (not a `raise` statement)


@dataclass
class Exit:
    kind: ExitKind
    node: cst.CSTNode
    state: State


@dataclass
class Outcome:
    normal: Optional[State]  # None: the block never completes normally
    exits: List[Exit]


Finalizer = Callable[[State], State]


class Transfer:
    """What statements do to the state. Subclassed by the lifecycle analysis."""

    def apply(self, root: cst.CSTNode, state: State) -> State:
        """Effect of a small statement or a header expression (test, iterable, subject)."""
        return state

    def enter_with(self, node: cst.With, state: State) -> Tuple[State, Optional[Finalizer]]:
        """Effect of a `with` header; the finalizer maps states at block exit (every exit)."""
        return state, None

    def refine(self, test: cst.BaseExpression, state: State, truthy: bool) -> State:
        """Narrow the state on one branch of a condition."""
        return state

    def can_raise(self, root: cst.CSTNode) -> bool:
        """Whether evaluating `root` may raise an exception (a call, an await, a yield...)."""
        return False

    def raised_state(self, root: cst.CSTNode, before: State, after: State) -> State:
        """The state when `root` raises part-way: by default, before its effects."""
        return before

    def into_handler(self, state: State) -> State:
        """The state as an `except` handler receives it from an implicit exception."""
        return state


def _union(a: Optional[State], b: Optional[State]) -> Optional[State]:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _is_constant_true(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.Name) and test.value == "True":
        return True
    return isinstance(test, cst.Integer) and test.value not in ("0", "0x0", "0o0", "0b0")


_CATCH_ALL = frozenset({"Exception", "BaseException"})


class Interpreter:
    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer

    # -- entry points -----------------------------------------------------------------
    def run_function(self, body: cst.BaseSuite, node: cst.CSTNode, state: State) -> List[Exit]:
        """All exits of a function body, the fall-through end included, merged per node."""
        outcome = self.run_block(suite_statements(body), state)
        exits = list(outcome.exits)
        if outcome.normal is not None:
            exits.append(Exit(ExitKind.END, node, outcome.normal))
        return merge_exits(exits)

    def run_module(self, module: cst.Module, state: State) -> List[Exit]:
        outcome = self.run_block(module.body, state)
        exits = list(outcome.exits)
        if outcome.normal is not None:
            exits.append(Exit(ExitKind.END, module, outcome.normal))
        return merge_exits(exits)

    # -- blocks and statements ----------------------------------------------------------
    def _apply(self, root: cst.CSTNode, state: State, exits: List[Exit]) -> State:
        """Apply `root`, recording the exception it may raise as an EXCEPTION exit."""
        after = self.transfer.apply(root, state)
        if self.transfer.can_raise(root):
            exits.append(Exit(ExitKind.EXCEPTION, root, self.transfer.raised_state(root, state, after)))
        return after

    def run_block(self, statements: Sequence[cst.CSTNode], state: Optional[State]) -> Outcome:
        exits: List[Exit] = []
        if not state:
            state = None  # an empty state: no execution reaches this block
        for statement in statements:
            if state is None:
                break  # unreachable code after return/raise/break/continue
            outcome = self.run_statement(statement, state)
            exits.extend(outcome.exits)
            state = outcome.normal
        return Outcome(state, exits)

    def run_statement(self, node: cst.CSTNode, state: State) -> Outcome:
        if isinstance(node, cst.SimpleStatementLine):
            return self.run_block(node.body, state)
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node, state)
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return Outcome(state, [])  # nested scopes are analysed on their own
        return Outcome(self.transfer.apply(node, state), [])

    def _small(self, node: cst.CSTNode, state: State) -> Outcome:
        exits: List[Exit] = []
        if isinstance(node, cst.Raise):
            return Outcome(None, [Exit(ExitKind.RAISE, node, self.transfer.apply(node, state))])
        state = self._apply(node, state, exits)
        if isinstance(node, cst.Return):
            return Outcome(None, exits + [Exit(ExitKind.RETURN, node, state)])
        if isinstance(node, cst.Break):
            return Outcome(None, [Exit(ExitKind.BREAK, node, state)])
        if isinstance(node, cst.Continue):
            return Outcome(None, [Exit(ExitKind.CONTINUE, node, state)])
        return Outcome(state, exits)

    def _if(self, node: cst.If, state: State) -> Outcome:
        raised: List[Exit] = []
        state = self._apply(node.test, state, raised)
        body = self.run_block(suite_statements(node.body), self.transfer.refine(node.test, state, True))
        other_state = self.transfer.refine(node.test, state, False)
        orelse = node.orelse
        if orelse is None:
            other = Outcome(other_state or None, [])
        elif isinstance(orelse, cst.If):
            other = self._if(orelse, other_state)
        else:
            other = self.run_block(suite_statements(orelse.body), other_state)
        return Outcome(_union(body.normal, other.normal), raised + body.exits + other.exits)

    def _loop(self, node: Any, state: State) -> Outcome:
        assert isinstance(node, (cst.For, cst.While))
        is_while = isinstance(node, cst.While)
        header = node.test if isinstance(node, cst.While) else node.iter
        raised: List[Exit] = []
        entry = self._apply(header, state, raised)
        if isinstance(node, cst.For):
            entry = self.transfer.apply(node.target, entry)
        body_outcome = Outcome(None, [])
        for _ in range(4):
            body_state = self.transfer.refine(header, entry, True) if is_while else entry
            body_outcome = self.run_block(suite_statements(node.body), body_state)
            back = body_outcome.normal
            for e in body_outcome.exits:
                if e.kind is ExitKind.CONTINUE:
                    back = _union(back, e.state)
            if back is None or back <= entry:
                break
            # Another iteration runs the header again on what the body left.
            entry = entry | self._apply(header, back, raised)
        breaks: Optional[State] = None
        exits: List[Exit] = list(raised)
        for e in body_outcome.exits:
            if e.kind is ExitKind.BREAK:
                breaks = _union(breaks, e.state)
            elif e.kind is not ExitKind.CONTINUE:
                exits.append(e)
        if is_while and _is_constant_true(header):
            finished: Optional[State] = None  # only `break` leaves `while True`
        else:
            finished = self.transfer.refine(header, entry, False) if is_while else entry
        orelse = node.orelse
        if orelse is not None and finished is not None:
            else_outcome = self.run_block(suite_statements(orelse.body), finished)
            finished = else_outcome.normal
            exits.extend(else_outcome.exits)
        return Outcome(_union(finished, breaks), exits)

    def _try(self, node: Any, state: State) -> Outcome:
        assert isinstance(node, (cst.Try, cst.TryStar))
        body = self.run_block(suite_statements(node.body), state)
        handlers = node.handlers
        exits: List[Exit] = []
        raised: Optional[State] = None  # what `raise` statements hand to the handlers
        thrown: Optional[State] = None  # what implicit exceptions hand to the handlers
        catches_all = any(_is_catch_all(h) for h in handlers)
        for e in body.exits:
            if handlers and e.kind is ExitKind.RAISE:
                raised = _union(raised, e.state)
            elif handlers and e.kind is ExitKind.EXCEPTION:
                thrown = _union(thrown, e.state)
            else:
                exits.append(e)
                continue
            if not catches_all:
                exits.append(e)
        normal = body.normal
        if node.orelse is not None and normal is not None:
            orelse = self.run_block(suite_statements(node.orelse.body), normal)
            normal = orelse.normal
            exits.extend(orelse.exits)
        entry = _union(raised, self.transfer.into_handler(thrown) if thrown is not None else None)
        if entry is not None:
            for handler in handlers:
                outcome = self.run_block(suite_statements(handler.body), entry)
                normal = _union(normal, outcome.normal)
                exits.extend(outcome.exits)
        finalbody = node.finalbody
        if finalbody is None:
            return Outcome(normal, exits)
        return self._through_finally(suite_statements(finalbody.body), normal, exits)

    def _through_finally(
        self, statements: Sequence[cst.CSTNode], normal: Optional[State], exits: List[Exit]
    ) -> Outcome:
        """Run the finally block on the normal path and on every exit, keeping each exit's kind."""
        memo: Dict[State, Outcome] = {}

        def run(state: State) -> Outcome:
            if state not in memo:
                memo[state] = self.run_block(statements, state)
            return memo[state]

        result_exits: List[Exit] = []
        result_normal: Optional[State] = None
        if normal is not None:
            outcome = run(normal)
            result_normal = outcome.normal
            result_exits.extend(outcome.exits)
        for e in exits:
            outcome = run(e.state)
            result_exits.extend(outcome.exits)
            if outcome.normal is not None:
                result_exits.append(Exit(e.kind, e.node, outcome.normal))
        return Outcome(result_normal, result_exits)

    def _with(self, node: cst.With, state: State) -> Outcome:
        raised: List[Exit] = []
        if self.transfer.can_raise(node):  # entering a context manager may raise
            raised.append(Exit(ExitKind.EXCEPTION, node, state))
        state, finalizer = self.transfer.enter_with(node, state)
        body = self.run_block(suite_statements(node.body), state)
        if finalizer is None:
            return Outcome(body.normal, raised + body.exits)
        normal = finalizer(body.normal) if body.normal is not None else None
        return Outcome(normal, raised + [Exit(e.kind, e.node, finalizer(e.state)) for e in body.exits])

    def _match(self, node: Any, state: State) -> Outcome:
        assert isinstance(node, cst.Match)
        exits: List[Exit] = []
        state = self._apply(node.subject, state, exits)
        cases = node.cases
        # Without an irrefutable case (`case _:` or a bare capture), no case may match.
        normal: Optional[State] = None if any(_is_irrefutable(c) for c in cases) else state
        for case in cases:
            case_state = self.transfer.apply(case.guard, state) if case.guard is not None else state
            outcome = self.run_block(suite_statements(case.body), case_state)
            normal = _union(normal, outcome.normal)
            exits.extend(outcome.exits)
        return Outcome(normal, exits)

    def _suite_line(self, node: cst.CSTNode, state: State) -> Outcome:
        return self._small(node, state)


def _is_irrefutable(case: cst.MatchCase) -> bool:
    pattern = case.pattern
    if case.guard is not None:
        return False
    while isinstance(pattern, cst.MatchAs) and pattern.pattern is not None:
        pattern = pattern.pattern
    return isinstance(pattern, cst.MatchAs) and pattern.pattern is None


def _is_catch_all(handler: cst.CSTNode) -> bool:
    kind = getattr(handler, "type", None)
    if kind is None:
        return True
    return isinstance(kind, cst.Name) and kind.value in _CATCH_ALL


def merge_exits(exits: List[Exit]) -> List[Exit]:
    """One exit per (kind, node), with the union of the states that reach it, in first-seen
    order (which follows the source, since the interpreter runs forward)."""
    merged: Dict[Tuple[ExitKind, int], Exit] = {}
    for e in exits:
        key = (e.kind, id(e.node))
        if key in merged:
            merged[key].state = merged[key].state | e.state
        else:
            merged[key] = Exit(e.kind, e.node, e.state)
    return list(merged.values())


_HANDLERS: Dict[type, Callable[[Interpreter, Any, State], Outcome]] = {
    cst.If: Interpreter._if,
    cst.For: Interpreter._loop,
    cst.While: Interpreter._loop,
    cst.Try: Interpreter._try,
    cst.With: Interpreter._with,
    cst.Return: Interpreter._small,
    cst.Raise: Interpreter._small,
    cst.Break: Interpreter._small,
    cst.Continue: Interpreter._small,
    cst.Expr: Interpreter._small,
    cst.Assign: Interpreter._small,
    cst.AnnAssign: Interpreter._small,
    cst.AugAssign: Interpreter._small,
    cst.Del: Interpreter._small,
    cst.Global: Interpreter._small,
    cst.Nonlocal: Interpreter._small,
    cst.Assert: Interpreter._small,
    cst.Pass: Interpreter._small,
}
if hasattr(cst, "TryStar"):
    _HANDLERS[cst.TryStar] = Interpreter._try
if hasattr(cst, "Match"):
    _HANDLERS[cst.Match] = Interpreter._match
