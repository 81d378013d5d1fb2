"""Settling what a scope made once the traversal knows its whole body: connections passed
inline whose call result nothing can close (`lost_in`, `keep_owned_locals`), sessions
drawn from generators the scope finishes (`drop_finished_draws`), hand-offs whose task the
scope waits for (`joined_handoffs`)."""

import dataclasses
from typing import Dict, List, Optional, Sequence, Set

import libcst as cst

from sessionlint.analysis.facts import ScopeFacts
from sessionlint.analysis.tree import terminal_name, walk
from sessionlint.knowledge import CLOSING_WRAPPERS, STORING_CALLEES, is_storing_setter


def lost_in(call: cst.Call, ancestors: Sequence[cst.CSTNode], facts: ScopeFacts) -> Optional[str]:
    """For `engine.connect()` written as an argument of a call whose result nothing can use
    to close it (`dialect.has_schema(engine.connect(), name)`, `MigrationContext.configure(
    engine.connect())` bound to a local): the callee. None when the call may take it over: a
    closing wrapper or a storing callee, a call whose result is returned, yielded, stored
    on an object or in a container, entered with `with`, or bound to a name the scope closes.
    Fixture: SL010/connection_passed_inline.py"""
    if len(ancestors) < 2 or not isinstance(ancestors[-1], cst.Arg) or not isinstance(ancestors[-2], cst.Call):
        return None
    outer = ancestors[-2]
    callee = terminal_name(outer.func) or ""
    named_string = any(isinstance(a.value, cst.SimpleString) for a in outer.args)
    if callee in CLOSING_WRAPPERS or callee in STORING_CALLEES or is_storing_setter(callee, named_string) or callee in ("__init__", "super"):
        return None
    index = len(ancestors) - 3
    child: cst.CSTNode = outer
    while index >= 0 and isinstance(ancestors[index], (cst.Await, cst.Attribute, cst.Call)) and not isinstance(ancestors[index], cst.Arg):
        holder = ancestors[index]
        if isinstance(holder, cst.Call) and holder.func is not child:
            break
        child, index = holder, index - 1
    parent = ancestors[index] if index >= 0 else None
    # What a plain function returns is a value computed from the connection (`has_table`,
    # `read_sql`); what a class or a `make_`/`wrap` function returns may own it.
    may_own = callee[:1].isupper() or callee.startswith(("make", "wrap", "create", "build", "open", "new", "get_")) or callee in (
        "inspect",  # an Inspector keeps it as `.bind` (corpus review: datahub)
        "configure",  # Alembic's MigrationContext keeps it
    )
    if may_own and isinstance(outer.func, cst.Attribute) and terminal_name(outer.func.value) == "dialect":
        # `engine.dialect.get_schema_names(engine.connect())`: a Dialect's `get_*` reads
        # through the connection and keeps nothing (real-bug corpus: oeplatform's actions)
        may_own = False
    if parent is None or isinstance(parent, (cst.WithItem, cst.Lambda)):
        return None
    if isinstance(parent, (cst.Return, cst.Yield, cst.Arg, cst.Element, cst.DictElement)):
        return None if may_own or child is not outer else callee or None
    if isinstance(parent, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
        targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
        first = targets[0]
        if not isinstance(first, cst.Name) or len(targets) != 1:
            return None  # stored on an object or in a container: its owner's to close
        if callee and may_own:
            facts.lost_locals[len(facts.creations)] = first.value
        # a local: lost unless the scope closes or keeps it (`keep_owned_locals`), and what a
        # plain function returns (`result = dialect.has_schema(engine.connect(), name)`) is
        # a value that keeps nothing, returned or not
        return callee or None
    if isinstance(parent, cst.Expr) or isinstance(parent, (cst.If, cst.While, cst.Comparison, cst.BooleanOperation, cst.UnaryOperation)):
        return callee or None
    return None

def joined_handoffs(node: cst.CSTNode, calls: Sequence[cst.Call]) -> List[cst.Call]:
    """Hand-off calls whose result the scope binds to a name and then waits for, cancels or
    joins (`await task`, `task.result()`, `task.cancel()`, `thread.join()`): the task ends
    inside the scope, before the owner closes the session. Issue 20 section 3; corpus review:
    meltano's heartbeat task. Fixture: SL008/task_awaited_in_scope.py"""
    bound: Dict[str, cst.Call] = {}
    wanted = {id(call): call for call in calls}
    for sub in walk(node):
        if isinstance(sub, cst.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0].target, cst.Name):
            value = sub.value
            while isinstance(value, (cst.Await, cst.Call)) and id(value) not in wanted:
                if isinstance(value, cst.Await):
                    value = value.expression
                elif isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and isinstance(value.func.value, cst.Call):
                    value = value.func.value  # `Thread(...).start()` is no result to join
                    break
                else:
                    break
            if id(value) in wanted:
                bound[sub.targets[0].target.value] = wanted[id(value)]
    if not bound:
        return []
    joined: List[cst.Call] = []
    for sub in walk(node):
        name = None
        if isinstance(sub, cst.Await) and isinstance(sub.expression, cst.Name):
            name = sub.expression.value
        elif isinstance(sub, cst.Call) and isinstance(sub.func, cst.Attribute) and isinstance(sub.func.value, cst.Name):
            if sub.func.attr.value in ("result", "cancel", "join", "wait", "exception"):
                name = sub.func.value.value
        elif isinstance(sub, cst.Call) and terminal_name(sub.func) in ("gather", "wait", "wait_for", "as_completed"):
            for arg in sub.args:
                if isinstance(arg.value, cst.Name) and arg.value.value in bound:
                    joined.append(bound[arg.value.value])
        if name in bound:
            joined.append(bound[name])
    return joined

