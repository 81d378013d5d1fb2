"""Message wording where it carries a fact the code location does not: which line raises,
and whether the close is outside any `finally` or in one whose `try` starts too late."""

import os

from helpers import FIXTURES, lint_files

from sessionlint.config import Settings


def messages(relative: str):
    path = os.path.join(FIXTURES, relative)
    (result,) = lint_files([path], Settings(select=("ALL",))).values()
    return [(d.code, d.start.line, d.message) for d in result.diagnostics]


def test_close_in_a_finally_whose_try_starts_late():
    assert messages("SL010/try_starts_after_checkout.py") == [
        (
            "SL010",
            13,
            "connection `connection` is not closed if line 14 raises: it runs before the `try` "
            "whose `finally` closes it at line 19",
        )
    ]


def test_close_outside_any_finally():
    found = messages("SL010/early_exit_or_close_not_in_finally.py")
    assert any(m.endswith("is not in a `finally`") for code, _, m in found if code == "SL010")
