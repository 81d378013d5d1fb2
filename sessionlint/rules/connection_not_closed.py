import libcst as cst

from sessionlint.analysis.facts import ScopeFacts
from sessionlint.analysis.properties import fresh_connection_uses
from sessionlint.diagnostics import FixAvailability
from sessionlint.rules._messages import is_context_manager, report_unclosed, report_unprotected_close
from sessionlint.rules.base import Invalid, ScopeRule, Valid


class ConnectionNotClosed(ScopeRule):
    """## What it does
    Finds connections checked out with `engine.connect()` or `engine.raw_connection()` (and
    their async forms) that are not closed on every path: never closed, left open by an early
    `return` or `raise`, or closed outside a `finally` so that an exception skips the close.
    A project function or method that returns a new connection (`return engine.connect()`,
    or `return self.engine.connect()` in a class that builds `self.engine`) is a checkout
    too: `conn = self.connect()` must be closed like `engine.connect()`.
    Also finds methods called in place on a project property that checks out a new
    connection on every access (`return self._engine.connect()` under `@property`):
    `self.connector.connection.execute(query)` leaks one connection per call.

    ## Why is this bad?
    A connection that is not closed is not returned to the pool. Each leak holds one database
    connection until the garbage collector finds the object, and SQLAlchemy warns about it
    only then. Disposing of the engine does not help: `Engine.dispose()` closes the pool's
    checked-in connections, not the ones still checked out, so `engine.dispose()` (in a
    `finally` or registered as a cleanup) does not count as a close.

    ## Example
    ```python
    engine = create_engine("sqlite://")

    def table_names():
        conn = engine.connect()
        return conn.exec_driver_sql("select name from sqlite_master").all()
    ```

    Use instead:
    ```python
    engine = create_engine("sqlite://")

    def table_names():
        with engine.connect() as conn:
            return conn.exec_driver_sql("select name from sqlite_master").all()
    ```

    ## Fix safety
    As for SL001 and SL002: `with engine.connect() as conn:` around the rest of the block
    (safe in the function's own block when nothing but constants is returned, unsafe when
    plain values are; none when a result or anything else read through the connection is
    returned, since it cannot be read once the connection is closed), or
    `try:`/`finally: conn.close()` around the code between checkout and close (safe).
    A `Connection` is a context manager on every supported SQLAlchemy version (1.3 included),
    but the DBAPI connection of `engine.raw_connection()` only from 2.0.47: below that
    `target-sqlalchemy` (the default, 2.0, included) its fix keeps `conn = ...` and puts the
    rest of the block in `try:` with `conn.close()` in `finally:`, at the same safety.

    ## Known limitations
    - An engine is recognised when its name is bound to `create_engine(...)` (or the async and
      config forms) in the linted files, or is a conventional name (`engine`, `async_engine`,
      `db_engine`, ...) in a file that mentions SQLAlchemy.
    - `engine.begin()` outside `with` is not reported: it opens nothing until entered.
    - Connections handed to an owner, stored or returned are not followed.

    ## References
    - SQLAlchemy, "Working with Engines and Connections":
      https://docs.sqlalchemy.org/en/20/core/connections.html#basic-usage
    - SQLAlchemy, `Engine.dispose()`:
      https://docs.sqlalchemy.org/en/20/core/connections.html#sqlalchemy.engine.Engine.dispose
    """

    code = "SL010"
    name = "connection-not-closed"
    summary = "Connection checked out of the pool without a guaranteed close"
    fix_availability = FixAvailability.SOMETIMES
    TRIGGERS = ("connection",)
    examples = (
        Valid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('sqlite://')\n\n"
            "def ping():\n"
            "    with engine.connect() as conn:\n"
            "        conn.exec_driver_sql('select 1')\n",
            name="with_connect",
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('sqlite://')\n\n"
            "def ping():\n"
            "    conn = engine.connect()\n"
            "    conn.exec_driver_sql('select 1')\n",
            name="never_closed",
            expect=[("SL010", 5, 12)],
            fixed="from sqlalchemy import create_engine\n"
            "engine = create_engine('sqlite://')\n\n"
            "def ping():\n"
            "    with engine.connect() as conn:\n"
            "        conn.exec_driver_sql('select 1')\n",
        ),
        Invalid(
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('sqlite://')\n\n"
            "def ping():\n"
            "    conn = engine.raw_connection()\n"
            "    conn.cursor().execute('select 1')\n"
            "    conn.close()\n",
            name="close_not_in_finally",
            expect=[("SL010", 5, 12)],
        ),
    )

    def leave_Module(self, node: cst.Module) -> None:
        super().leave_Module(node)
        names = frozenset(name for found in self.context.index.connection_properties.values() for name in found)
        for call, receiver, name in fresh_connection_uses(node, names):
            self.report(
                call,
                f"`{receiver}` checks out a new connection on every access (property `{name}`), and nothing closes this one",
                help=f"Use `with {receiver} as conn:` and call `conn` inside, or make `{name}` return one connection it keeps",
            )

    def check_scope(self, facts: ScopeFacts) -> None:
        for creation in facts.creations:
            if creation.lost_in is not None:
                callee = self.context.source_of(creation.call.func)
                self.report(
                    creation.call,
                    f"connection from `{callee}()` is passed to `{creation.lost_in}()` and never closed",
                    help=f"Use `with {callee}() as conn:` and pass `conn`"
                    if is_context_manager(self.context.index.sqlalchemy, creation)
                    else f"Bind it (`conn = {callee}()`), pass `conn` in `try:` and call `conn.close()` in `finally:`",
                )
        for life in facts.lives:
            if life.creation.is_connection:
                before = len(self.context.reports)
                report_unclosed(self, life, "connection")
                if len(self.context.reports) == before:
                    report_unprotected_close(self, life, "connection")
