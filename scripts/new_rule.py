"""Scaffold a new rule: its file, its two registrations, and a fixture to fill in.

    python scripts/new_rule.py SL011 session-held-across-await "Session held across an `await` of unrelated work"

writes sessionlint/rules/session_held_across_await.py (a Rule with the documentation sections
in order and one Valid and one Invalid example to replace), registers it in
sessionlint/rules/__init__.py (ALL_RULES, sorted by code) and sessionlint/registry.py
(RULES, for --list-rules without importing the rules), and creates
tests/fixtures/SL011/example.py. Then: write the rule, the examples and the fixtures, run
`pytest tests/test_rule_contract.py tests/test_fixtures.py`, and add the rule to README's
table (the contract test prints the row it expects).
"""

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEMPLATE = '''import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector
from sessionlint.diagnostics import FixAvailability
from sessionlint.rules.base import Invalid, Rule, Valid


class {cls}(Rule):
    """## What it does
    TODO: what the rule finds, in two or three sentences.

    ## Why is this bad?
    TODO: what goes wrong at run time (pool exhausted, data lost, an error), with the
    SQLAlchemy or framework behaviour behind it.

    ## Example
    ```python
    TODO
    ```

    Use instead:
    ```python
    TODO
    ```

    ## Known limitations
    - TODO: what the rule cannot see, and what it stays silent about.

    ## References
    - TODO: the SQLAlchemy or framework documentation.
    """

    code = "{code}"
    name = "{name}"
    summary = "{summary}"
    fix_availability = FixAvailability.NONE
    METADATA_DEPENDENCIES = (LifecycleCollector,)
    examples = (
        Valid("TODO = 1\\n", name="todo_valid"),
        Invalid("TODO = 1\\n", name="todo_invalid", expect=[("{code}", 1, 1)]),
    )

    def leave_Module(self, node: cst.Module) -> None:
        """TODO: read the facts of `self.context.lifecycle` (or another collector declared in
        METADATA_DEPENDENCIES) and call `self.report(node, message, help=...)`."""
'''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("code", help="SL0xx for sessions, connections and engines")
    parser.add_argument("name", help="kebab-case, naming the bad pattern")
    parser.add_argument("summary", help="one line, no period")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"SL\d{3}", args.code):
        parser.error("the code is SL and three digits")
    if not re.fullmatch(r"[a-z]+(-[a-z]+)*", args.name):
        parser.error("the name is kebab-case")
    module = args.name.replace("-", "_")
    cls = "".join(part.capitalize() for part in args.name.split("-"))
    rule_path = os.path.join(ROOT, "sessionlint", "rules", f"{module}.py")
    if os.path.exists(rule_path):
        parser.error(f"{rule_path} exists")
    with open(rule_path, "w", encoding="utf-8") as handle:
        handle.write(TEMPLATE.format(cls=cls, code=args.code, name=args.name, summary=args.summary.replace('"', '\\"')))

    init_path = os.path.join(ROOT, "sessionlint", "rules", "__init__.py")
    with open(init_path, encoding="utf-8") as handle:
        init = handle.read()
    imports = sorted(set(re.findall(r"^from sessionlint\.rules\.\w+ import \w+$", init, re.M)) | {f"from sessionlint.rules.{module} import {cls}"})
    init = re.sub(r"(?:^from sessionlint\.rules\.\w+ import \w+\n)+", "\n".join(imports) + "\n", init, count=1, flags=re.M)
    entries = re.search(r"ALL_RULES: Tuple\[RuleClass, \.\.\.\] = \(\n((?:    \w+,\n)+)\)", init)
    assert entries, "ALL_RULES not found"
    names = [line.strip().rstrip(",") for line in entries.group(1).splitlines()]
    codes = {}
    for name in names:
        found = re.search(rf"^from sessionlint\.rules\.(\w+) import {name}$", init, re.M)
        with open(os.path.join(ROOT, "sessionlint", "rules", f"{found.group(1)}.py"), encoding="utf-8") as handle:
            codes[name] = re.search(r'code = "(SL\d{3})"', handle.read()).group(1)
    codes[cls] = args.code
    ordered = sorted(codes, key=codes.get)
    init = init.replace(entries.group(0), "ALL_RULES: Tuple[RuleClass, ...] = (\n" + "".join(f"    {n},\n" for n in ordered) + ")")
    with open(init_path, "w", encoding="utf-8") as handle:
        handle.write(init)

    registry_path = os.path.join(ROOT, "sessionlint", "registry.py")
    with open(registry_path, encoding="utf-8") as handle:
        registry = handle.read()
    marker = "\n)\n\n# Codes of the tool itself"
    row = f'\n    RuleInfo("{args.code}", "{args.name}", "{args.summary}", "none", "{cls}"),'
    registry = registry.replace(marker, row + marker, 1)
    with open(registry_path, "w", encoding="utf-8") as handle:
        handle.write(registry)

    fixtures = os.path.join(ROOT, "tests", "fixtures", args.code)
    os.makedirs(fixtures, exist_ok=True)
    with open(os.path.join(fixtures, "example.py"), "w", encoding="utf-8") as handle:
        handle.write(f"# Idiom: TODO (docs/IDIOMS.md). Mark each finding's line with `# expect: {args.code}`.\n")
    print(f"wrote {os.path.relpath(rule_path, ROOT)}, registered {cls}, created tests/fixtures/{args.code}/example.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
