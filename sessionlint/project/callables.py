"""What a module's functions do with what they are given, for the modules that call them
(the project pass keeps it with each file's text facts): the functions that commit a session
parameter (SL007) and the query runners that close the session a query they run was built on
(SL003). `ast`, like the module scan."""

import ast
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple, Union

from sessionlint.knowledge import FAILING_METHODS, HELPER_STATEMENTS, RESETTING_METHODS, RUNS_QUERY, is_engine_name
from sessionlint.project.model import Committer
from sessionlint.project.scan import walk_own_scope


def committing_functions(tree: ast.Module) -> Dict[str, Committer]:
    """The module-level functions (sync or async) that call `commit()`/`flush()`, or run a
    statement (knowledge.STATEMENT_METHODS, `query()`), on one of their parameters without
    rolling it back or closing it themselves, directly or through another such function of
    the module they pass it to: a call of one in a `try` fails the way the commit would.
    The `ast` twin of analysis.transactions.helper_commits, for what other modules import
    (real-bug corpus: remnawave-bedolaga's `create_transaction(db=db, ...)` from a crud
    module; moonstream's crawler loop around `add_events_to_session(db_session, ...)`, whose
    query fails; otari's `find_model_pricing(db, ...)`, which queries through
    `_find_by_model_key`) and for the SL007 prefilter.
    Fixture: tests/fixtures/projects/commit_helpers"""
    found: Dict[str, Committer] = {}
    shapes: Dict[str, Tuple[List[str], Set[str], List[CallShape]]] = {}
    resets: Dict[str, Set[str]] = {}
    for statement in tree.body:
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        positional = [a.arg for a in statement.args.posonlyargs + statement.args.args]
        names = set(positional) | {a.arg for a in statement.args.kwonlyargs}
        if not names:
            continue
        committed: Dict[str, str] = {}
        reset: Set[str] = set()
        calls: List[CallShape] = []
        for node in walk_own_scope(statement):
            if type(node) is not ast.Call:
                continue
            if type(node.func) is ast.Name:
                args = tuple(a.id if type(a) is ast.Name else None for a in node.args)
                keywords = tuple((k.arg, k.value.id) for k in node.keywords if k.arg and type(k.value) is ast.Name)
                if any(a in names for a in args) or any(v in names for _, v in keywords):
                    calls.append((node.func.id, args, keywords))
                continue
            if type(node.func) is not ast.Attribute or type(node.func.value) is not ast.Name:
                continue
            receiver, method = node.func.value.id, node.func.attr
            if receiver not in names:
                continue
            if method in FAILING_METHODS or method in HELPER_STATEMENTS:
                committed[receiver] = stronger_failure(committed.get(receiver), method)
            elif method in RESETTING_METHODS:
                reset.add(receiver)
        kept = {name: method for name, method in committed.items() if name not in reset}
        if kept:
            found[statement.name] = committer_summary(kept, positional)
        shapes[statement.name] = (positional, names, calls)
        resets[statement.name] = reset
    through_calls(found, shapes, resets)
    return found


# A call of a module function by name, for through_calls: (callee, the positional arguments'
# names (None for another expression), (keyword, argument name) pairs)
CallShape = Tuple[str, Tuple[Optional[str], ...], Tuple[Tuple[str, str], ...]]


def committer_summary(kept: Mapping[str, str], positional: List[str]) -> Committer:
    """A helper's summary from what it does to each parameter (name -> failing method): the
    parameters as (position, or -1 for keyword-only, name) and the call its failure names
    (`commit` over `flush` over the first statement)."""
    where = tuple((positional.index(n) if n in positional else -1, n) for n in sorted(kept))
    return where, _strongest(kept.values())


def through_calls(
    found: Dict[str, Committer], shapes: Mapping[str, Tuple[List[str], Set[str], List[CallShape]]], resets: Mapping[str, Set[str]]
) -> None:
    """Adds to `found` the functions that pass a parameter to one in `found`, at a position
    (or keyword) it commits, until nothing changes; a function that resets the parameter
    itself is left out."""
    changed = True
    while changed:
        changed = False
        for function, (positional, names, calls) in shapes.items():
            summary = found.get(function)
            kept = {name: summary[1] for _, name in summary[0]} if summary is not None else {}
            before = dict(kept)
            for callee, args, keywords in calls:
                called = found.get(callee)
                if called is None or callee == function:
                    continue
                by_keyword = dict(keywords)
                for position, name in called[0]:
                    arg = by_keyword.get(name) or (args[position] if 0 <= position < len(args) else None)
                    if arg in names and arg not in resets.get(function, ()):
                        kept[arg] = stronger_failure(kept.get(arg), called[1])
            if kept != before:
                found[function] = committer_summary(kept, positional)
                changed = True


