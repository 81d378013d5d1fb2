"""Rules by code, name and prefix, without importing them (`lint.rule_classes` does).

`--list-rules`, `--help` and `--version` must not pay for importing libcst, so the
registry describes every rule as plain data; `tests/test_rule_contract.py` checks that this
table matches the rule classes in `sessionlint.rules`.
"""

import functools
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class RuleInfo:
    code: str
    name: str
    summary: str
    fix_availability: str  # "none", "sometimes", "always"
    class_name: str
    # Text tests a file must pass for the rule to have anything to say (engine.TRIGGERS);
    # mirrors the rule class's TRIGGERS so that cached runs need not import the rules.
    triggers: Tuple[str, ...] = ("factory_call",)


RULES: Tuple[RuleInfo, ...] = (
    RuleInfo(
        "SL001", "session-not-closed", "Session created without a guaranteed close", "sometimes", "SessionNotClosed", ("factory_call", "maker")
    ),
    RuleInfo(
        "SL002",
        "close-not-in-finally",
        "Session closed on the normal path only, not when an exception is raised",
        "sometimes",
        "CloseNotInFinally",
    ),
    RuleInfo(
        "SL003",
        "use-after-close",
        "Session used after it was closed or after its `with` block ended",
        "none",
        "UseAfterClose",
        ("factory_call", "connection", "lazy_query"),
    ),
    RuleInfo("SL004", "engine-per-request", "Engine (and its connection pool) created for every request", "sometimes", "EnginePerRequest", ("engine",)),
    RuleInfo(
        "SL005",
        "sessionmaker-per-request",
        "sessionmaker or scoped_session built for every request",
        "sometimes",
        "SessionmakerPerRequest",
        ("maker",),
    ),
    RuleInfo("SL006", "async-not-awaited", "Coroutine method of an async session called without `await`", "sometimes", "AsyncNotAwaited", ("factory_call", "async")),
    RuleInfo(
        "SL007",
        "missing-rollback",
        "Failed commit caught without `rollback()`, then the session is used again",
        "sometimes",
        "MissingRollback",
        ("commit",),
    ),
    RuleInfo(
        "SL008",
        "session-escapes-scope",
        "Session handed to a background task, thread or task that outlives its scope",
        "none",
        "SessionEscapesScope",
        ("handoff",),
    ),
    RuleInfo(
        "SL009",
        "module-level-session",
        "Session created at import time and shared by every request and thread",
        "none",
        "ModuleLevelSession",
    ),
    RuleInfo(
        "SL010",
        "connection-not-closed",
        "Connection checked out of the pool without a guaranteed close",
        "sometimes",
        "ConnectionNotClosed",
        ("connection",),
    ),
)

# Codes of the tool itself (SL1xx): no visitor, produced by the engine; off unless selected.
TOOL_RULES: Tuple[RuleInfo, ...] = (
    RuleInfo(
        "SL100",
        "unused-suppression",
        "`# noqa` or `# sessionlint: ignore[...]` comment that suppresses nothing",
        "none",
        "",
        (),
    ),
)
RULES = RULES + TOOL_RULES

DEFAULT_SELECT: Tuple[str, ...] = ("SL0",)


class UnknownSelector(ValueError):
    def __init__(self, selector: str) -> None:
        super().__init__(selector)
        self.selector = selector


def matches(selector: str, rule: RuleInfo) -> bool:
    """A selector is a code (`SL001`), a prefix (`SL0`, `SL`), `ALL`, or a rule name."""
    selector = selector.strip()
    if selector.upper() == "ALL":
        return True
    if selector == rule.name:
        return True
    return rule.code.startswith(selector.upper())


def validate_selectors(selectors: Iterable[str]) -> None:
    for selector in selectors:
        if not any(matches(selector, rule) for rule in RULES):
            raise UnknownSelector(selector)


def _specificity(selector: str, rule: RuleInfo) -> int:
    """-1 when `selector` does not match `rule`; otherwise how specific it is."""
    if not matches(selector, rule):
        return -1
    selector = selector.strip()
    if selector.upper() == "ALL":
        return 0
    if selector == rule.name:
        return 100
    return len(selector)


def select_rules(select: Optional[Sequence[str]], ignore: Sequence[str] = ()) -> List[RuleInfo]:
    """Enabled rules: the selected ones minus the ignored ones. When a rule is both selected
    and ignored, the more specific selector wins, and `ignore` wins a tie (as in Ruff)."""
    return list(_select(tuple(select) if select else None, tuple(ignore)))


@functools.lru_cache(maxsize=256)
def _select(select: Optional[Tuple[str, ...]], ignore: Tuple[str, ...]) -> Tuple[RuleInfo, ...]:
    selectors = list(select) if select else list(DEFAULT_SELECT)
    validate_selectors(selectors)
    validate_selectors(ignore)
    chosen = []
    for rule in RULES:
        selected = max((_specificity(s, rule) for s in selectors), default=-1)
        ignored = max((_specificity(s, rule) for s in ignore), default=-1)
        if selected >= 0 and selected > ignored:
            chosen.append(rule)
    return tuple(chosen)


def by_code(code: str) -> Optional[RuleInfo]:
    for rule in RULES:
        if rule.code == code.upper() or rule.name == code:
            return rule
    return None
