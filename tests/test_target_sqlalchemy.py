"""The advice each rule gives follows `target-sqlalchemy`: below 1.4 no help offers `with` on
a session (it raises there) and none names an async factory; `async_sessionmaker` only from
2.0; `engine.raw_connection()` gets `with` only from 2.0.47. SL007 proposes a savepoint where
the function does not own the transaction. (The fixes: tests/fixtures/fix/*_sa*.py.)"""

import textwrap

import pytest

from sessionlint.api import lint_source
from sessionlint.config import Settings


def helps(source, target=None):
    settings = Settings(select=("ALL",), target_sqlalchemy=target)
    result = lint_source(textwrap.dedent(source), "app.py", settings)
    assert result.error is None, result.error
    return [(d.code, d.start.line, d.help) for d in result.diagnostics]


SESSIONS = """\
    from app.db import SessionLocal


    def rename(user, name):
        db = SessionLocal()
        db.merge(user).name = name
        db.commit()


    def get_db():
        db = SessionLocal()
        yield db


    def count():
        return SessionLocal().query(User).count()


    def save(item):
        db = SessionLocal()
        db.add(item)
        db.commit()
        db.close()


    shared = SessionLocal()


    def first_user():
        return shared.query(User).first()
    """


def test_session_advice_below_14():
    assert helps(SESSIONS, (1, 3)) == [
        ("SL001", 5, "Put the code after `db = SessionLocal()` in `try:` and call `db.close()` in `finally:`"),
        ("SL001", 11, "Wrap the `yield db` in `try:` and call `db.close()` in `finally:`"),
        ("SL001", 16, "Bind it (`db = SessionLocal()`), call the method on `db` in `try:` and `db.close()` in `finally:`"),
        ("SL002", 20, "Call `db.close()` in a `finally:` block"),
        ("SL009", 26, "Create a session per unit of work (closed in a `finally:`), or share the factory"),
    ]


@pytest.mark.parametrize("target", [(1, 4), None])
def test_session_advice_from_14(target):
    assert helps(SESSIONS, target) == [
        ("SL001", 5, "Use `with SessionLocal() as db:`"),
        ("SL001", 11, "Use `with SessionLocal() as db: yield db`"),
        ("SL001", 16, "Use `with SessionLocal() as db:` and call the method on `db`"),
        ("SL002", 20, "Call `db.close()` in a `finally:` block, or use `with SessionLocal() as db:`"),
        ("SL009", 26, "Create a session per unit of work (`with SessionLocal() as db:`), or share the factory"),
    ]


DEPENDENCY = """\
    from fastapi import Depends, FastAPI

    from app.db import SessionLocal

    app = FastAPI()


    def get_db():
        return SessionLocal()


    @app.get("/users")
    def users(db=Depends(get_db)):
        return []
    """


def test_dependency_advice_follows_the_target():
    assert helps(DEPENDENCY, (1, 3)) == [
        ("SL001", 9, "Yield it instead: `db = SessionLocal()`, then `yield db` in `try:` and `db.close()` in `finally:`")
    ]
    assert helps(DEPENDENCY) == [("SL001", 9, "Yield it instead: `with SessionLocal() as db: yield db`")]


SYNC_IN_ASYNC_WITH = """\
    from sqlalchemy.orm import sessionmaker

    maker = sessionmaker()


    async def load():
        async with maker() as db:
            pass
    """


@pytest.mark.parametrize(
    "target, expected",
    [
        ((1, 3), "Call `maker()` without `async with` and close the session in a `finally:` block"),
        ((1, 4), "Use `with maker() as ...:`, or an async factory (`sessionmaker(class_=AsyncSession)`)"),
        ((2, 0), "Use `with maker() as ...:`, or an async factory (`async_sessionmaker`)"),
    ],
)
def test_async_advice_only_from_14(target, expected):
    assert helps(SYNC_IN_ASYNC_WITH, target) == [("SL006", 7, expected)]


RAW = """\
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")


    def has(dialect, name):
        return dialect.has_table(engine.raw_connection(), name)
    """


def test_raw_connection_advice_from_2_0_47():
    lost = "Bind it (`conn = engine.raw_connection()`), pass `conn` in `try:` and call `conn.close()` in `finally:`"
    assert helps(RAW, (2, 0)) == [("SL010", 7, lost)]
    assert helps(RAW, (2, 0, 46)) == [("SL010", 7, lost)]
    assert helps(RAW, (2, 0, 47)) == [("SL010", 7, "Use `with engine.raw_connection() as conn:` and pass `conn`")]


ROLLBACK = """\
    from app.db import SessionLocal


    def import_rows(db, rows):
        for row in rows:
            try:
                db.add(Row(**row))
                db.commit()
            except IntegrityError:
                log.warning("duplicate %s", row)


    class Importer:
        def __init__(self):
            self.session = SessionLocal()

        def one(self, row):
            try:
                self.session.add(Row(**row))
                self.session.commit()
            except IntegrityError:
                pass


    def own(row):
        db = SessionLocal()
        try:
            db.add(Row(**row))
            db.commit()
        except IntegrityError:
            log.warning("duplicate %s", row)
        db.refresh(row)
        db.close()
    """


def test_savepoint_where_the_function_does_not_own_the_transaction():
    found = [h for h in helps(ROLLBACK) if h[0] == "SL007"]
    assert found == [
        (
            "SL007",
            9,
            "Run the statements that may fail in `with db.begin_nested():` (a savepoint: only they roll back, "
            "the rest of the transaction stays) and commit after it, or call `db.rollback()` first in the `except` block, or re-raise",
        ),
        (
            "SL007",
            21,
            "Run the statements that may fail in `with self.session.begin_nested():` (a savepoint: only they roll back, "
            "the rest of the transaction stays) and commit after it, or call `self.session.rollback()` first in the `except` block, or re-raise",
        ),
        ("SL007", 30, "Call `db.rollback()` first in the `except` block, or re-raise"),
    ]
