"""Sessions closed by a teardown only after their commit succeeds (SL002): the session is made
in one function and closed in another (`__exit__`, an `on_finish` hook, a finished-request
callback, a `close()` method), after a `commit()` (or `flush()`) that is not inside a
`try`, and the close is not in a `finally`: when the commit raises, the close never runs
and the connection stays checked out (real-bug corpus: a Tornado middleware's
`on_finish`, a Pyramid finished callback, a middleware's context manager).
Fixture: SL002/closed_by_teardown_after_commit.py"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import libcst as cst

from sessionlint.analysis.facts import Creation, Holding
from sessionlint.analysis.tree import dotted_name, suite_statements, terminal_name, walk
from sessionlint.knowledge import FAILING_METHODS, FactoryKind, is_test_path

# (FAILING_METHODS only: a `rollback()` before the close fails only with the connection.
# Corpus review of ziggurat-foundations' test fixtures, `session.rollback(); session.close()`)
_EXITS = ("__exit__", "__aexit__")


@dataclass(frozen=True)
class TeardownClose:
    creation: cst.Call  # where the session is made
    closer: str  # the function that closes it
    failing: cst.Call  # the commit (or flush) that can raise before the close
    close: cst.Call


def unprotected_teardowns(module: cst.Module, scopes: Iterable[Tuple[cst.CSTNode, Sequence[Creation]]], path: str) -> List[TeardownClose]:
    """The sessions created in `scopes` (each function with its creations) that another
    function closes only after a commit that may raise. Test code is left alone: a test's
    teardown failing is the test's failure."""
    found: List[TeardownClose] = []
    if is_test_path(path):
        return found
    owners: Optional[Dict[int, cst.ClassDef]] = None
    for function, creations in scopes:
        if not isinstance(function, cst.FunctionDef):
            continue
        for creation in creations:
            if creation.factory.kind is not FactoryKind.SESSION or creation.holding is Holding.MANAGED:
                continue
            if owners is None:
                owners = _method_owners(module)
            for key, closers in _closers(function, creation, owners.get(id(function))):
                hit = _first_unprotected_close(closers, key)
                if hit is not None:
                    found.append(TeardownClose(creation.call, *hit))
                    break
    return found


def _method_owners(module: cst.Module) -> Dict[int, cst.ClassDef]:
    owners: Dict[int, cst.ClassDef] = {}
    for node in walk(module):
        if isinstance(node, cst.ClassDef):
            for statement in suite_statements(node.body):
                if isinstance(statement, cst.FunctionDef):
                    owners[id(statement)] = node
    return owners


def _closers(function: cst.FunctionDef, creation: Creation, owner: Optional[cst.ClassDef]) -> List[Tuple[Optional[str], List[cst.FunctionDef]]]:
    """(the receiver the closer must close, None for any; the functions that may close it)."""
    methods = [s for s in suite_statements(owner.body) if isinstance(s, cst.FunctionDef) and s is not function] if owner is not None else []
    out: List[Tuple[Optional[str], List[cst.FunctionDef]]] = []
    stored = _stored_on_self(function, creation.call)
    if stored is not None and methods:
        out.append((stored, methods))  # `self.db = Session()` ... `def on_finish(self): ...`
    if creation.holding is Holding.BOUND and creation.name is not None:
        nested = [n for n in walk(function.body) if isinstance(n, cst.FunctionDef)]
        if nested:
            out.append((creation.name, nested))  # a callback closes the closure's session
    if function.name.value in ("__enter__", "__aenter__") and _set_in_context_variable(function, creation.call):
        out.append((None, [m for m in methods if m.name.value in _EXITS]))  # `_session.set(Session())`
    return out


def _stored_on_self(function: cst.FunctionDef, call: cst.Call) -> Optional[str]:
    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, cst.Assign) and node.value is call:
            for target in node.targets:
                dotted = dotted_name(target.target) if isinstance(target.target, cst.Attribute) else None
                if dotted is not None and dotted.startswith("self.") and dotted.count(".") == 1:
                    return dotted
    return None


def _set_in_context_variable(function: cst.FunctionDef, call: cst.Call) -> bool:
    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, cst.Call) and terminal_name(node.func) == "set" and any(arg.value is call for arg in node.args):
            return True
    return False


def _first_unprotected_close(closers: List[cst.FunctionDef], key: Optional[str]) -> Optional[Tuple[str, cst.Call, cst.Call]]:
    for closer in closers:
        receivers = _fetched_names(closer) if key is None else {key}
        guarded: Set[int] = set()  # calls inside a `try` (a handler may close) or its `finally`
        for node in walk(closer.body, enter_scopes=False):
            if isinstance(node, (cst.Try, cst.TryStar)):
                guarded.update(id(n) for n in walk(node, enter_scopes=False))
        failing: Dict[str, cst.Call] = {}
        for node in walk(closer.body, enter_scopes=False):
            if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute) or id(node) in guarded:
                continue
            receiver = dotted_name(node.func.value)
            if receiver not in receivers:
                continue
            method = node.func.attr.value
            if method in FAILING_METHODS:
                if receiver not in failing or (method == "commit" and terminal_name(failing[receiver].func) != "commit"):
                    failing[receiver] = node  # (named in the message: the commit if there is one)
            elif method == "close" and receiver in failing:
                return closer.name.value, failing[receiver], node
    return None


def _fetched_names(function: cst.FunctionDef) -> Set[str]:
    """Names an `__exit__` binds to what a context variable holds: `sess = _session.get()`."""
    names: Set[str] = set()
    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and terminal_name(node.value.func) == "get":
            names.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))
        elif isinstance(node, cst.AnnAssign) and isinstance(node.value, cst.Call) and terminal_name(node.value.func) == "get":
            if isinstance(node.target, cst.Name):
                names.add(node.target.value)  # `sess: Optional[Session] = _session.get()`
    return names
