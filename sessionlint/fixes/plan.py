"""A fix as a rule plans it: node edits on the very tree the rules visited."""

from dataclasses import dataclass
from typing import Tuple, Union

import libcst as cst

from sessionlint.diagnostics import Applicability, Fix

Replacement = Union[cst.CSTNode, cst.FlattenSentinel, cst.RemovalSentinel]


@dataclass(frozen=True)
class Edit:
    """Replace `target` (a node of the linted tree) with `replacement`."""

    target: cst.CSTNode
    replacement: Replacement


@dataclass(frozen=True)
class FixPlan:
    applicability: Applicability
    title: str
    edits: Tuple[Edit, ...]

    def as_fix(self) -> Fix:
        """What crosses process boundaries and reaches the reporters."""
        return Fix(self.applicability, self.title)
