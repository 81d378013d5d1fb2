"""The `ast` second-stage prefilter: it may keep a file without findings, never drop one
with a finding."""

import ast
import glob
import os

import pytest

from helpers import FIXTURES, parse_expectations
from sessionlint.analysis.astfilter import may_leave_failed_transaction


def check(source: str) -> bool:
    return may_leave_failed_transaction(ast.parse(source))


@pytest.mark.parametrize(
    "source, expected",
    [
        ("try:\n    db.commit()\nexcept IntegrityError:\n    log(1)\n", True),
        ("try:\n    db.flush()\nexcept:\n    pass\n", True),
        ("try:\n    db.commit()\nexcept (KeyError, exc.IntegrityError):\n    pass\n", True),
        ("try:\n    db.commit()\nexcept Exception:\n    other.rollback()\n", True),
        ("try:\n    a.commit()\n    b.commit()\nexcept Exception:\n    a.rollback()\n", True),
        ("try:\n    db.commit()\nexcept KeyError:\n    pass\n", False),
        ("try:\n    db.commit()\nexcept Exception:\n    raise\n", False),
        ("try:\n    self.s.commit()\nexcept Exception:\n    self.s.rollback()\n    log(1)\n", False),
        ("try:\n    db.add(x)\nexcept Exception:\n    pass\n", False),
        ("db.commit()\ntry:\n    x()\nexcept Exception:\n    pass\n", False),
        ("def f():\n    for r in rows:\n        try:\n            db.commit()\n        except Exception:\n            continue\n", True),
    ],
)
def test_snippets(source: str, expected: bool) -> None:
    assert check(source) is expected


FIXTURE_FILES = sorted(
    p for p in glob.glob(os.path.join(FIXTURES, "**", "*.py"), recursive=True) if not p.endswith(".fixed.py")
)


def test_every_fixture_with_a_missing_rollback_passes() -> None:
    checked = 0
    for path in FIXTURE_FILES:
        with open(path, "rb") as handle:
            data = handle.read()
        if b"SL007" in data and any(code == "SL007" for code, _, _ in parse_expectations(data.decode("utf-8"))):
            checked += 1
            assert may_leave_failed_transaction(ast.parse(data)), path
    assert checked >= 10
