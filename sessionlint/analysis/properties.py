"""Properties that check out a new connection on every access, used in place: each
`obj.connection.execute(...)` takes a connection from the pool and drops it unclosed. The
project pass finds the properties (project.callables.connection_properties); this finds
the uses in one file (SL010 reads them)."""

from typing import FrozenSet, List, Set, Tuple

import libcst as cst

from sessionlint.analysis.tree import dotted_name, walk
from sessionlint.knowledge import CLOSING_METHODS


def fresh_connection_uses(module: cst.Module, names: FrozenSet[str]) -> List[Tuple[cst.Call, str, str]]:
    """(the call, the receiver as written, the property) of each method called on a property
    of `names` read in place: `self.connector.connection.execute(query)`. A module that
    assigns an attribute of that name (`self.connection = conn`) holds its own object under
    it and is left alone. (Real-bug corpus: meltano's sinks and streams.)
    Fixture: tests/fixtures/projects/connection_property"""
    if not names:
        return []
    assigned: Set[str] = set()
    calls: List[Tuple[cst.Call, cst.Attribute]] = []
    for node in walk(module):
        if isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign)):
            target = node.target
            if isinstance(target, cst.Attribute):
                assigned.add(target.attr.value)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value not in CLOSING_METHODS:
            receiver = node.func.value
            if isinstance(receiver, cst.Attribute) and receiver.attr.value in names and not isinstance(receiver.value, cst.Call):
                calls.append((node, receiver))
    return [(call, dotted_name(receiver) or receiver.attr.value, receiver.attr.value) for call, receiver in calls if receiver.attr.value not in assigned]
