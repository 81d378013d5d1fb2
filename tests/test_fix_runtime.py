"""Fixes checked at run time with real SQLAlchemy (sqlite): a fix that sessionlint emits
leaves what the program does unchanged but for the close, and for each shape where it emits
none, the naive rewrite is shown to change the program's mechanics (which is why)."""

import textwrap

import pytest

sqlalchemy = pytest.importorskip("sqlalchemy")

from sessionlint.api import fix_source  # noqa: E402
from sessionlint.config import Settings  # noqa: E402

PRELUDE = textwrap.dedent(
    """\
    from sqlalchemy import ForeignKey, String, create_engine, select, text
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker


    class Base(DeclarativeBase):
        pass


    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(30), unique=True)
        active: Mapped[bool] = mapped_column(default=True)
        orders: Mapped[list["Order"]] = relationship(back_populates="user")


    class Order(Base):
        __tablename__ = "orders"
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
        user: Mapped[User] = relationship(back_populates="orders")


    engine = create_engine(DATABASE_URL)
    Base.metadata.create_all(engine)
    SessionLocal = sessionmaker(bind=engine)
    with SessionLocal() as seed:
        seed.add_all([User(name="ann", orders=[Order()]), User(name="bob", active=False)])
        seed.commit()
    """
)


def program(tmp_path, body, name="db"):
    url = f"sqlite:///{tmp_path / (name + '.sqlite')}"
    return f"DATABASE_URL = {url!r}\n" + PRELUDE + "\n\n" + textwrap.dedent(body)


def run(source, tmp_path, name):
    """Execute the program fresh (new database) and return what it recorded in `OUT`."""
    for path in tmp_path.glob(f"{name}*.sqlite"):
        path.unlink()
    scope = {"__name__": "program", "OUT": []}
    exec(compile(source, f"{name}.py", "exec"), scope)
    return scope["OUT"]


def fixed(source):
    return fix_source(source, "program.py", Settings(select=("ALL",)), unsafe=True)


# --- fixes that are emitted: same results -------------------------------------------------


EMITTED = {
    "with-count": """
        def count_active():
            db = SessionLocal()
            return db.query(User).filter_by(active=True).count()

        OUT.append(count_active())
        """,
    "with-commit": """
        def add(name):
            db = SessionLocal()
            db.add(User(name=name))
            db.commit()

        add("cy")
        with SessionLocal() as check:
            OUT.append(sorted(check.scalars(select(User.name))))
        """,
    "rollback-first": """
        def save(db, name):
            try:
                db.add(User(name=name))
                db.commit()
            except Exception:
                OUT.append("failed")
            OUT.append(db.scalar(select(User.name).where(User.name == "ann")))

        with SessionLocal() as s:
            save(s, "ann")
        """,
    # on the default target (2.0) the DBAPI connection is closed in `finally:` (`with` on it
    # raises before 2.0.47)
    "raw-connection-finally": """
        def table_count():
            raw = engine.raw_connection()
            cursor = raw.cursor()
            cursor.execute("select count(*) from users")
            OUT.append(cursor.fetchone()[0])

        table_count()
        """,
    "connection-with": """
        def ping():
            conn = engine.connect()
            conn.execute(text("select 1"))
            return True

        OUT.append(ping())
        """,
}


@pytest.mark.parametrize("case", sorted(EMITTED))
def test_an_emitted_fix_keeps_the_results(tmp_path, case):
    source = program(tmp_path, EMITTED[case])
    outcome = fixed(source)
    assert outcome.fixed, "expected a fix"
    before = _outcome(source, tmp_path)
    after = _outcome(outcome.source.decode(), tmp_path)
    if case == "rollback-first":
        # Without the rollback the session is unusable after the failed commit.
        assert before[0] == "PendingRollbackError" and after == ("ok", ["failed", "ann"])
    else:
        assert before == after and before[0] == "ok"


def _outcome(source, tmp_path):
    try:
        return "ok", run(source, tmp_path, "db")
    except Exception as error:  # noqa: BLE001 - the kind of failure is the observation
        return type(error).__name__, None


# --- shapes without a fix: the naive rewrite changes the mechanics -------------------------