def keep_owned_locals(node: cst.CSTNode, facts: ScopeFacts) -> None:
    """`ctx = Wrapper(engine.connect())`: the wrapper owns the connection when the scope
    closes it (`ctx.close()`, `with ctx`), returns it, stores it or hands it on."""
    owned: Set[str] = set()
    names = set(facts.lost_locals.values())
    for sub in walk(node):
        if isinstance(sub, cst.Call) and isinstance(sub.func, cst.Attribute) and isinstance(sub.func.value, cst.Name):
            if sub.func.value.value in names and sub.func.attr.value in ("close", "dispose", "__exit__", "release"):
                owned.add(sub.func.value.value)
        elif isinstance(sub, cst.WithItem) and isinstance(sub.item, cst.Name):
            owned.add(sub.item.value)
        elif isinstance(sub, (cst.Return, cst.Yield)) and sub.value is not None:
            value = sub.value
            elements = [e.value for e in value.elements] if isinstance(value, (cst.Tuple, cst.List)) else [value]
            owned.update(e.value for e in elements if isinstance(e, cst.Name))
        elif isinstance(sub, cst.Arg) and isinstance(sub.value, cst.Name):
            owned.add(sub.value.value)
        elif isinstance(sub, cst.Assign) and isinstance(sub.value, cst.Name) and not all(isinstance(t.target, cst.Name) for t in sub.targets):
            owned.add(sub.value.value)
    for index, name in list(facts.lost_locals.items()):
        if name in owned and index < len(facts.creations):
            facts.creations[index] = dataclasses.replace(facts.creations[index], lost_in=None)
    facts.lost_locals = {}

def drop_finished_draws(node: cst.CSTNode, facts: ScopeFacts) -> None:
    """Sessions drawn with `next(gen)` from a generator the scope finishes (`gen.close()`,
    `next(gen, None)`, a second `next(gen)` (under `suppress(StopIteration)`: real-bug
    corpus, personio's fixed advice task), a loop over it) are closed by the generator's own
    cleanup."""
    names = set(facts.drawn_from.values())
    discarded = {id(sub.value) for sub in walk(node) if isinstance(sub, cst.Expr)}  # `next(gen)` as a statement
    finished: Set[str] = set()
    for sub in walk(node):
        if isinstance(sub, cst.Call):
            func = sub.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("close", "aclose", "throw") and isinstance(func.value, cst.Name):
                finished.add(func.value.value)
            elif terminal_name(func) in ("next", "anext") and sub.args and isinstance(sub.args[0].value, cst.Name):
                if len(sub.args) == 2 or id(sub) in discarded:
                    finished.add(sub.args[0].value.value)
        elif isinstance(sub, (cst.For, cst.CompFor)) and isinstance(sub.iter, cst.Name):
            finished.add(sub.iter.value)
    finished &= names
    if finished:
        drop = {index for index, name in facts.drawn_from.items() if name in finished}
        facts.creations = [c for i, c in enumerate(facts.creations) if i not in drop]
        facts.drawn_from = {}
