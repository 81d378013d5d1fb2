from typing import Dict, Optional, Set

import libcst as cst

from sessionlint.analysis.facts import Holding, ScopeFacts
from sessionlint.analysis.lazy import lazy_queries_after_with, queries_after_runner, results_returned_from_with
from sessionlint.analysis.tree import terminal_name
from sessionlint.diagnostics import Confidence, FixAvailability
from sessionlint.rules.base import Invalid, LineRef, ScopeRule, Valid


class UseAfterClose(ScopeRule):
    """## What it does
    Finds a session (or connection) used after `close()` on the same path, or after the `with`
    block that created it has ended: a method call, an attribute that does database work, or
    the session passed on to another function. When the close happened on some paths only,
    the message says the session *may* be closed.

    ## Why is this bad?
    In SQLAlchemy 2.x `Session.close()` releases the connection and resets the session, and a
    closed session may technically be used again (it starts a new transaction), unless the
    sessionmaker was built with `close_resets_only=False`, where reuse raises. Either way the
    code reads as if the session were finished with: objects loaded before the close are
    detached (their lazy loads raise `DetachedInstanceError`), and a second transaction starts
    silently outside the block that was meant to own it. sessionlint treats reuse after close
    as a mistake; re-binding the name (`db = SessionLocal()`) starts a new life.

    ## Example
    ```python
    def rename(book_id, title):
        with SessionLocal() as db:
            book = db.get(Book, book_id)
        book.title = title
        db.commit()
    ```

    Use instead:
    ```python
    def rename(book_id, title):
        with SessionLocal() as db:
            book = db.get(Book, book_id)
            book.title = title
            db.commit()
    ```

    ## Known limitations
    A connection's result returned from inside its `with` block (`return conn.execute(...)`)
    is reported too: the block closes the connection as the function returns, and the caller
    reads the rows from a closed cursor. Reading them inside the block (`.fetchall()`), an
    awaited asyncio result (buffered) and a statement that returns no rows are fine.

    - Reading state that involves no database work (`is_active`, `in_transaction()`, `info`,
      `bind`) and calling `close()` again are not reported.
    - ORM objects loaded by the session and used after it closed are not followed yet.
    - A session or connection returned as it is (`return conn`) after a close on some paths
      only (`if close: conn.close()`) is not reported: the flag that closed it decides
      whether the caller uses it, and the analysis cannot follow it into the callers.

    ## References
    - SQLAlchemy, "Closing": https://docs.sqlalchemy.org/en/20/orm/session_basics.html#closing
    - `close_resets_only`: https://docs.sqlalchemy.org/en/20/orm/session_api.html#sqlalchemy.orm.Session.params.close_resets_only
    """

    code = "SL003"
    name = "use-after-close"
    summary = "Session used after it was closed or after its `with` block ended"
    fix_availability = FixAvailability.NONE
    TRIGGERS = ("factory_call", "connection", "lazy_query")
    examples = (
        Valid(
            "def count():\n"
            "    db = SessionLocal()\n"
            "    try:\n"
            "        return db.query(User).count()\n"
            "    finally:\n"
            "        db.close()\n",
            name="use_before_close",
        ),
        Valid(
            "def twice():\n"
            "    db = SessionLocal()\n"
            "    db.close()\n"
            "    db = SessionLocal()\n"
            "    with db:\n"
            "        db.execute(text('select 1'))\n",
            name="rebound_after_close",
        ),
        Invalid(
            "def count():\n"
            "    db = SessionLocal()\n"
            "    db.close()\n"
            "    return db.query(User).count()\n",
            name="query_after_close",
            expect=[("SL003", 4, 12)],
        ),
        Invalid(
            "def count():\n"
            "    with SessionLocal() as db:\n"
            "        pass\n"
            "    return db.query(User).count()\n",
            name="query_after_with",
            expect=[("SL003", 4, 12)],
        ),
    )

    def check_scope(self, facts: ScopeFacts) -> None:
        connections = {c.name for c in facts.creations if c.is_connection and c.name}
        returned: Optional[Set[int]] = None
        for use in facts.uses_after_close:
            if not use.on_every_path:
                # `if close: conn.close()` then `return conn`: the object is handed back, and
                # the flag that closed it decides whether the caller uses it; the analysis
                # cannot tell. Fixture: SL003/returned_after_conditional_close.py
                if returned is None:
                    returned = _returned_names(facts.node)
                if id(use.node) in returned:
                    continue
            noun = "connection" if use.name in connections else "session"
            verb = "is" if use.on_every_path else "may be"
            refs: Dict[str, LineRef]
            if use.by_with:
                message = f"{noun} `{use.name}` {verb} used after its `with` block ended at line {{closed}}"
                refs = {"closed": ("end", use.closed_at)}
                help_text = f"Move this use into the `with` block, or open a new {noun}"
            else:
                message = f"{noun} `{use.name}` {verb} used after it was closed at line {{closed}}"
                refs = {"closed": use.closed_at}
                help_text = f"Use `{use.name}` before closing it, or open a new {noun}"
            confidence = Confidence.HIGH if use.on_every_path else Confidence.MEDIUM
            self.report(use.node, message, help=help_text, refs=refs, confidence=confidence)
        if isinstance(facts.node, cst.FunctionDef):
            managed = {c.name for c in facts.creations if c.name and c.holding is Holding.MANAGED and not c.is_connection}
            for lazy in lazy_queries_after_with(facts.node, managed):
                self.report(
                    lazy.node,
                    f"query `{lazy.query}` runs after the `with` block that closed session `{lazy.session}` "
                    f"ended at line {{closed}}",
                    help=f"Run the query inside the block (`.all()`), or keep the session open while `{lazy.query}` is read",
                    refs={"closed": ("end", lazy.block)},
                    confidence=Confidence.MEDIUM,
                )
            opened = {id(c.call) for c in facts.creations if c.is_connection and c.holding is Holding.MANAGED}
            for result in results_returned_from_with(facts.node, opened) if opened else ():
                self.report(
                    result.call,
                    f"the result of `{result.connection}.{terminal_name(result.call.func)}()` outlives connection `{result.connection}`: "
                    f"the `with` block at line {{opened}} closes it as the function returns, and the caller reads "
                    f"the rows from a closed cursor",
                    help="Read the rows inside the block (`.fetchall()`, `.all()`, `.scalar()`) and return them",
                    refs={"opened": result.block},
                    confidence=Confidence.MEDIUM,
                )
            for run in queries_after_runner(facts.node, self.context.lifecycle.resolver):
                self.report(
                    run.call,
                    f"query from `{run.query}` is read after `{run.runner}` closed the session it was built on: "
                    f"reading it reopens a connection nobody closes",
                    help="Return rows from the function the runner calls (`.all()`), not the query",
                )


def _returned_names(scope: cst.CSTNode) -> Set[int]:
    """The Name nodes returned as they are (`return conn`) in a scope."""
    from sessionlint.analysis.tree import walk

    return {id(n.value) for n in walk(scope, enter_scopes=False) if isinstance(n, cst.Return) and isinstance(n.value, cst.Name)}
