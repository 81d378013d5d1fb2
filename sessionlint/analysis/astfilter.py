"""Second-stage prefilters on CPython's `ast`, for text triggers that match far more files
than have findings. `ast.parse` costs about a tenth of `libcst.parse_module` plus the
traversal, so a file that passes a text trigger but cannot hold a finding of that rule is
settled here without libcst. Each check errs towards True: it may keep a file that then has
no finding, never drop one that has (every fixture runs with and without the prefilter).
No libcst import here.
"""

import ast
from typing import AbstractSet, Any, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from sessionlint.knowledge import (
    CONVENTIONAL_SESSION_NAMES,
    FAILING_CALLS,
    HANDOFF_SINKS,
    RESETTING_METHODS,
    SESSION_READS,
    STREAMING_RESPONSES,
    is_database_error,
)
from sessionlint.project.callables import committing_functions

_TRY_TYPES = tuple(t for t in (getattr(ast, "Try", None), getattr(ast, "TryStar", None)) if t is not None)


def _terminal(node: Optional[ast.expr]) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def may_leave_failed_transaction(tree: ast.AST, imported: AbstractSet[str] = frozenset()) -> bool:
    """Whether SL007 can have anything to say: some `try` calls `x.commit()`/`x.flush()` in
    its body, or a function that commits a session it is given (of the module, or one of
    `imported`: the names of the project's such functions), and has a handler that catches
    database errors and neither starts with `raise` nor with a reset (`x.rollback()`,
    `x.close()`, ...) of the one receiver committed, nor ends with `raise` without naming
    a receiver before it."""
    helpers: Optional[Set[str]] = None  # worked out at the first `try` that calls a name
    for node, scope, in_loop in _tries(tree):
        receivers: Set[str] = set()
        for statement in node.body:
            for sub in ast.walk(statement):
                if type(sub) is not ast.Call:
                    continue
                if type(sub.func) is ast.Attribute and sub.func.attr in FAILING_CALLS:
                    # a load (knowledge.SESSION_READS) counts only on a plain name bound to a
                    # session, as transactions.find_missing_rollbacks reads it
                    if sub.func.attr not in SESSION_READS or type(sub.func.value) is ast.Name:
                        receivers.add(ast.dump(sub.func.value))
                elif type(sub.func) is ast.Name:
                    if helpers is None:
                        helpers = set(committing_functions(tree)) | set(imported) if isinstance(tree, ast.Module) else set(imported)
                    if sub.func.id in helpers:
                        # `_save(db, item)`: a helper commits one of its arguments
                        receivers.update(ast.dump(a) for a in [*sub.args, *(k.value for k in sub.keywords)] if type(a) in (ast.Name, ast.Attribute))
        if not receivers:
            continue
        for handler in node.handlers:
            kind = handler.type
            candidates = kind.elts if isinstance(kind, ast.Tuple) else [kind]
            if kind is not None and not any(is_database_error(_terminal(c)) for c in candidates):
                continue
            if isinstance(handler.body[0], ast.Raise) or _resets_first(handler.body, receivers):
                continue
            if isinstance(handler.body[-1], ast.Raise) and not _mentions(handler.body[:-1], receivers):
                continue  # re-raised, and nothing before names the session: no use on the way
            if in_loop or _mentions(handler.body, receivers) or (node.finalbody and _mentions(node.finalbody, receivers)):
                return True
            if _outlives(receivers, scope) or _named_after(scope, node, receivers):
                return True
    return False


def _tries(tree: ast.AST) -> Iterable[Tuple[Any, ast.AST, bool]]:
    """Each `try` statement with the function (or module) it is in and whether a loop of
    that function encloses it."""
    stack: List[Tuple[ast.AST, ast.AST, bool]] = [(tree, tree, False)]
    while stack:
        node, scope, in_loop = stack.pop()
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            child: ast.AST
            for child in getattr(node, field, None) or ():
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    stack.append((child, child, False))
                elif isinstance(child, ast.ClassDef):
                    stack.append((child, child, False))
                elif isinstance(child, (ast.stmt, ast.excepthandler, getattr(ast, "match_case", ast.excepthandler))):
                    if isinstance(child, _TRY_TYPES):
                        yield child, scope, in_loop
                    stack.append((child, scope, in_loop or isinstance(child, (ast.For, ast.AsyncFor, ast.While))))


