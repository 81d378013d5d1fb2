"""Each rule's documentation as one Markdown page: what `--explain` prints, what
`docs/rules/SLxxx.md` holds (`scripts/rule_pages.py` writes them) and the help SARIF
carries. Imports the rules, so libcst: only the commands that show documentation use it."""

import inspect
from typing import Dict

from sessionlint.registry import RULES, RuleInfo, by_code

# SL100 has no rule class (the engine reports it while it applies suppressions), so its
# documentation lives here, in the same sections as the rules' docstrings.
UNUSED_SUPPRESSION = """
## What it does
Finds `# noqa: SLxxx` and `# sessionlint: ignore[SLxxx]` comments (and the file-wide
`# sessionlint: noqa: SLxxx`) that name a code no finding on their line (or file) has, and
`# sessionlint: ignore` comments that suppress nothing at all. Codes of other tools in the
same `noqa` list are left alone, and a bare `# noqa` is never reported: it is as likely to
be there for another tool. Off unless selected (`--extend-select SL100`).

## Why is this bad?
A suppression outlives the code it was written for. Once the session it excused is closed
properly, the comment only hides the next real finding on that line.

## Example
```python
def count_users():
    with SessionLocal() as db:  # noqa: SL001
        return db.query(User).count()
```

Use instead:
```python
def count_users():
    with SessionLocal() as db:
        return db.query(User).count()
```

## Fix safety
The fix removes the unused codes from the comment, or the whole comment when nothing is
left in it that another tool could use. It is safe: it changes only a comment.

## Known limitations
- Only codes of enabled rules are judged: `# noqa: SL004` under `--ignore SL004` is not
  reported, since the rule could not have matched.

## References
- Ruff's `unused-noqa` (RUF100), the model for this rule:
  https://docs.astral.sh/ruff/rules/unused-noqa/
"""


def page(info: RuleInfo) -> str:
    """The Markdown page of one rule: title, summary, fix availability, documentation."""
    if info.class_name:
        from sessionlint.rules import ALL_RULES

        (rule,) = [cls for cls in ALL_RULES if cls.code == info.code]
        body = inspect.cleandoc(rule.__doc__ or "")
    else:
        body = inspect.cleandoc(UNUSED_SUPPRESSION)
    return f"# {info.code} {info.name}\n\n{info.summary}. Fix: {info.fix_availability}.\n\n{body}\n"


def page_of(code: str) -> str:
    info = by_code(code)
    if info is None:
        raise KeyError(code)
    return page(info)


def pages() -> Dict[str, str]:
    """Every rule's page by code, in the registry's order."""
    return {info.code: page(info) for info in RULES}
