"""Sessions that outlive their scope: handed to a background task, thread, task or
executor, stored where the scope's end does not reach, or created at import time and shared.
(SL008 and SL009 read these.)"""

from typing import FrozenSet, List, Set, Tuple

import libcst as cst

from sessionlint.analysis.facts import Handoff, Holding, ScopeFacts
from sessionlint.analysis.tree import iter_children, mentions_name, terminal_name
from sessionlint.knowledge import HANDOFF_SINKS


def find_shared_sessions(facts: ScopeFacts, imported_names: FrozenSet[str]) -> Set[int]:
    """Module-level sessions created at import time (not under a `__main__` guard) that other
    code uses: a function or class of the module, or another module importing the name."""
    shared: Set[int] = set()
    module = facts.node
    nested = [s for s in getattr(module, "body", ()) if isinstance(s, (cst.FunctionDef, cst.ClassDef))]
    for index, creation in enumerate(facts.creations):
        name = creation.name
        if creation.holding is not Holding.BOUND or creation.in_main_guard or not name or creation.is_connection:
            continue
        if name in imported_names or any(mentions_name(scope, name) for scope in nested):
            shared.add(index)
    return shared


def find_handoffs(facts: ScopeFacts) -> List[Handoff]:
    """Sessions of a `with` block or of a request dependency handed to a background task, a
    thread, a task or an executor: they run after the scope closes the session, or beside it."""
    managed = {c.name for c in facts.creations if c.holding is Holding.MANAGED and c.name}
    found: List[Handoff] = []
    for call in facts.handoff_calls:
        sink = HANDOFF_SINKS[terminal_name(call.func) or ""]
        for name in _passed_names(call):
            if name in managed:
                found.append(Handoff(call, name, sink, True))
            elif name in facts.injected:
                # FastAPI runs a yield dependency's exit code after background tasks before
                # 0.106 and again from 0.118; between, and with scope="function", before them.
                if sink != "background task" or facts.injected[name]:
                    found.append(Handoff(call, name, sink, False))
    return found


def find_stores(function: cst.FunctionDef, facts: ScopeFacts, module: Tuple[FrozenSet[str], FrozenSet[str]]) -> List[Handoff]:
    """Sessions of a `with` block or of a request dependency assigned where they outlive it:
    `CACHE[key] = db` on a module-level container, a `global` name, `SomeClass.attr = db`.
    Local containers, `self.db = db` and `request.state.db = db` live as long as the request.
    Fixture: SL008/session_stored_beyond_request.py"""
    managed = {c.name for c in facts.creations if c.holding is Holding.MANAGED and c.name}
    owned = managed | set(facts.injected)
    if not owned:
        return []
    module_names, class_names = module
    declared_global = facts.global_names
    local: Set[str] = {p.name.value for p in _all_params(function)} | facts.assigned_names
    found: List[Handoff] = []
    for node in facts.name_value_assigns:
        value = node.value
        if not isinstance(value, cst.Name) or value.value not in owned:
            continue
        for target in (t.target for t in node.targets):
            sink = None
            if isinstance(target, cst.Name) and target.value in declared_global:
                sink = "module-level variable"
            elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
                base = target.value.value
                if base in module_names and (base not in local or base in declared_global):
                    sink = "module-level variable"
            elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
                if target.value.value in class_names and target.value.value not in local:
                    sink = "class attribute"
            if sink is not None:
                found.append(Handoff(node, value.value, sink, value.value in managed))
    return found


def _all_params(function: cst.FunctionDef) -> List[cst.Param]:
    params = function.params
    extra = [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return list(params.posonly_params) + list(params.params) + list(params.kwonly_params) + extra


def _passed_names(call: cst.Call) -> List[str]:
    """Names passed as values anywhere in a call's arguments (not `db.attr`), in order."""
    names: List[str] = []
    stack: List[cst.CSTNode] = [arg.value for arg in reversed(call.args)]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            if node.value not in names:
                names.append(node.value)
        elif isinstance(node, cst.Attribute):
            continue
        elif isinstance(node, (cst.Lambda, cst.FunctionDef)):
            continue
        else:
            stack.extend(reversed(list(iter_children(node))))
    return names
