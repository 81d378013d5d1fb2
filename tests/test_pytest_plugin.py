"""The runtime leak check (`pytest --sessionlint-leaks`), run through pytester on real
SQLAlchemy: sqlite file databases, aiosqlite, FastAPI's TestClient. Each leak is asserted as
the exact line the plugin prints (kind, file:line, rule); each closing twin must pass."""

import json
import os
import subprocess
import sys
import textwrap
from typing import List

import pytest

pytest_plugins = ("pytester",)
pytest.importorskip("sqlalchemy")

FLAG = "--sessionlint-leaks"
ENGINE = '''
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/test.db")
    yield engine
    engine.dispose()
'''


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def quiet_asyncio(pytester):
    # pytest-asyncio warns about this unset option in every run
    pytester.makeini(INI)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The inner test modules are named test_leakcheck_*: in process, a name that one of these
    # tests' own modules has (test_pool) is a clash. In process, pytester re-imports the plugins of each inner run; rewriting their asserts
    # and loading hypothesis and anyio (unused here) would be most of the time.
    return pytester.runpytest("--assert=plain", "-p", "no:hypothesispytest", "-p", "no:anyio", *args)


def line_of(source: str, marker: str) -> int:
    """The 1-based line of `source` holding `# marker`."""
    (number,) = [index for index, line in enumerate(source.splitlines(), 1) if line.rstrip().endswith(f"# {marker}")]
    return number


def write(pytester: pytest.Pytester, name: str, body: str, prefix: str = "") -> str:
    source = prefix.lstrip("\n") + textwrap.dedent(body).lstrip("\n")
    pytester.makepyfile(**{name: source})
    return source


def failed_tests(result: pytest.RunResult) -> List[str]:
    return sorted(line.split(" ")[1] for line in result.outlines if line.startswith("FAILED "))


def leak_lines(result: pytest.RunResult) -> List[str]:
    return [line.strip() for line in result.outlines if line.strip().startswith("sessionlint: ")]


def test_a_leaking_connection_fails_with_the_line_that_opened_it(pytester):
    source = write(
        pytester,
        "test_leakcheck_connections",
        '''
        def test_leaks(engine):
            connection = engine.connect()  # leak
            connection.execute(text("select 1"))


        def test_dropped(engine):
            engine.connect().execute(text("select 1"))  # dropped


        def test_closes(engine):
            with engine.connect() as connection:
                connection.execute(text("select 1"))
        ''',
        ENGINE,
    )
    result = run(pytester, FLAG)
    result.assert_outcomes(passed=1, failed=2)
    assert failed_tests(result) == ["test_leakcheck_connections.py::test_dropped", "test_leakcheck_connections.py::test_leaks"]
    assert leak_lines(result) == [
        f"sessionlint: connection opened at test_leakcheck_connections.py:{line_of(source, 'leak')} was not closed (SL010 connection-not-closed)",
        f"sessionlint: connection opened at test_leakcheck_connections.py:{line_of(source, 'dropped')} was not closed (SL010 connection-not-closed)",
    ]


def test_a_leaking_session_fails_even_when_the_collector_would_return_its_connection(pytester):
    source = write(
        pytester,
        "test_leakcheck_sessions",
        '''
        KEPT = []


        def test_kept(engine):
            KEPT.append(Session(engine))  # kept


        def test_dropped_mid_transaction(engine):
            session = Session(engine)  # dropped
            session.execute(text("select 1"))


        def test_closes(engine):
            with Session(engine) as session:
                session.execute(text("select 1"))


        def test_dropped_after_commit(engine):
            session = Session(engine)  # garbage, holding nothing
            session.execute(text("select 1"))
            session.commit()
        ''',
        ENGINE,
    )
    result = run(pytester, FLAG)
    result.assert_outcomes(passed=2, failed=2)
    assert failed_tests(result) == ["test_leakcheck_sessions.py::test_dropped_mid_transaction", "test_leakcheck_sessions.py::test_kept"]
    assert leak_lines(result) == [
        f"sessionlint: session opened at test_leakcheck_sessions.py:{line_of(source, 'kept')} was not closed (SL001 session-not-closed)",
        f"sessionlint: session opened at test_leakcheck_sessions.py:{line_of(source, 'dropped')} was not closed (SL001 session-not-closed)",
    ]


