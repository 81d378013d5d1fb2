"""The rule base class, its examples, and the per-file context rules report into."""

import re
from dataclasses import dataclass
from typing import ClassVar, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, Union

import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector
from sessionlint.analysis.factories import ProjectIndex, Resolver
from sessionlint.analysis.facts import ScopeFacts
from sessionlint.analysis.frameworks import FrameworkCollector
from sessionlint.analysis.positions import Positions
from sessionlint.diagnostics import Confidence, FixAvailability
from sessionlint.fixes.plan import FixPlan

# A node whose line a message names: its start, or ("end", node) for its last line.
LineRef = Union[cst.CSTNode, Tuple[str, cst.CSTNode]]


@dataclass(frozen=True)
class Valid:
    code: str
    name: str


@dataclass(frozen=True)
class Invalid:
    code: str
    name: str
    expect: Sequence[Tuple[str, int, int]]  # (code, line, 1-based column)
    fixed: Optional[str] = None


@dataclass
class PendingReport:
    code: str
    name: str
    node: cst.CSTNode
    message: str
    help: str
    refs: Mapping[str, LineRef]
    fix: Optional[FixPlan]
    confidence: Confidence


class FileContext:
    """What one file's rules share: the tree, the resolver, the analysis providers, and the
    reports. Positions are computed once, after the traversal, for reported nodes only."""

    def __init__(
        self, module: cst.Module, path: str, index: ProjectIndex, mentions_sqlalchemy: bool = True, collectors: Iterable[type] = (FrameworkCollector,)
    ) -> None:
        self.module = module
        self.path = path
        self.index = index
        self.resolver = Resolver(module, path, index, mentions_sqlalchemy)
        self.lifecycle = LifecycleCollector(self.resolver, index.depends_targets, index.async_dependencies)
        # Built only when an enabled rule declares it (METADATA_DEPENDENCIES).
        self.frameworks = (
            FrameworkCollector(index.depends_targets, index.request_decorators, {q: why for (p, q), why in index.per_request.items() if p == path})
            if FrameworkCollector in collectors
            else None
        )
        self.positions = Positions(module)
        self.reports: List[PendingReport] = []
        self.crashes: List[Tuple[str, str]] = []  # (rule code, what it raised)

    def source_of(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


class Rule:
    """A rule reads analysis facts in `visit_<Node>`/`leave_<Node>` methods and calls
    `report`. The engine calls those methods from its one traversal; they return None."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    fix_availability: ClassVar[FixAvailability] = FixAvailability.NONE
    METADATA_DEPENDENCIES: ClassVar[Tuple[type, ...]] = ()
    # Text a file must contain for this rule to have anything to say (see engine.TRIGGERS).
    TRIGGERS: ClassVar[Tuple[str, ...]] = ("factory_call",)
    examples: ClassVar[Sequence[Union[Valid, Invalid]]] = ()

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.crashed: Optional[str] = None  # set by the engine when a callback raised

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        help: str,
        refs: Optional[Mapping[str, LineRef]] = None,
        fix: Optional[FixPlan] = None,
        confidence: Confidence = Confidence.HIGH,
    ) -> None:
        """Record a finding at `node`. `{key}` in the message becomes the line of refs[key];
        `report` (through the engine) is the only place positions become lines and columns."""
        self.context.reports.append(
            PendingReport(self.code, self.name, node, message, help, dict(refs or {}), fix, confidence)
        )

    @classmethod
    def callbacks(cls) -> Dict[str, List[str]]:
        """Method names per libcst node class: {"FunctionDef": ["visit_FunctionDef", ...]}."""
        found: Dict[str, List[str]] = {}
        for attribute in dir(cls):
            match = re.match(r"^(visit|leave)_([A-Z]\w*)$", attribute)
            if match:
                found.setdefault(match.group(2), []).append(attribute)
        return found


RuleClass = Type[Rule]


class ScopeRule(Rule):
    """A rule that reads the lifecycle facts of each function and of the module body once
    the traversal has left it: subclasses implement `check_scope`."""

    METADATA_DEPENDENCIES: ClassVar[Tuple[type, ...]] = (LifecycleCollector,)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._dispatch(node)

    def leave_Module(self, node: cst.Module) -> None:
        self._dispatch(node)

    def _dispatch(self, node: cst.CSTNode) -> None:
        facts = self.context.lifecycle.facts_for(node)
        if facts is not None and not facts.gave_up:
            self.check_scope(facts)

    def check_scope(self, facts: "ScopeFacts") -> None:  # pragma: no cover - abstract
        raise NotImplementedError