def stronger_failure(known: Optional[str], method: str) -> str:
    """The failing call a helper's summary names: `commit` over `flush` over the first
    statement."""
    return _strongest((known, method) if known is not None else (method,))


def _strongest(methods: Iterable[str]) -> str:
    ordered = list(methods)
    for best in ("commit", "flush"):
        if best in ordered:
            return best
    return ordered[0]


# What other modules need to know about a module's query runners (query_runners): its
# closing runners as (function, position of the callable parameter), and the callables
# that return a lazy query ("all_users", "Repo.query", "db.query" for a module instance).
RunnerFacts = Tuple[Tuple[Tuple[str, int], ...], Tuple[str, ...]]  # (what the runners are, lazy callables)
# A module function that closes some of its parameters on every path: (function, the
# positions of those parameters, their names) (closing_functions)
ClosingFacts = Tuple[Tuple[str, Tuple[int, ...], Tuple[str, ...]], ...]
# (runners, lazy callables, properties that check out a new connection on every access,
# functions that close a parameter)
CallableFacts = Tuple[Tuple[Tuple[str, int], ...], Tuple[str, ...], Tuple[str, ...], ClosingFacts]


def query_runners(tree: ast.Module, runners_wanted: bool = True, lazy_wanted: bool = True) -> RunnerFacts:
    """Module functions that call a function they are given and close or remove a session
    in the `finally` of that call (`run_in_thread(function, *args)`: `try: out =
    function(*args) ... finally: db.close()`, in a nested function too), and the module's
    callables that return a query nothing has run yet (`return self.session.query(m)
    .filter_by(...)`). A lazy query handed to such a runner comes back bound to a session the
    runner closed: it runs, reopening a connection nobody closes, when the caller reads it.
    (Real-bug corpus: MorpheusHelper's cogs.) `runners_wanted`, `lazy_wanted`: whether the
    text can hold either (builder's cheap tests), so that the walks are not made for nothing.
    Fixture: tests/fixtures/projects/query_runners"""
    runners: Dict[str, int] = {}
    lazy: Set[str] = set()
    classes: Dict[str, Set[str]] = {}
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            position = _closing_runner(statement) if runners_wanted else None
            if position is not None:
                runners[statement.name] = position
            if lazy_wanted and _returns_lazy_query(statement):
                lazy.add(statement.name)
        elif isinstance(statement, ast.ClassDef) and lazy_wanted:
            methods = {m.name for m in statement.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and _returns_lazy_query(m)}
            classes[statement.name] = methods
            lazy.update(f"{statement.name}.{name}" for name in methods)
    for statement in tree.body:  # `db = DB(...)`: the instance's lazy methods
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target] if isinstance(statement, ast.AnnAssign) else []
        value = getattr(statement, "value", None)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and classes.get(value.func.id):
            for target in targets:
                if isinstance(target, ast.Name):
                    lazy.update(f"{target.id}.{name}" for name in classes[value.func.id])
    return tuple(sorted(runners.items())), tuple(sorted(lazy))


def _closing_runner(function: Union[ast.FunctionDef, ast.AsyncFunctionDef]) -> Optional[int]:
    positional = [a.arg for a in function.args.posonlyargs + function.args.args]
    if not positional:
        return None
    for node in ast.walk(function):
        if not isinstance(node, ast.Try) or not node.finalbody:
            continue
        closes = any(
            isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in ("close", "remove")
            for statement in node.finalbody
            for sub in ast.walk(statement)
        )
        if not closes:
            continue
        for statement in node.body:
            for sub in ast.walk(statement):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in positional:
                    return positional.index(sub.func.id)
    return None