def test_a_leaked_connection_goes_back_to_its_pool_after_the_report(pytester):
    write(
        pytester,
        "test_leakcheck_pool",
        '''
        from sqlalchemy import create_engine, text

        ENGINE = create_engine("sqlite:///pool.db", pool_size=1, max_overflow=0, pool_timeout=1)


        def test_leaks():
            ENGINE.connect().execute(text("select 1"))


        def test_gets_the_only_connection():
            assert ENGINE.pool.checkedout() == 0
            with ENGINE.connect() as connection:
                connection.execute(text("select 1"))
        ''',
    )
    result = run(pytester, FLAG, "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    assert failed_tests(result) == ["test_leakcheck_pool.py::test_leaks"]


def test_an_async_leak_fails_and_its_closing_twin_passes(pytester):
    pytest.importorskip("aiosqlite")
    pytest.importorskip("pytest_asyncio")
    pytester.makeini(INI + "asyncio_mode = auto\n")
    source = write(
        pytester,
        "test_leakcheck_async",
        '''
        import pytest
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine


        @pytest.fixture
        async def engine(tmp_path):
            engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/test.db")
            yield engine
            await engine.dispose()


        async def test_session_leaks(engine):
            session = AsyncSession(engine)  # session
            await session.execute(text("select 1"))


        async def test_connection_leaks(engine):
            connection = await engine.connect()  # connection
            await connection.execute(text("select 1"))


        async def test_closes(engine):
            async with AsyncSession(engine) as session:
                await session.execute(text("select 1"))
            async with engine.connect() as connection:
                await connection.execute(text("select 1"))
        ''',
    )
    result = run(pytester, FLAG, "-W", "error::sqlalchemy.exc.SAWarning")
    result.assert_outcomes(passed=1, failed=2)
    assert leak_lines(result) == [
        f"sessionlint: async session opened at test_leakcheck_async.py:{line_of(source, 'session')} was not closed (SL001 session-not-closed)",
        f"sessionlint: connection opened at test_leakcheck_async.py:{line_of(source, 'connection')} was not closed (SL010 connection-not-closed)",
    ]
    assert "garbage collector is trying to clean up" not in result.stdout.str()


def test_a_leak_inside_a_fixture_fails_and_a_fixture_closing_after_yield_passes(pytester):
    source = write(
        pytester,
        "test_leakcheck_fixtures",
        '''
        @pytest.fixture
        def leaky(engine):
            session = Session(engine)  # fixture
            yield session


        @pytest.fixture
        def closing(engine):
            session = Session(engine)
            yield session
            session.close()


        def test_leaky(leaky):
            leaky.execute(text("select 1"))


        def test_closing(closing):
            closing.execute(text("select 1"))
        ''',
        ENGINE,
    )
    result = run(pytester, FLAG)
    result.assert_outcomes(passed=1, failed=1)
    assert failed_tests(result) == ["test_leakcheck_fixtures.py::test_leaky"]
    assert leak_lines(result) == [f"sessionlint: session opened at test_leakcheck_fixtures.py:{line_of(source, 'fixture')} was not closed (SL001 session-not-closed)"]


def test_wide_fixtures_are_judged_at_their_own_teardown(pytester):
    source = write(
        pytester,
        "test_leakcheck_scopes",
        '''
        import pytest
        from sqlalchemy import create_engine, text


        @pytest.fixture(scope="session")
        def engine(tmp_path_factory):
            engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('db')}/test.db")
            yield engine
            engine.dispose()


        @pytest.fixture(scope="session")
        def connection(engine):
            connection = engine.connect()
            yield connection
            connection.close()


        @pytest.fixture(scope="module")
        def kept(engine):
            return engine.connect()  # module


        def test_one(connection):
            connection.execute(text("select 1"))


        def test_two(connection, kept):
            connection.execute(text("select 2"))


        def test_three(engine):
            with engine.connect() as connection:
                connection.execute(text("select 3"))
        ''',
    )
    result = run(pytester, FLAG, "-p", "no:randomly")
    # the session-scoped engine and connection are no leak; the module-scoped connection
    # fails the test in whose teardown its module ends
    result.assert_outcomes(passed=2, failed=1)
    assert failed_tests(result) == ["test_leakcheck_scopes.py::test_three"]
    assert leak_lines(result) == [
        f"sessionlint: connection opened at test_leakcheck_scopes.py:{line_of(source, 'module')} by module-scoped fixture `kept` was not closed (SL010 connection-not-closed)"
    ]


LEAKY = (
    ENGINE
    + '''
def test_leaks(engine):
    engine.connect().execute(text("select 1"))  # leak
'''
)


def test_warn_mode_passes_with_a_warning(pytester):
    source = write(pytester, "test_leakcheck_warn", LEAKY)
    result = run(pytester, FLAG, "--sessionlint-leaks-mode=warn")
    result.assert_outcomes(passed=1, warnings=1)
    leak = line_of(source, "leak")
    assert (
        f"  test_leakcheck_warn.py:{leak - 1}: SessionlintLeakWarning: sessionlint: connection opened at test_leakcheck_warn.py:{leak} was not closed (SL010 connection-not-closed)"
        in result.outlines
    )


def test_without_the_flag_nothing_changes(pytester):
    write(pytester, "test_leakcheck_off", LEAKY)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert leak_lines(result) == [] and "SL010" not in result.stdout.str()


def test_the_ini_option_enables_it_and_the_marker_allows_a_leak(pytester):
    pytester.makeini(INI + "sessionlint_leaks = true\n")
    write(
        pytester,
        "test_leakcheck_ini",
        LEAKY
        + '''

@pytest.mark.sessionlint_allow_leaks
def test_keeps_on_purpose(engine):
    engine.connect().execute(text("select 1"))
''',
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    assert failed_tests(result) == ["test_leakcheck_ini.py::test_leaks"]


def test_fastapi_generator_dependency(pytester):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    source = write(
        pytester,
        "test_leakcheck_app",
        '''
        from fastapi import Depends, FastAPI
        from fastapi.testclient import TestClient
        from sqlalchemy import create_engine, text
        from sqlalchemy.orm import Session, sessionmaker

        SessionLocal = sessionmaker(create_engine("sqlite:///app.db"))
        app = FastAPI()


        def get_db():
            db = SessionLocal()
            try:
                yield db
            finally:
                db.close()


        def get_db_without_close():
            db = SessionLocal()  # dependency
            yield db


        @app.get("/closed")
        def closed(db: Session = Depends(get_db)):
            return db.execute(text("select 1")).scalar()


        @app.get("/leaked")
        def leaked(db: Session = Depends(get_db_without_close)):
            return db.execute(text("select 1")).scalar()


        def test_closed():
            with TestClient(app) as client:
                assert client.get("/closed").json() == 1


        def test_leaked():
            with TestClient(app) as client:
                assert client.get("/leaked").json() == 1
        ''',
    )
    result = run(pytester, FLAG, "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1, failed=1)
    assert failed_tests(result) == ["test_leakcheck_app.py::test_leaked"]
    assert leak_lines(result) == [f"sessionlint: session opened at test_leakcheck_app.py:{line_of(source, 'dependency')} was not closed (SL001 session-not-closed)"]


def test_the_report_counts_each_site(pytester):
    source = write(
        pytester,
        "test_leakcheck_report",
        '''
        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_sometimes_leaks(engine, n):
            connection = engine.connect()  # site
            connection.execute(text("select 1"))
            if n != 2:
                connection.close()
        ''',
        ENGINE,
    )
    result = run(pytester, FLAG, "--sessionlint-leaks-report", "out/leaks.json")
    result.assert_outcomes(passed=2, failed=1)
    with open(pytester.path / "out" / "leaks.json", encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["version"] == 1 and report["rootdir"] == str(pytester.path)
    (site,) = report["sites"]
    path = str(pytester.path / "test_leakcheck_report.py")
    assert (site["kind"], site["rule"], site["path"], site["line"]) == ("connection", "SL010", path, line_of(source, "site"))
    assert (site["opened"], site["leaked"], site["tests"]) == (3, 1, ["test_leakcheck_report.py::test_sometimes_leaks[2]"])


def test_loading_the_plugin_imports_nothing_heavy():
    code = "import sys, sessionlint.pytest_plugin; print(sorted(m for m in ('sqlalchemy', 'libcst', 'rich') if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "[]", completed.stderr


def test_enabled_without_sqlalchemy_is_a_usage_error(tmp_path):
    # a `sqlalchemy` package that cannot be imported shadows the installed one
    (tmp_path / "shadow" / "sqlalchemy").mkdir(parents=True)
    (tmp_path / "shadow" / "sqlalchemy" / "__init__.py").write_text("raise ImportError('No module named sqlalchemy')\n")
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    environment = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"))
    command = [sys.executable, "-m", "pytest", FLAG, "-p", "no:cacheprovider", "-p", "no:asyncio", "test_nothing.py"]
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: --sessionlint-leaks needs SQLAlchemy 2 (No module named sqlalchemy); install it with `pip install 'sessionlint[pytest]'`"
        in completed.stderr
    )


def test_runtime_report_lists_missed_leaks_and_findings_that_never_leaked(pytester):
    app = write(
        pytester,
        "leakcheck_app",
        '''
        from sqlalchemy import create_engine, text
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
        from sqlalchemy.orm import Session

        engine = create_engine("sqlite:///app.db")
        REPOSITORIES = []


        class Repository:
            def __init__(self):
                self.db = Session(engine)  # handed to an object: sessionlint is silent


            def count(self):
                return self.db.execute(text("select 1")).scalar()


        def remember():
            repository = Repository()  # remember
            REPOSITORIES.append(repository)
            return repository.count()


        def commit_and_drop():
            db = Session(engine)  # SL001, yet garbage once committed
            db.execute(text("select 1"))
            db.commit()


        def create_async_session_maker(engine):
            return async_sessionmaker(engine, expire_on_commit=False)


        async def count_async():
            # the shape of fastapi-users-db-sqlalchemy's tests: a local named `sessionmaker`
            # holding an async maker from a function (this cross-check once found SL006 here,
            # a false positive: the project summary now knows the maker is async)
            sessionmaker = create_async_session_maker(create_async_engine("sqlite+aiosqlite:///async.db"))
            async with sessionmaker() as session:  # an AsyncSession at run time
                return (await session.execute(text("select 1"))).scalar()
        ''',
    )
    tests = write(
        pytester,
        "test_leakcheck_crosscheck",
        """
        from leakcheck_app import commit_and_drop, count_async, remember


        def test_remember():
            assert remember() == 1  # test


        def test_commit_and_drop():
            commit_and_drop()


        def test_async():
            import asyncio

            assert asyncio.run(count_async()) == 1
        """,
    )
    pytest.importorskip("aiosqlite")
    run(pytester, FLAG, "--sessionlint-leaks-report", "leaks.json").assert_outcomes(passed=2, failed=1)
    # In a process of its own: a run may start the linter's process pool, whose forkserver
    # would keep this test's working directory and environment for the tests after it.
    command = [sys.executable, "-m", "sessionlint", "--runtime-report", "leaks.json", "--isolated", "."]
    result = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=300)
    handed, remember, test = line_of(app, "handed to an object: sessionlint is silent"), line_of(app, "remember"), line_of(tests, "test")
    finding = line_of(app, "SL001, yet garbage once committed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"Runtime report of {pytester.path}: 3 sites opened 3 sessions and connections, 1 leaked; 1 static finding of SL001, SL002, SL006, SL009, SL010.",
        "",
        "Leaks sessionlint did not find (1; each should become a fixture):",
        f"  leakcheck_app.py:{handed}: session leaked 1 of 1 time (SL001), e.g. test_leakcheck_crosscheck.py::test_remember",
        f"    called from leakcheck_app.py:{remember}, test_leakcheck_crosscheck.py:{test}",
        "",
        "Findings whose code ran and never leaked (1; candidate false positives to review):",
        f"  leakcheck_app.py:{finding}:10: SL001 session `db` is never closed (opened 1 time, never leaked)",
    ]


def test_runtime_report_of_a_file_that_is_not_one(tmp_path):
    from click.testing import CliRunner

    from sessionlint.cli import main

    (tmp_path / "other.json").write_text('{"version": 1}')
    result = CliRunner().invoke(main, ["--runtime-report", str(tmp_path / "other.json")])
    assert result.exit_code == 2
    assert result.output == f"sessionlint: error: {tmp_path / 'other.json'}: not a sessionlint runtime report (version 1)\n"
