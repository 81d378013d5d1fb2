"""The contract every rule keeps (CONTRIBUTING.md): codes, names, registration, docs, README."""

import importlib
import inspect
import os
import pkgutil
import re

import pytest
from helpers import lint_text

import sessionlint.rules as rules_package
from sessionlint.config import Settings
from sessionlint.diagnostics import FixAvailability
from sessionlint.registry import RULES
from sessionlint.rules import ALL_RULES
from sessionlint.rules.base import Invalid, Rule, Valid

ROOT = os.path.dirname(os.path.dirname(__file__))
SECTIONS = ["## What it does", "## Why is this bad?", "## Example", "## Fix safety", "## Known limitations", "## References", "## Options"]


def test_codes_and_names_are_unique_and_well_formed() -> None:
    codes = [r.code for r in ALL_RULES]
    names = [r.name for r in ALL_RULES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    assert codes == sorted(codes)
    for rule in ALL_RULES:
        assert re.fullmatch(r"SL\d{3}", rule.code)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
        # Names state the bad pattern, never advice ("use-x", "prefer-y"); "use-after-close"
        # is the pattern's own name, as in use-after-free.
        assert not rule.name.startswith(("no-", "avoid-", "prefer-"))
        assert not rule.name.startswith("use-") or rule.name.startswith("use-after-")
        camel = "".join(part.capitalize() for part in rule.name.split("-"))
        assert rule.__name__ == camel
        assert rule.__module__ == f"sessionlint.rules.{rule.name.replace('-', '_')}"


def test_every_rule_module_is_registered() -> None:
    registered = {r.__module__ for r in ALL_RULES}
    for info in pkgutil.iter_modules(rules_package.__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sessionlint.rules.{info.name}")
        classes = [c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, Rule) and c is not Rule and c.__module__ == module.__name__]
        assert classes, info.name
        assert module.__name__ in registered, f"{info.name} is not in ALL_RULES"


def test_registry_table_matches_rule_classes() -> None:
    """`--list-rules` reads the registry without importing the rules: it must not drift."""
    table = [(r.code, r.name, r.summary, r.fix_availability, r.class_name, r.triggers) for r in RULES if r.class_name]
    classes = [(r.code, r.name, r.summary, r.fix_availability.value, r.__name__, r.TRIGGERS) for r in ALL_RULES]
    assert table == classes


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_docstring_sections_in_order(rule) -> None:
    doc = inspect.cleandoc(rule.__doc__ or "")
    present = [s for s in SECTIONS if re.search(rf"^{re.escape(s)}\s*$", doc, re.MULTILINE)]
    positions = [doc.index(s) for s in present]
    assert positions == sorted(positions)
    for required in ("## What it does", "## Why is this bad?", "## Example", "## Known limitations", "## References"):
        assert required in present, required
    assert "Use instead:" in doc
    fixable = rule.fix_availability is not FixAvailability.NONE
    assert ("## Fix safety" in present) == fixable


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_docstring_example_fires_and_use_instead_is_silent(rule) -> None:
    doc = inspect.cleandoc(rule.__doc__ or "")
    example_part, use_instead_part = doc.split("Use instead:", 1)
    bad = re.findall(r"```python\n(.*?)```", example_part.split("## Example", 1)[1], re.DOTALL)[0]
    good = re.findall(r"```python\n(.*?)```", use_instead_part, re.DOTALL)[0]
    assert [d.code for d in lint_text(bad, select=[rule.code])] == [rule.code]
    assert lint_text(good, select=[rule.code]) == []


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_has_valid_and_invalid_examples(rule) -> None:
    assert any(isinstance(e, Valid) for e in rule.examples)
    assert any(isinstance(e, Invalid) for e in rule.examples)


def readme_rule_table() -> str:
    lines = ["| Code | Name | Fix | Summary |", "| --- | --- | --- | --- |"]
    for rule in RULES:
        lines.append(f"| {rule.code} | `{rule.name}` | {rule.fix_availability} | {rule.summary} |")
    return "\n".join(lines)


def test_readme_rule_table_is_current() -> None:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    start = readme.index("<!-- rules:start -->") + len("<!-- rules:start -->")
    end = readme.index("<!-- rules:end -->")
    assert readme[start:end].strip() == readme_rule_table(), "README rule table is stale: regenerate it from the registry"


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_fix_availability_matches_the_fixes_emitted(rule) -> None:
    """A rule that says it can fix shows a fix in its examples; one that says it cannot
    emits none on any fixture; every finding with a fix has help."""
    import glob

    from helpers import FIXTURES, lint_files

    paths = sorted(glob.glob(os.path.join(FIXTURES, "SL*", "*.py")) + glob.glob(os.path.join(FIXTURES, "fix", "*.py")))
    found = [d for result in lint_files(paths, Settings(select=(rule.code,))).values() for d in result.diagnostics]
    with_fixes = [d for d in found if d.fix is not None]
    if rule.fix_availability is FixAvailability.NONE:
        assert with_fixes == []
    else:
        assert with_fixes, "declared fixable, but no fixture gets a fix"
        assert any(isinstance(e, Invalid) and e.fixed for e in rule.examples)
    assert all(d.help for d in with_fixes)