def _returns_lazy_query(function: Union[ast.FunctionDef, ast.AsyncFunctionDef]) -> bool:
    """Whether every `return` of the function's own body gives `<x>.query(...)...` with no
    method that runs it at the end, and there is one."""
    returns = [node for node in walk_own_scope(function) if isinstance(node, ast.Return)]
    if not returns:
        return False
    for node in returns:
        methods: List[str] = []
        value = node.value
        while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            methods.append(value.func.attr)
            value = value.func.value
        if not methods or "query" not in methods or methods[0] in RUNS_QUERY:
            return False
    return True


def connection_properties(tree: ast.Module) -> Tuple[str, ...]:
    """Names of the properties of the module's classes that check a new connection out of a
    pool on every access: `return self._engine.connect()`, or the result of a method of the
    class that does (`return self.create_connection()`). Every `obj.connection.execute(...)`
    leaks one. (Real-bug corpus: meltano's SQLConnector.connection, read by sinks and
    streams.) Fixture: tests/fixtures/projects/connection_property"""
    found: Set[str] = set()
    for statement in tree.body:
        if not isinstance(statement, ast.ClassDef):
            continue
        methods = {m.name: m for m in statement.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
        fresh: Set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, method in methods.items():
                if name not in fresh and _returns_new_connection(method, fresh):
                    fresh.add(name)
                    changed = True
        found.update(name for name in fresh if _is_property(methods[name]))
    return tuple(sorted(found))


def _is_property(function: Union[ast.FunctionDef, ast.AsyncFunctionDef]) -> bool:
    """`@property` (not `cached_property`: it checks out one connection and keeps it)."""
    return any(isinstance(d, ast.Name) and d.id == "property" for d in function.decorator_list)


def _returns_new_connection(function: Union[ast.FunctionDef, ast.AsyncFunctionDef], fresh: Set[str]) -> bool:
    """Whether every `return` of the function gives a connection checked out right there:
    `<engine>.connect()` (with `.execution_options(...)` after it), or a method or property
    of the same class in `fresh`; and there is one."""
    returns = [node for node in walk_own_scope(function) if isinstance(node, ast.Return)]
    if not returns or isinstance(function, ast.AsyncFunctionDef):
        return False
    for node in returns:
        value = node.value
        while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "execution_options":
            value = value.func.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            receiver = value.func.value
            if value.func.attr == "connect" and _engine_like(receiver):
                continue
            if isinstance(receiver, ast.Name) and receiver.id == "self" and value.func.attr in fresh:
                continue
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self" and value.attr in fresh:
            continue
        return False
    return True


def _engine_like(node: ast.AST) -> bool:
    """`engine`, `self._engine`, `self.sqlalchemy_engine`: named as engines are."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
    return name is not None and (is_engine_name(name) or is_engine_name(name.lstrip("_")))


def closing_functions(tree: ast.Module) -> ClosingFacts:
    """Module functions that close a parameter on every path: `param.close()` in the `finally`
    of a `try` that is a statement of the body, or of a `with` block's body (the `with`
    always runs it), or `with param:` / `with closing(param):` there. Callers in other
    modules hand such a session over for good (the ast twin of analysis.ownership's
    find_closers, for what other modules import; fresh-project review: a job's `run()` that
    closes the session its tests pass). Fixture: tests/fixtures/projects/closing_helpers"""
    found = []
    for statement in tree.body:
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        positional = [a.arg for a in statement.args.posonlyargs + statement.args.args]
        names = set(positional) | {a.arg for a in statement.args.kwonlyargs}
        closed: Set[str] = set()
        pending: List[ast.stmt] = list(statement.body)
        while pending:
            node = pending.pop()
            if isinstance(node, ast.Try):
                for sub in (s for final in node.finalbody for s in ast.walk(final)):
                    if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "close" and isinstance(sub.func.value, ast.Name):
                        if sub.func.value.id in names:
                            closed.add(sub.func.value.id)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    value = item.context_expr
                    if isinstance(value, ast.Call) and isinstance(value.func, (ast.Name, ast.Attribute)) and value.args:
                        callee = value.func.id if isinstance(value.func, ast.Name) else value.func.attr
                        first = value.args[0]
                        if callee in ("closing", "aclosing") and isinstance(first, ast.Name) and first.id in names:
                            closed.add(first.id)
                    elif isinstance(value, ast.Name) and value.id in names:
                        closed.add(value.id)
                pending.extend(node.body)
        if closed:
            positions = tuple(i for i, name in enumerate(positional) if name in closed)
            found.append((statement.name, positions, tuple(sorted(closed))))
    return tuple(sorted(found))