NOT_FIXED = {
    "detached-object": (
        """
        def find(name):
            db = SessionLocal()
            return db.scalars(select(User).where(User.name == name)).one()

        OUT.append(len(find("ann").orders))
        """,
        """
        def find(name):
            with SessionLocal() as db:
                return db.scalars(select(User).where(User.name == name)).one()

        OUT.append(len(find("ann").orders))
        """,
    ),
    "commit-after-nested-block": (
        """
        def record(name, enabled):
            if enabled:
                db = SessionLocal()
                db.add(User(name=name))
            db.commit()

        record("cy", True)
        with SessionLocal() as check:
            OUT.append(sorted(check.scalars(select(User.name))))
        """,
        """
        def record(name, enabled):
            if enabled:
                with SessionLocal() as db:
                    db.add(User(name=name))
            db.commit()

        record("cy", True)
        with SessionLocal() as check:
            OUT.append(sorted(check.scalars(select(User.name))))
        """,
    ),
    "session-class-commits-on-exit": (
        """
        class AppSession(Session):
            def __exit__(self, *exc):
                if exc[0] is None:
                    self.commit()
                return super().__exit__(*exc)


        def peek():
            db = AppSession(bind=engine)
            db.add(User(name="draft"))
            db.flush()
            OUT.append(db.scalar(select(User.name).where(User.name == "draft")))

        peek()
        with SessionLocal() as check:
            OUT.append(sorted(check.scalars(select(User.name))))
        """,
        """
        class AppSession(Session):
            def __exit__(self, *exc):
                if exc[0] is None:
                    self.commit()
                return super().__exit__(*exc)


        def peek():
            with AppSession(bind=engine) as db:
                db.add(User(name="draft"))
                db.flush()
                OUT.append(db.scalar(select(User.name).where(User.name == "draft")))

        peek()
        with SessionLocal() as check:
            OUT.append(sorted(check.scalars(select(User.name))))
        """,
    ),
    "rollback-on-none": (
        """
        def save(name):
            db = None
            try:
                db = SessionLocal()
                raise RuntimeError("no connection")
            except Exception:
                OUT.append("failed")
            if db is not None:
                db.add(User(name=name))
                db.commit()
                db.close()

        def broken():
            db = None
            try:
                db.commit()
            except Exception:
                OUT.append("failed")
            if db is not None:
                db.close()

        broken()
        """,
        """
        def broken():
            db = None
            try:
                db.commit()
            except Exception:
                db.rollback()
                OUT.append("failed")
            if db is not None:
                db.close()

        broken()
        """,
    ),
    "retry-in-handler": (
        """
        def create(db):
            item = User(name="ann")
            db.add(item)
            try:
                db.commit()
            except Exception:
                item.name = "ann-2"
                db.commit()
            OUT.append(db.scalar(select(User.name).where(User.name == "ann-2")))

        with SessionLocal() as s:
            try:
                create(s)
            except Exception as error:
                OUT.append(type(error).__name__)
        """,
        """
        def create(db):
            item = User(name="ann")
            db.add(item)
            try:
                db.commit()
            except Exception:
                db.rollback()
                item.name = "ann-2"
                db.commit()
            OUT.append(db.scalar(select(User.name).where(User.name == "ann-2")))

        with SessionLocal() as s:
            try:
                create(s)
            except Exception as error:
                OUT.append(type(error).__name__)
        """,
    ),
    "savepoint-rollback": (
        """
        def upsert(db):
            nested = db.begin_nested()
            failed = False
            try:
                db.add(User(name="ann"))
                db.flush()
            except Exception:
                failed = True
            if failed:
                nested.rollback()
            OUT.append(db.scalar(select(User.name).where(User.name == "bob")))

        with SessionLocal() as s:
            s.begin()
            try:
                upsert(s)
            except Exception as error:
                OUT.append(type(error).__name__)
        """,
        """
        def upsert(db):
            nested = db.begin_nested()
            failed = False
            try:
                db.add(User(name="ann"))
                db.flush()
            except Exception:
                db.rollback()
                failed = True
            if failed:
                nested.rollback()
            OUT.append(db.scalar(select(User.name).where(User.name == "bob")))

        with SessionLocal() as s:
            s.begin()
            try:
                upsert(s)
            except Exception as error:
                OUT.append(type(error).__name__)
        """,
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_FIXED))
def test_no_fix_where_the_naive_rewrite_changes_the_mechanics(tmp_path, case):
    original_body, naive_body = NOT_FIXED[case]
    original = program(tmp_path, original_body)
    outcome = fixed(original)
    assert outcome.source.decode() == original, outcome.fixed  # sessionlint leaves it alone
    before = _outcome(original, tmp_path)
    after = _outcome(program(tmp_path, naive_body), tmp_path)
    assert before != after, (before, after)


