from typing import Optional

import libcst as cst

from sessionlint.analysis.facts import ScopeFacts
from sessionlint.analysis.tree import walk
from sessionlint.diagnostics import FixAvailability
from sessionlint.fixes import builders
from sessionlint.fixes.plan import FixPlan
from sessionlint.knowledge import ASYNC_SESSIONMAKER_SINCE, ASYNCIO_SINCE, Origin
from sessionlint.rules.base import Invalid, ScopeRule, Valid


class AsyncNotAwaited(ScopeRule):
    """## What it does
    Finds coroutine methods of an `AsyncSession`, `AsyncConnection` or `AsyncEngine`
    (`commit()`, `close()`, `rollback()`, `execute()`, `flush()`, `refresh()`, `dispose()`,
    ...) called without `await`, and context managers of the wrong kind: a plain `with` on an
    async session factory, or `async with` on a synchronous one.

    ## Why is this bad?
    Calling a coroutine function only creates a coroutine object: without `await` nothing
    runs. The commit does not happen, the session is not closed, and Python prints
    "coroutine was never awaited" at garbage collection, long after the request returned
    success. A plain `with` on an `AsyncSession` raises at run time.

    ## Example
    ```python
    async def save(db: AsyncSession, item):
        db.add(item)
        db.commit()
    ```

    Use instead:
    ```python
    async def save(db: AsyncSession, item):
        db.add(item)
        await db.commit()
    ```

    ## Fix safety
    Inside an `async def`, the fix adds `await` (parenthesised when the result is used, as in
    `(await db.execute(q)).all()`), and turns a plain `with` on an async factory into
    `async with`. Both are safe: without them the call never runs, or the `with` fails. No
    fix is offered outside an `async def`.

    The help for `async with` on a synchronous factory names the async factory of the target
    SQLAlchemy version (`target-sqlalchemy`): `async_sessionmaker` from 2.0,
    `sessionmaker(class_=AsyncSession)` in 1.4, and none below 1.4, which has no asyncio
    extension (there it says to close the session in a `finally:`).

    ## Known limitations
    - A name is known to hold an async session when it is created by an async factory
      (`async_sessionmaker`, `AsyncSession`, a conventional async name), annotated with
      `AsyncSession`/`AsyncConnection`/`AsyncEngine` (also inside `Annotated[...]`), or built
      by `create_async_engine`.
    - Only a call whose value is discarded (an expression statement) or used as an object
      (`db.execute(q).scalars()`) is reported; a coroutine stored in a variable, returned,
      or passed to `asyncio.gather`/`create_task` is assumed to be awaited there.

    ## References
    - SQLAlchemy, "Asynchronous I/O (asyncio)":
      https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html
    """

    code = "SL006"
    name = "async-not-awaited"
    summary = "Coroutine method of an async session called without `await`"
    fix_availability = FixAvailability.SOMETIMES
    TRIGGERS = ("factory_call", "async")
    examples = (
        Valid(
            "async def save(db: AsyncSession, item):\n" "    db.add(item)\n" "    await db.commit()\n",
            name="awaited",
        ),
        Invalid(
            "async def save(db: AsyncSession, item):\n" "    db.add(item)\n" "    db.commit()\n",
            name="commit_not_awaited",
            expect=[("SL006", 3, 5)],
            fixed="async def save(db: AsyncSession, item):\n" "    db.add(item)\n" "    await db.commit()\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
            "maker = async_sessionmaker()\n\n"
            "def load():\n"
            "    with maker() as db:\n"
            "        pass\n",
            name="sync_with_on_async_factory",
            expect=[("SL006", 5, 10)],
        ),
    )

    def check_scope(self, facts: ScopeFacts) -> None:
        for call in facts.unawaited:
            self.report(
                call.call,
                f"`{call.receiver}.{call.method}()` is a coroutine and is not awaited: it never runs",
                help=f"Use `await {call.receiver}.{call.method}(...)`",
                fix=self._await_fix(facts, call.call),
            )
        for mismatch in facts.with_mismatches:
            creation = mismatch.creation
            if creation.factory.origin is Origin.CONVENTIONAL and not mismatch.needs_async:
                continue  # an unresolved name: its sync-ness is a guess
            callee = self.context.source_of(creation.call.func)
            if mismatch.needs_async:
                self.report(
                    creation.call,
                    f"`{callee}()` creates an async object but is entered with a plain `with`",
                    help=f"Use `async with {callee}() as ...:` inside an `async def`",
                    fix=self._async_with_fix(facts, creation.call),
                )
            else:
                self.report(
                    creation.call,
                    f"`{callee}()` creates a synchronous object but is entered with `async with`",
                    help=self._sync_help(callee, creation.is_connection),
                )

    def _sync_help(self, callee: str, is_connection: bool) -> str:
        """The async factory to use where the target SQLAlchemy has one: `async_sessionmaker`
        from 2.0, `sessionmaker(class_=AsyncSession)` in 1.4, none before 1.4 (no asyncio
        extension), where a session is no context manager either."""
        target = self.context.index.sqlalchemy
        if target.at_least(*ASYNC_SESSIONMAKER_SINCE):
            return f"Use `with {callee}() as ...:`, or an async factory (`async_sessionmaker`)"
        if target.at_least(*ASYNCIO_SINCE):
            return f"Use `with {callee}() as ...:`, or an async factory (`sessionmaker(class_=AsyncSession)`)"
        if is_connection:
            return f"Use `with {callee}() as ...:`"
        return f"Call `{callee}()` without `async with` and close the session in a `finally:` block"

    @staticmethod
    def _await_fix(facts: ScopeFacts, call: cst.Call) -> Optional[FixPlan]:
        """`await` is valid only inside `async def`: elsewhere the help says what to do."""
        function = facts.node
        if not isinstance(function, cst.FunctionDef) or function.asynchronous is None:
            return None
        block = builders.function_block(function)
        place = builders.find_statement(block, call) if block is not None else None
        if place is None:
            return None
        statement = place[0].body[place[1]]
        as_statement = (
            isinstance(statement, cst.SimpleStatementLine)
            and isinstance(statement.body[0], cst.Expr)
            and statement.body[0].value is call
        )
        return builders.await_call(call, as_statement)

    @staticmethod
    def _async_with_fix(facts: ScopeFacts, call: cst.Call) -> Optional[FixPlan]:
        function = facts.node
        if not isinstance(function, cst.FunctionDef) or function.asynchronous is None:
            return None
        for node in walk(function.body, enter_scopes=False):
            if isinstance(node, cst.With) and node.asynchronous is None and any(i.item is call for i in node.items):
                return builders.async_with(node)
        return None