def _outlives(receivers: Set[str], scope: ast.AST) -> bool:
    """Whether a receiver may outlive the function (SL007 reports a swallowed failure of such
    a session with no use in sight): an attribute (`self.session`), or a name the function
    neither takes nor binds (a module-level session)."""
    if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if any(not receiver.startswith("Name(") for receiver in receivers):
        return True
    args = scope.args
    local = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a is not None}
    local |= {n.id for n in ast.walk(scope) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return not receivers <= {ast.dump(ast.Name(id=name, ctx=ast.Load())) for name in local}


def _named_after(scope: ast.AST, node: Any, receivers: Set[str]) -> bool:
    """Whether a receiver is named in the function after the `try` statement ends."""
    end = getattr(node, "end_lineno", None) or node.lineno
    for sub in ast.walk(scope):
        if isinstance(sub, (ast.Name, ast.Attribute)) and sub.lineno > end and ast.dump(sub) in receivers:
            return True
    return False


def _mentions(body: Sequence[ast.stmt], receivers: Set[str]) -> bool:
    """Whether any of the statements names one of the receivers (as `ast.dump`s)."""
    for statement in body:
        for sub in ast.walk(statement):
            if type(sub) in (ast.Name, ast.Attribute) and ast.dump(sub) in receivers:
                return True
    return False


def _resets_first(body: Sequence[ast.stmt], receivers: Set[str]) -> bool:
    """Whether a handler resets the one receiver committed (`x.rollback()`, `x.close()`, ...)
    in a statement of its own, with nothing before it that names the receiver or raises:
    logging first and rolling back second is as safe as the other way round."""
    if len(receivers) != 1:
        return False
    (receiver,) = receivers
    for statement in body:
        if (
            isinstance(statement, ast.Expr)
            and type(statement.value) is ast.Call
            and type(statement.value.func) is ast.Attribute
            and statement.value.func.attr in RESETTING_METHODS
            and ast.dump(statement.value.func.value) == receiver
        ):
            return True
        for sub in ast.walk(statement):
            if isinstance(sub, (ast.Raise, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                return False
            if isinstance(sub, (ast.Name, ast.Attribute)) and ast.dump(sub) == receiver:
                return False
    return False


def may_hand_session_over(tree: ast.AST) -> bool:
    """Whether SL008 can have anything to say: in some function (or the module body), a name
    that a `with ... as name` binds, or a parameter that may be injected (annotated, or with
    a call as its default: `Depends(get_db)`), is passed by name to a sink call (`add_task`,
    `Thread`, `submit`, ...), is in scope of a streaming response (`StreamingResponse`), or
    is stored where it outlives the function: a `global` name, a
    subscript of a module-level name, an attribute of a module-level class. A scope's names
    and `global`s count in the functions nested in it too. One walk of the tree, each node
    with the scopes whose body holds it (not a walk of every function's body on its own)."""
    module_names, classes = module_bindings(tree)
    # per scope (0: the module): the names it owns, the names it declares global
    owned: List[Set[str]] = [set()]
    declared: List[Set[str]] = [set()]
    sinks: List[Tuple[ast.Call, Tuple[int, ...]]] = []
    stores: List[Tuple[ast.Assign, Tuple[int, ...]]] = []
    # streaming responses: the session may reach the body through a name bound earlier
    # (`packets = stream(db=db)`), so any owned name in scope keeps the file
    streams: List[Tuple[int, ...]] = []
    stack: List[Tuple[ast.AST, Tuple[int, ...]]] = [(statement, (0,)) for statement in getattr(tree, "body", ())]
    while stack:
        node, scopes = stack.pop()
        fields: Sequence[str]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            own = len(owned)
            owned.append({arg.arg for arg, default in _params_with_defaults(node.args) if arg.annotation is not None or isinstance(default, ast.Call)})
            declared.append(set())
            inner = scopes + (own,)
            stack.extend((statement, inner) for statement in node.body)
            fields = [name for name in node._fields if name != "body"]  # decorators, defaults: the outer scopes'
        else:
            if isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name):
                        for scope in scopes:
                            owned[scope].add(item.optional_vars.id)
            elif isinstance(node, ast.Global):
                for scope in scopes:
                    declared[scope].update(node.names)
            elif isinstance(node, ast.Call):
                if _terminal(node.func) in HANDOFF_SINKS:
                    sinks.append((node, scopes))
                elif _terminal(node.func) in STREAMING_RESPONSES:
                    streams.append(scopes)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                stores.append((node, scopes))
            fields = node._fields
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                stack.extend((item, scopes) for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append((value, scopes))
    if any(owned[scope] for scopes in streams for scope in scopes):
        return True
    for call, scopes in sinks:
        passed = _passed_names(call)
        if any(passed & owned[scope] for scope in scopes) or passed & _SELF_SESSIONS:
            return True
    for assign, scopes in stores:
        assert isinstance(assign.value, ast.Name)  # only `name = other_name` is collected
        source = assign.value.id
        for scope in scopes:
            if source not in owned[scope]:
                continue
            if any(outlives_function(target, declared[scope], module_names, classes) for target in assign.targets):
                return True
    return False


def module_bindings(tree: ast.AST) -> Tuple[Set[str], Set[str]]:
    """(names a module-level assignment binds, module-level class names) of `tree`."""
    module_names: Set[str] = set()
    classes: Set[str] = set()
    for statement in getattr(tree, "body", ()):
        if isinstance(statement, ast.ClassDef):
            classes.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            module_names.update(t.id for t in targets if isinstance(t, ast.Name))
    return module_names, classes


def outlives_function(target: ast.expr, declared: Set[str], module_names: Set[str], classes: Set[str]) -> bool:
    """Whether an assignment to `target` stores where the value outlives the function: a name
    `declared` global, a subscript of a module-level name, an attribute of a module-level class."""
    if isinstance(target, ast.Name):
        return target.id in declared
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        return target.value.id in module_names
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        return target.value.id in classes
    return False


def _params_with_defaults(arguments: ast.arguments):
    positional = list(arguments.posonlyargs) + list(arguments.args)
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    yield from zip(positional, defaults)
    yield from zip(arguments.kwonlyargs, arguments.kw_defaults)
    for extra in (arguments.vararg, arguments.kwarg):
        if extra is not None:
            yield extra, None


_SELF_SESSIONS = frozenset(f"self.{name.lstrip('_')}" for name in CONVENTIONAL_SESSION_NAMES)


def _passed_names(call: ast.Call) -> Set[str]:
    """Names passed as values anywhere in a call's arguments (not `db.attr`, not inside a
    lambda), as lifecycle's `_passed_names` takes them."""
    names: Set[str] = set()
    stack: List[ast.AST] = [*call.args, *(keyword.value for keyword in call.keywords)]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(f"self.{node.attr.lstrip('_')}")  # `self.db`: handoffs._passed_names(with_self=True)
            continue
        elif isinstance(node, ast.Lambda):
            continue
        else:
            stack.extend(ast.iter_child_nodes(node))
    return names


def may_run_query_after_block(tree: ast.AST) -> bool:
    """Whether SL003's lazy-query check (analysis.lazy) can have anything to say: some
    `with ... as <session>:` block binds a name to `<session>.query(...)`."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.With, ast.AsyncWith)):
            continue
        names = {i.optional_vars.id for i in node.items if isinstance(i.optional_vars, ast.Name)}
        if not names:
            continue
        for statement in node.body:
            for sub in ast.walk(statement):
                if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                    root = sub.value.func
                    while isinstance(root, (ast.Attribute, ast.Call)):
                        root = root.value if isinstance(root, ast.Attribute) else root.func
                    if isinstance(root, ast.Name) and root.id in names:
                        return True
    return False


def calls_a_runner(tree: ast.AST, runners: FrozenSet[str]) -> bool:
    """Whether some call of a project query runner (`run_in_thread(db.query, Model)`) is
    handed a callable by name: SL003's check through a runner (analysis.lazy) may report it."""
    if not runners:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _terminal(node.func) in runners and any(isinstance(a, (ast.Name, ast.Attribute)) for a in node.args):
            return True
    return False


# Text triggers (engine.STATIC_TRIGGERS) with a check here: a file that passes only these
# triggers is parsed with `ast` first, and with libcst only if a check says so.
REFINED_TRIGGERS = {"commit": may_leave_failed_transaction, "handoff": may_hand_session_over, "lazy_query": may_run_query_after_block}