def test_two_handlers_hoisted_to_one_name_share_one_database(tmp_path):
    """Hoisting both `engine = create_engine(URL)` of two handlers leaves one module-level
    `engine`: the first handler then counts the second's table. sessionlint hoists neither."""
    body = """
        REPORTS_URL = DATABASE_URL.replace("db.sqlite", "reports.sqlite")
        BILLING_URL = DATABASE_URL.replace("db.sqlite", "billing.sqlite")
        for url, table in ((REPORTS_URL, "reports"), (BILLING_URL, "invoices")):
            with create_engine(url).begin() as c:
                c.execute(text(f"create table if not exists {table} (id integer)"))
                c.execute(text(f"delete from {table}"))
                c.execute(text(f"insert into {table} values (1)"))


        def reports():
            engine = create_engine(REPORTS_URL)
            with engine.connect() as conn:
                return conn.execute(text("select name from sqlite_master")).scalars().all()


        def billing():
            engine = create_engine(BILLING_URL)
            with engine.connect() as conn:
                return conn.execute(text("select name from sqlite_master")).scalars().all()

        OUT.append((reports(), billing()))
        """
    original = program(tmp_path, body)
    assert fixed(original).source.decode() == original
    hoisted = textwrap.dedent(body).replace("    engine = create_engine(REPORTS_URL)\n", "").replace("    engine = create_engine(BILLING_URL)\n", "")
    naive = program(tmp_path, hoisted + "\nengine = create_engine(REPORTS_URL)\nengine = create_engine(BILLING_URL)\nOUT.clear()\nOUT.append((reports(), billing()))\n")
    assert run(original, tmp_path, "db") == [(["reports"], ["invoices"])]
    assert run(naive, tmp_path, "db")[-1] == (["invoices"], ["invoices"])


# --- below SQLAlchemy 1.4: the `try:`/`finally:` form --------------------------------------

# SQLAlchemy 1.3's Session has no `__enter__` (measured on 1.3.24: `with Session()` raises
# AttributeError: __enter__, or TypeError on Python 3.11+); this subclass behaves so on the
# installed version, and records its closes.
LEGACY_SESSION = """
    class LegacySession(Session):
        def __enter__(self):
            raise AttributeError("__enter__")

        def close(self):
            OUT.append("closed")
            super().close()


    LegacySessionLocal = sessionmaker(bind=engine)
    LegacySessionLocal.class_ = LegacySession
    """

BELOW_14 = {
    "count": """
        def count_active():
            db = LegacySessionLocal()
            return db.query(User).filter_by(active=True).count()

        OUT.append(count_active())
        """,
    "early-return": """
        def add(name, dry_run):
            db = LegacySessionLocal()
            db.add(User(name=name))
            if dry_run:
                return None
            db.commit()
            db.close()

        add("cy", True)
        add("dee", False)
        OUT.append(sorted(engine.connect().execute(text("select name from users")).scalars()))
        """,
    "generator": """
        def get_db():
            db = LegacySessionLocal()
            yield db

        for db in get_db():
            OUT.append(db.scalar(select(User.name).where(User.name == "bob")))
        """,
}


@pytest.mark.parametrize("case", sorted(BELOW_14))
def test_below_14_the_fix_closes_in_finally(tmp_path, case):
    source = program(tmp_path, textwrap.dedent(LEGACY_SESSION) + textwrap.dedent(BELOW_14[case]))
    outcome = fix_source(source, "program.py", Settings(select=("ALL",), target_sqlalchemy=(1, 3)), unsafe=True)
    assert outcome.fixed.get("SL001") == 1
    text_after = outcome.source.decode()
    assert "with LegacySessionLocal()" not in text_after and "finally:\n" in text_after
    status, before = _outcome(source, tmp_path)
    status_after, after = _outcome(text_after, tmp_path)
    assert (status, status_after) == ("ok", "ok")
    # the same results, and a close more
    assert [x for x in after if x != "closed"] == [x for x in before if x != "closed"]
    assert after.count("closed") == before.count("closed") + 1
    # what the fix for 2.0 writes fails on such a session
    modern = fix_source(source, "program.py", Settings(select=("ALL",)), unsafe=True).source.decode()
    assert "with LegacySessionLocal() as db:" in modern
    assert _outcome(modern, tmp_path)[0] == "AttributeError"
