"""Fix rounds: lint, apply the non-overlapping fixes in source order (the rest wait for the
next round), render, verify, repeat; at most MAX_ROUNDS rounds.

Every round's text must pass `compile(text, path, "exec", dont_inherit=True)`: parsing alone
accepts `await` in a plain `def`. When a round fails, the text of the last good round is
kept and an internal error names the codes of the fixes that broke it.
"""

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import libcst as cst

from sessionlint.diagnostics import Applicability, Diagnostic, FileResult, is_fixable
from sessionlint.fixes.plan import FixPlan

if TYPE_CHECKING:
    from sessionlint.lint import RuleClasses
    from sessionlint.prefilter import Project

MAX_ROUNDS = 10


@dataclass
class FixOutcome:
    data: bytes  # the fixed bytes (the input when nothing applied)
    result: FileResult  # the lint of `data`
    fixed: "Counter[str]" = field(default_factory=Counter)  # code -> fixes applied
    problem: Optional[str] = None  # a round that failed verification, or no convergence

    @property
    def changed(self) -> bool:
        return sum(self.fixed.values()) > 0


def is_applied(plan: Optional[FixPlan], unsafe: bool) -> bool:
    if plan is None:
        return False
    return plan.applicability is Applicability.SAFE or (unsafe and plan.applicability is Applicability.UNSAFE)


class _Apply(cst.CSTTransformer):
    def __init__(self, plans: Sequence[FixPlan]) -> None:
        super().__init__()
        self.replacements = {id(edit.target): edit.replacement for plan in plans for edit in plan.edits}

    def on_leave(self, original_node, updated_node):
        replacement = self.replacements.get(id(original_node))
        return updated_node if replacement is None else replacement


def _spans(module: cst.Module, plans: Sequence[FixPlan]) -> Dict[int, Tuple[Tuple[int, int], Tuple[int, int]]]:
    from sessionlint.analysis.positions import Positions

    positions = Positions(module)
    targets = [edit.target for plan in plans for edit in plan.edits]
    positions.resolve(targets)
    return {id(t): positions.span(t) for t in targets}


def choose(module: cst.Module, pairs: Sequence[Tuple[Diagnostic, FixPlan]]) -> List[Tuple[Diagnostic, FixPlan]]:
    """The fixes of one round: in source order, skipping any whose edits overlap an edit
    already chosen (it is applied in a later round, on the re-linted text)."""
    spans = _spans(module, [plan for _, plan in pairs])
    chosen: List[Tuple[Diagnostic, FixPlan]] = []
    taken: List[Tuple[Tuple[int, int], Tuple[int, int]]] = []
    seen_plans = set()
    for diagnostic, plan in pairs:
        if id(plan) in seen_plans:
            continue
        mine = [spans[id(edit.target)] for edit in plan.edits]
        if any(not (end <= other_start or other_end <= start) for start, end in mine for other_start, other_end in taken):
            continue
        chosen.append((diagnostic, plan))
        seen_plans.add(id(plan))
        taken.extend(mine)
    return chosen


def verify(data: bytes, path: str) -> Optional[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(data, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def fix_source(
    data: bytes,
    path: str,
    project: "Project",
    rules: "RuleClasses",
    unsafe: bool = False,
    allowed: Optional[Callable[[Sequence[Diagnostic], bytes], Sequence[Diagnostic]]] = None,
) -> FixOutcome:
    """Apply the fixes of `rules` to `data` (SAFE ones, and UNSAFE ones with `unsafe`) until
    none applies, at most MAX_ROUNDS rounds. `allowed(diagnostics, text)` keeps the findings
    that may be fixed (not suppressed). Never raises for bad input."""
    from sessionlint.lint import diagnostics_with_plans, parse_and_lint, run_rules

    fixed: "Counter[str]" = Counter()
    current = data
    problem = None
    for _round in range(MAX_ROUNDS):
        try:
            module = cst.parse_module(current)
        except Exception:  # the input does not parse: nothing to fix
            break
        mentions = b"sqlalchemy" in current or b"sqlmodel" in current
        pairs = [(d, p) for d, p in diagnostics_with_plans(run_rules(module, path, project, rules, mentions)) if p is not None and is_applied(p, unsafe)]
        if allowed is not None and pairs:
            keep = {id(d) for d in allowed([d for d, _ in pairs], current)}
            pairs = [(d, p) for d, p in pairs if id(d) in keep]
        if not pairs:
            break
        chosen = choose(module, pairs)
        rendered = module.visit(_Apply([plan for _, plan in chosen])).bytes
        failure = verify(rendered, path)
        if failure is not None:
            names = ", ".join(sorted({d.code for d, _ in chosen}))
            problem = f"a fix for {names} produced invalid code ({failure}); kept the last good version"
            break
        if rendered == current:
            break
        current = rendered
        fixed.update(d.code for d, _ in chosen)
    result = parse_and_lint(current, path, project, rules)
    if problem is None and fixed and _round == MAX_ROUNDS - 1:
        remaining = [d for d in result.diagnostics if d.fix is not None and is_applied_fix(d, unsafe)]
        if remaining:
            problem = f"fixes did not converge after {MAX_ROUNDS} rounds; kept the last round's version"
    return FixOutcome(current, result, fixed, problem)


def single_fixes(data: bytes, path: str, project: "Project", rules: "RuleClasses") -> List[Tuple[Diagnostic, bytes]]:
    """Each finding of `data` that has a fix (safe or unsafe), with the text that fix alone
    gives (one parse and one traversal for all of them; a fix whose text does not compile
    is left out). What an editor offers as quick fixes."""
    from sessionlint.lint import diagnostics_with_plans, run_rules

    try:
        module = cst.parse_module(data)
    except Exception:  # the input does not parse: nothing to fix
        return []
    mentions = b"sqlalchemy" in data or b"sqlmodel" in data
    found = []
    for diagnostic, plan in diagnostics_with_plans(run_rules(module, path, project, rules, mentions)):
        if plan is None or plan.applicability is Applicability.DISPLAY_ONLY:
            continue
        rendered = module.visit(_Apply([plan])).bytes
        if rendered != data and verify(rendered, path) is None:
            found.append((diagnostic, rendered))
    return found


def is_applied_fix(diagnostic: Diagnostic, unsafe: bool) -> bool:
    """The same test as `is_applied`, on the plain `Fix` a diagnostic carries."""
    return is_fixable(diagnostic, unsafe)
