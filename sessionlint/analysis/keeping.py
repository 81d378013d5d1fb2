"""What leaves a function: the calls whose result outlives it or leaves its hands
(`kept_calls`), and the local objects made and dropped here (`local_holders`). The callee
oracle (analysis.ownership) asks it whether a project class that never closes what it holds
was given a session only for the function's run."""

from typing import Dict, FrozenSet, List, Set

import libcst as cst

from sessionlint.analysis.tree import walk
from sessionlint.knowledge import CONTAINER_BUILTINS, HANDOFF_SINKS, STORING_CALLEES, is_storing_setter


def kept_calls(function: cst.CSTNode) -> Set[int]:
    """Calls whose result outlives the function or leaves its hands: returned, yielded,
    stored on an object or in a container, passed to a call that may keep it (a
    constructor, a container's or a task API's method: `_may_keep`) or to a call whose own
    result is kept, entered with `with`, or bound to a local name that is any of those."""
    kept: Set[int] = set()
    locals_of: Dict[str, List[int]] = {}
    escaping: Set[str] = set()
    # calls that only use their arguments while they run, and their arguments
    lending: Dict[int, cst.Call] = {}
    lent: Set[int] = set()
    for node in walk(function):
        if isinstance(node, (cst.Return, cst.Yield)) and isinstance(node.value, cst.BaseExpression):
            _mark(node.value, kept, escaping)
        elif isinstance(node, cst.Assign):
            if isinstance(node.value, (cst.Call, cst.Await)):
                call = node.value.expression if isinstance(node.value, cst.Await) else node.value
                for target in node.targets:
                    if isinstance(target.target, cst.Name):
                        locals_of.setdefault(target.target.value, []).append(id(call))
                    else:
                        kept.add(id(call))
            elif not all(isinstance(t.target, cst.Name) for t in node.targets):
                _mark(node.value, kept, escaping)
        elif isinstance(node, cst.Call):
            if not _may_keep(node):
                lending[id(node)] = node
                lent.update(id(arg) for arg in node.args)
        elif isinstance(node, cst.Arg):
            if id(node) not in lent:
                _mark(node.value, kept, escaping)
        elif isinstance(node, cst.WithItem):
            _mark(node.item, kept, escaping)
        elif isinstance(node, (cst.Element, cst.DictElement)):
            _mark(node.value, kept, escaping)
    while True:
        for name in escaping:
            kept.update(locals_of.get(name, ()))
        # a lending call whose result leaves (`return wrap(service)`): its arguments may too
        leaving = [call for key, call in lending.items() if key in kept]
        if not leaving:
            return kept
        for call in leaving:
            del lending[id(call)]
            for arg in call.args:
                _mark(arg.value, kept, escaping)


def _may_keep(call: cst.Call) -> bool:
    """Whether a call may keep what it is given beyond its own run: anything but a function
    called by its lower-case name (a method may store it on its object), unless that
    name stores or hands over (knowledge.STORING_CALLEES, a hand-off sink, `set_...`) or is
    a builtin that builds a container. Such a function uses its arguments and returns
    (real-bug corpus: personio's feedback task passes the service that holds its session
    to a helper). Fixture: tests/fixtures/projects/repository_borrows"""
    func = call.func
    if not isinstance(func, cst.Name):
        return True
    callee = func.value
    if callee.lstrip("_")[:1].isupper() or callee in STORING_CALLEES or callee in HANDOFF_SINKS or callee in CONTAINER_BUILTINS:
        return True
    return is_storing_setter(callee, any(isinstance(a.value, cst.SimpleString) for a in call.args))


def local_holders(function: cst.CSTNode) -> FrozenSet[str]:
    """Local names bound only to the results of calls that do not outlive the function
    (`kept_calls`): objects made here and dropped here (`ra = self._adapter(sess, id)`).
    Real-bug corpus: tortuga's tag listener, `ra.session = sess`. Fixture:
    SL002/session_lent_to_local_object.py"""
    kept = kept_calls(function)
    bound: Dict[str, bool] = {}
    for node in walk(function):
        if isinstance(node, cst.Assign):
            value = node.value.expression if isinstance(node.value, cst.Await) else node.value
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    name = target.target.value
                    fresh = isinstance(value, cst.Call) and id(value) not in kept
                    bound[name] = bound.get(name, True) and fresh
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            for item in node.names:
                bound[item.name.value] = False
    return frozenset(name for name, fresh in bound.items() if fresh)


def _mark(value: cst.BaseExpression, kept: Set[int], escaping: Set[str]) -> None:
    if isinstance(value, cst.Await):
        value = value.expression
    if isinstance(value, cst.Call):
        kept.add(id(value))
    elif isinstance(value, cst.Name):
        escaping.add(value.value)
    elif isinstance(value, (cst.Tuple, cst.List)):
        for element in value.elements:
            _mark(element.value, kept, escaping)
