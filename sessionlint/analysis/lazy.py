"""Lazy ORM queries that outlive the session they were built on (SL003): `query =
session.query(...)` inside `with ... as session:`, run after the block has closed the
session (iterated, or a method that runs it). A Query holds its session and runs only when
read: after the block it reopens a connection on a closed session, or, with objects
detached, fails. (Real-bug corpus: indexd's bulk blueprint.)
Fixture: SL003/query_run_after_with_block.py"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set, Tuple

import libcst as cst

from sessionlint.analysis.tree import dotted_name, nested_blocks, suite_statements, walk
from sessionlint.knowledge import CONVENTIONAL_SESSION_NAMES, RUNS_QUERY

if TYPE_CHECKING:
    from sessionlint.analysis.factories import Resolver


@dataclass(frozen=True)
class LazyUse:
    node: cst.CSTNode  # where the query runs, after the block
    query: str  # the name that holds it
    session: str  # the session it was built on
    block: cst.With  # the `with` whose end closed the session


def lazy_queries_after_with(function: cst.FunctionDef, sessions: Set[str]) -> List[LazyUse]:
    """Queries bound to a name inside `with <...> as <session>:` (a session the analysis
    tracks, or one named as sessions are) and run after the block."""
    found: List[LazyUse] = []

    def visit(statements: Sequence[cst.CSTNode]) -> None:
        for index, statement in enumerate(statements):
            if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                continue
            if isinstance(statement, cst.With):
                for item in statement.items:
                    name = item.asname.name if item.asname is not None else None
                    if isinstance(name, cst.Name) and (name.value in sessions or name.value in CONVENTIONAL_SESSION_NAMES):
                        lazy = _lazy_names(suite_statements(statement.body), name.value)
                        if lazy:
                            found.extend(_run_after(statements[index + 1 :], lazy, name.value, statement))
            for block in nested_blocks(statement):
                visit(block)

    visit(suite_statements(function.body))
    return found


def _chain(value: cst.BaseExpression) -> Optional[Tuple[str, str, str]]:
    """`root.m1(...).m2(...)...mN(...)`: (root, m1, mN)."""
    methods: List[str] = []
    node = value
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        methods.append(node.func.attr.value)
        node = node.func.value
    if not isinstance(node, cst.Name) or not methods:
        return None
    return node.value, methods[-1], methods[0]


def _lazy_names(body: Sequence[cst.CSTNode], session: str) -> Dict[str, bool]:
    """Names the block binds to a query of `session` that nothing has run yet."""
    lazy: Dict[str, bool] = {}
    for root in body:
        for node in walk(root, enter_scopes=False):
            if not isinstance(node, cst.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
                continue
            target = node.targets[0].target.value
            chain = _chain(node.value)
            if chain is not None and chain[2] not in RUNS_QUERY and ((chain[0] == session and chain[1] == "query") or chain[0] in lazy):
                lazy[target] = True
            else:
                lazy.pop(target, None)
    return lazy


def _run_after(statements: Sequence[cst.CSTNode], lazy: Dict[str, bool], session: str, block: cst.With) -> List[LazyUse]:
    found: List[LazyUse] = []
    pending = dict(lazy)
    for statement in statements:
        for node in walk(statement, enter_scopes=False):
            use: Optional[str] = None
            if isinstance(node, cst.Assign):
                # rebound (a new query, of a new session: keystone's second `with` block),
                # unless it is the same query refined (`q = q.filter(...)`: blazar)
                chain = _chain(node.value)
                for target in node.targets:
                    if isinstance(target.target, cst.Name):
                        name = target.target.value
                        if not (chain is not None and chain[0] == name and chain[2] not in RUNS_QUERY):
                            pending.pop(name, None)
                continue
            if isinstance(node, (cst.For, cst.CompFor)) and isinstance(node.iter, cst.Name):
                use = node.iter.value
            elif isinstance(node, cst.Call):
                func = node.func
                if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.attr.value in RUNS_QUERY:
                    use = func.value.value
                elif isinstance(func, cst.Name) and func.value in ("list", "tuple", "len", "sorted") and node.args and isinstance(node.args[0].value, cst.Name):
                    use = node.args[0].value.value
            if use is not None and use in pending:
                found.append(LazyUse(node.iter if isinstance(node, (cst.For, cst.CompFor)) else node, use, session, block))
                del pending[use]
        if not pending:
            break
    return found


@dataclass(frozen=True)
class RunnerUse:
    call: cst.Call  # `run_in_thread(db.query, Ban)`, whose result is read
    query: str  # what builds the query: `db.query`
    runner: str  # the runner that closed its session: `run_in_thread`


def queries_after_runner(function: cst.FunctionDef, resolver: "Resolver") -> List[RunnerUse]:
    """Calls of a project query runner (a function that runs the callable it is given and
    closes a session in the `finally` around it) with a callable that returns a lazy query,
    whose result the caller reads: the query runs after the runner closed its session,
    reopening a connection nobody closes. (Real-bug corpus: MorpheusHelper's cogs iterate
    `await run_in_thread(db.query, Model)`.) Fixture: tests/fixtures/projects/query_runners"""
    if not resolver.index.runners:
        return []
    discarded: Set[int] = set()
    found: List[RunnerUse] = []
    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, cst.Expr):
            value = node.value.expression if isinstance(node.value, cst.Await) else node.value
            discarded.add(id(value))
        if not isinstance(node, cst.Call) or id(node) in discarded:
            continue
        position = resolver.query_runner(node.func)
        if position is None:
            continue
        positional = [a for a in node.args if a.keyword is None and not a.star]
        if len(positional) > position and resolver.lazy_callable(positional[position].value):
            query = dotted_name(positional[position].value) or "the query"
            found.append(RunnerUse(node, query, dotted_name(node.func) or "the runner"))
    return found


@dataclass(frozen=True)
class ReturnedResult:
    call: cst.Call  # `conn.execute(...)`, returned from the block
    connection: str  # the connection the block closes
    block: cst.With


# What a statement given as a string or built with these does not return rows from (unless
# it says RETURNING): a closed result of it is all there is to read.
_NO_ROWS_WORDS = ("insert", "update", "delete", "create", "drop", "alter", "truncate", "grant", "set", "begin", "commit", "rollback")


def results_returned_from_with(function: cst.FunctionDef, connections: Set[int]) -> List[ReturnedResult]:
    """`return conn.execute(...)` inside the `with` block of a connection the scope opened
    (`connections`: the ids of the calls that opened them): the block closes the connection
    as the function returns, and the caller reads the result's rows from a closed cursor
    ("This result object is closed", or rows of another checkout). A result read inside the
    block (`.fetchall()`, `.scalar()`, `.all()`...), an `await`ed result (asyncio results
    are buffered) and a statement that returns no rows are fine. (The shape of sopel's
    `SopelDB.execute` in the real-bug corpus, whose `self.connect()` returns
    `self.engine.connect()`.) Fixtures: SL003/connection_result_returned_from_with.py,
    SL003/connection_of_a_method_returned_from_with.py"""
    found: List[ReturnedResult] = []
    for node in walk(function.body, enter_scopes=False):
        if not isinstance(node, cst.With) or node.asynchronous is not None:
            continue
        for item in node.items:
            name = item.asname.name if item.asname is not None else None
            if id(item.item) not in connections or not isinstance(name, cst.Name):
                continue
            for inner in walk(node.body, enter_scopes=False):
                if not isinstance(inner, cst.Return) or not isinstance(inner.value, cst.Call):
                    continue
                call = inner.value
                func = call.func
                if (
                    isinstance(func, cst.Attribute)
                    and isinstance(func.value, cst.Name)
                    and func.value.value == name.value
                    and func.attr.value in ("execute", "exec_driver_sql")
                    and not _returns_no_rows(call)
                ):
                    found.append(ReturnedResult(call, name.value, node))
    return found


def _returns_no_rows(call: cst.Call) -> bool:
    """Whether the statement of `conn.execute(statement, ...)` is written as one that returns
    no rows: a string or `text()` of DML or DDL, or `insert()`/`update()`/`delete()` without
    `.returning()`."""
    if not call.args or call.args[0].keyword is not None or call.args[0].star:
        return False
    statement = call.args[0].value
    if isinstance(statement, cst.Call) and isinstance(statement.func, (cst.Name, cst.Attribute)):
        if dotted_name(statement.func) in ("text", "sqlalchemy.text", "sa.text") and statement.args:
            statement = statement.args[0].value
    if isinstance(statement, cst.SimpleString):
        text = statement.evaluated_value
        words = text.split() if isinstance(text, str) else []
        return bool(words) and words[0].lower() in _NO_ROWS_WORDS and "returning" not in text.lower()
    chain = statement
    methods: List[str] = []
    while isinstance(chain, cst.Call) and isinstance(chain.func, cst.Attribute):
        methods.append(chain.func.attr.value)
        chain = chain.func.value
    if isinstance(chain, cst.Call) and isinstance(chain.func, (cst.Name, cst.Attribute)):
        root = chain.func.attr.value if isinstance(chain.func, cst.Attribute) else chain.func.value
        return root in ("insert", "update", "delete") and "returning" not in methods
    return False
