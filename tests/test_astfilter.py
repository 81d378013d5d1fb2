"""The `ast` second-stage prefilter: it may keep a file without findings, never drop one
with a finding."""

import ast
import glob
import os

import pytest

from helpers import FIXTURES, parse_expectations
from sessionlint.analysis.astfilter import may_hand_session_over, may_leave_failed_transaction


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


def fixtures_expecting(code: str):
    """(path, bytes) of every fixture that expects a finding of `code`."""
    for path in FIXTURE_FILES:
        with open(path, "rb") as handle:
            data = handle.read()
        if code.encode() in data and any(c == code for c, _, _ in parse_expectations(data.decode("utf-8"))):
            yield path, data


def test_every_fixture_with_a_missing_rollback_passes() -> None:
    checked = 0
    for path, data in fixtures_expecting("SL007"):
        checked += 1
        assert may_leave_failed_transaction(ast.parse(data)), path
    assert checked >= 10


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def f(tasks):\n    with SessionLocal() as db:\n        tasks.add_task(send, db)\n", True),
        ("async def f(db: SessionDep, tasks):\n    tasks.add_task(send, item=db)\n", True),
        ("def f(db=Depends(get_db)):\n    Thread(target=work, args=(db,)).start()\n", True),
        ("CACHE = {}\ndef f(db=Depends(get_db)):\n    CACHE[1] = db\n", True),
        ("class Registry:\n    pass\ndef f(db=Depends(get_db)):\n    Registry.current = db\n", True),
        ("def f():\n    global current\n    with Session(e) as db:\n        current = db\n", True),
        ("with Session(e) as db:\n    pool.submit(work, *[db])\n", True),
        # not owned: a plain parameter, a local; passed by attribute or in a lambda
        ("def f(instance):\n    Thread(target=run, args=(instance,)).start()\n", False),
        ("def f():\n    db = make()\n    pool.submit(work, db)\n", False),
        ("def f(db: Session):\n    pool.submit(work, db.info)\n", False),
        ("def f(db: Session):\n    pool.submit(lambda: db)\n", False),
        ("def f(db: Session):\n    local = db\n", False),
        ("def f(db: Session):\n    cache = {}\n    cache[1] = db\n    mock.value = db\n", False),
        ("with Session(e) as db:\n    run(db)\n", False),
    ],
)
def test_handoff_snippets(source: str, expected: bool) -> None:
    assert may_hand_session_over(ast.parse(source)) is expected


def test_every_fixture_with_a_handoff_passes() -> None:
    checked = 0
    for path, data in fixtures_expecting("SL008"):
        checked += 1
        assert may_hand_session_over(ast.parse(data)), path
    assert checked >= 3
