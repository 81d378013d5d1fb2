"""Every rule's `examples`: Valid ones produce no finding of that rule, Invalid ones exactly
their `expect`, and their `fixed` text is what `--fix --unsafe-fixes` makes of them."""

import pytest
from helpers import fix_bytes, lint_text, verify_fix

from sessionlint.rules import ALL_RULES
from sessionlint.rules.base import Invalid, Valid

CASES = [(rule, example) for rule in ALL_RULES for example in rule.examples]


@pytest.mark.parametrize("rule,example", CASES, ids=[f"{r.code}-{e.name}" for r, e in CASES])
def test_example(rule, example) -> None:
    found = [(d.code, d.start.line, d.start.column) for d in lint_text(example.code, select=[rule.code])]
    if isinstance(example, Valid):
        assert found == []
    else:
        assert isinstance(example, Invalid)
        assert sorted(found) == sorted(tuple(e) for e in example.expect)
        if example.fixed is not None:
            outcome = fix_bytes(example.code.encode(), unsafe=True)
            assert outcome.source.decode() == example.fixed
            verify_fix(example.code.encode(), outcome.source, unsafe=True)
