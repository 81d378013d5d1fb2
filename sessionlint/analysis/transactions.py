"""Exception handlers that swallow a failed flush or commit and go on using the session.

When `commit()` or `flush()` raises, SQLAlchemy leaves the Session's transaction inactive:
every later use raises `PendingRollbackError` ("This Session's transaction has been rolled
back due to a previous exception during flush") until `rollback()` is called.
https://docs.sqlalchemy.org/en/20/errors.html#error-7s2a
"""

import types
from dataclasses import dataclass
from typing import AbstractSet, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

import libcst as cst

from sessionlint.analysis.astfilter import RESETTING_METHODS, is_database_error
from sessionlint.analysis.tree import (
    SCOPE_TYPES,
    dotted_name,
    iter_children,
    nested_blocks,
    suite_statements,
    terminal_name,
    walk,
)
from sessionlint.knowledge import FAILING_METHODS, HELPER_STATEMENTS, SESSION_READS, STATEMENT_METHODS
from sessionlint.project.callables import CallShape, committer_summary, stronger_failure, through_calls
from sessionlint.project.model import Committer

# Receiver names taken to be sessions when nothing else says so.
CONVENTIONAL_SESSION_NAMES = frozenset({"session", "db", "db_session", "dbsession", "sess", "_session", "async_session"})


# (Committer: a function of the module that commits or flushes a session it is given, and
# does not roll it back: its parameters it does so to, as (position, name); what it calls)


@dataclass(frozen=True)
class MissingRollback:
    handler: Union[cst.ExceptHandler, cst.ExceptStarHandler]
    session: str  # the receiver, as written: `db`, `self.session`
    failing_call: cst.Call  # the commit()/flush() in the try body
    next_use: Optional[cst.CSTNode]  # where the session is used again (None: after the function)
    in_next_iteration: bool  # the use is reached by the enclosing loop's next iteration
    # no use follows in the function, but the session outlives it: "attribute"
    # (`self.session`), "module" (a module-level session)
    outlives: str = ""
    # the function of the module that commits the session it is given (`_save(db, item)`),
    # when the failing call is one: (its name, what it calls on the session)
    via: Optional[Tuple[str, str]] = None
    # the function did not create the session (a parameter, `self.session`, a module-level
    # session): the transaction is its caller's or its owner's, and a rollback ends it too
    borrowed: bool = False

    @property
    def method(self) -> str:
        """`commit` or `flush`: what failed."""
        if self.via is not None:
            return self.via[1]
        func = self.failing_call.func
        return func.attr.value if isinstance(func, cst.Attribute) else ""


def is_session_key(key: str, known: Set[str]) -> bool:
    if key in known:
        return True
    last = key.rsplit(".", 1)[-1]
    return last in CONVENTIONAL_SESSION_NAMES


def find_missing_rollbacks(
    body: Sequence[cst.CSTNode],
    known_sessions: Set[str],
    function: Optional[cst.FunctionDef] = None,
    is_registry: Callable[[str], bool] = lambda name: False,
    helpers: Optional[Mapping[str, FrozenSet[str]]] = None,
    held: AbstractSet[str] = frozenset(),
    committers: Optional[Mapping[str, Committer]] = None,
    statements_abort: bool = True,
) -> List[MissingRollback]:
    """In a function (`function`), a handler that swallows the failure of a session that
    outlives it (see `MissingRollback.outlives`) leaves it unusable for whoever uses it next,
    even when the function itself does not use it again. `helpers`: the receivers each
    function or method of the module rolls back or closes (`helper_resets`), so that a
    handler calling `self._handle_error(e)` which does `self.session.rollback()` resets."""
    found: List[MissingRollback] = []
    outliving = _Outliving(function, is_registry, held) if function is not None else None
    if not statements_abort:
        committers = {name: c for name, c in (committers or {}).items() if c[1] in FAILING_METHODS}
    _visit_block(body, [], known_sessions, found, _savepoints(body), outliving, helpers or {}, committers or {}, statements_abort=statements_abort)
    return found


class _Outliving:
    """How a receiver as written outlives the function it is used in: "attribute"
    (`self.session`, `app.session`), "module" (a module-level session), or "" (see `get`).
    Fixture: SL007/shared_session_swallowed.py"""

    def __init__(self, function: cst.FunctionDef, is_registry: Callable[[str], bool], held: AbstractSet[str] = frozenset()) -> None:
        self.function = function
        self.is_registry = is_registry
        # attributes the enclosing class sets on `self` (to anything but None) in its
        # methods: the object holds that session (not a per-call one a metaclass or a
        # decorator puts there, tvb-style)
        self.held = held
        self._bound: Optional[Set[str]] = None
        params = function.params
        every = [*params.posonly_params, *params.params, *params.kwonly_params]
        every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
        self.parameters = {p.name.value for p in every}

    def get(self, key: str) -> str:
        """Only sessions that outlive it for long are answered: a module-level session, one
        on `self` or on a module-level object. The caller's session (a parameter) and the
        thread's session of a registry usually end with the request that the function's
        return ends too (Flask-SQLAlchemy removes `db.session` at teardown): their next
        user is rarely there, and the corpus review found those findings not worth reading."""
        head = key.split(".", 1)[0]
        if head in self.parameters:
            if head in ("self", "cls") and key.count(".") == 1 and key.split(".")[1] in self.held:
                return "attribute"
            return ""
        if head in self.bound or self.is_registry(key):
            return ""
        return "module" if head == key else "attribute"

    def is_borrowed(self, key: str) -> bool:
        """The function binds no part of the receiver: it was given the session (a parameter,
        `self.session`) or reads one that outlives it, and did not create it."""
        return key.split(".", 1)[0] not in self.bound

    @property
    def bound(self) -> Set[str]:
        if self._bound is None:
            names: Set[str] = set()
            declared: Set[str] = set()
            for node in walk(self.function.body, enter_scopes=False):
                target: Optional[cst.CSTNode] = None
                if isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign)):
                    target = node.target
                elif isinstance(node, cst.AsName):
                    target = node.name
                elif isinstance(node, (cst.For, cst.CompFor)):
                    target = node.target
                elif isinstance(node, cst.NamedExpr):
                    target = node.target
                elif isinstance(node, cst.Global):
                    declared.update(n.name.value for n in node.names)
                if target is not None:
                    names.update(n.value for n in walk(target) if isinstance(n, cst.Name))
            self._bound = names - declared
        return self._bound


def _savepoints(body: Sequence[cst.CSTNode]) -> Dict[str, str]:
    """Names bound to a session's transaction object: `nested = session.begin_nested()`,
    awaited or not (-> "session"). `nested.rollback()` rolls the session back to a usable
    state. Fixture: SL007/rollback_through_transaction_object.py"""
    found: Dict[str, str] = {}
    for root in body:
        for node in walk(root, enter_scopes=False):
            if type(node) is not cst.Assign:
                continue
            value = node.value.expression if type(node.value) is cst.Await else node.value
            if type(value) is cst.Call:
                pair = _receiver_and_method(value)
                if pair is not None and pair[1] in ("begin_nested", "begin"):
                    for target in node.targets:
                        name = dotted_name(target.target)
                        if name:
                            found[name] = pair[0]
    return found


def _visit_block(
    statements: Sequence[cst.CSTNode],
    loops: List[cst.CSTNode],
    known: Set[str],
    found: List[MissingRollback],
    savepoints: Dict[str, str],
    outliving: Optional[_Outliving],
    helpers: Mapping[str, FrozenSet[str]],
    committers: Mapping[str, Committer],
    after: Sequence[cst.CSTNode] = (),
    statements_abort: bool = True,
) -> None:
    """`after`: what runs when the block completes, for a block of an `if` (the statements
    after the `if`, and after the blocks around it): a use there follows a swallowed failure
    as much as one in the block (real-bug corpus: remnawave-bedolaga's purchase activation,
    whose `try` sits in `if not purchase.is_gift:`). Fixture: tests/fixtures/projects/commit_helpers"""
    for index, statement in enumerate(statements):
        if isinstance(statement, SCOPE_TYPES):
            continue
        rest = list(statements[index + 1 :]) + list(after)
        if isinstance(statement, (cst.Try, cst.TryStar)):
            _check_try(statement, rest, loops, known, found, savepoints, outliving, helpers, committers, statements_abort)
        inner_loops = loops + [statement] if isinstance(statement, (cst.For, cst.While)) else loops
        continuation = rest if isinstance(statement, cst.If) else ()
        for block in nested_blocks(statement):
            _visit_block(block, inner_loops, known, found, savepoints, outliving, helpers, committers, continuation, statements_abort)


def _calls(nodes: Iterable[cst.CSTNode]) -> Iterable[cst.Call]:
    for root in nodes:
        for node in walk(root, enter_scopes=False):
            if type(node) is cst.Call:
                yield node


def _receiver_and_method(call: cst.Call) -> Optional[tuple]:
    func = call.func
    if isinstance(func, cst.Attribute):
        key = dotted_name(func.value)
        if key:
            return key, func.attr.value
    return None


def _catches_database_errors(handler: Union[cst.ExceptHandler, cst.ExceptStarHandler]) -> bool:
    kind = handler.type
    if kind is None:
        return True
    candidates = [e.value for e in kind.elements] if isinstance(kind, cst.Tuple) else [kind]
    return any(is_database_error(terminal_name(c) or "") for c in candidates)


def _first_use(
    nodes: Iterable[cst.CSTNode], key: str, savepoints: Dict[str, str], helpers: Mapping[str, FrozenSet[str]] = types.MappingProxyType({})
) -> Optional[cst.CSTNode]:
    """The first call of a method on `key` (other than a reset) or call passing `key` on,
    unless the name is bound to a new session first (`session = factory()`, `with
    factory() as session:`). Fixture: SL007/handler_opens_a_new_session.py"""
    for root in nodes:
        for node in walk(root, enter_scopes=False):
            if type(node) is cst.Assign:
                if any(dotted_name(t.target) == key for t in node.targets):
                    return None
            elif type(node) is cst.WithItem:
                if node.asname is not None and dotted_name(node.asname.name) == key:
                    return None
            elif type(node) is cst.Call:
                pair = _receiver_and_method(node)
                if pair is not None and pair[0] == key:
                    if pair[1] in RESETTING_METHODS or _raw_reset(node, key):
                        return None  # reset before any use: fine
                    return node
                if pair is not None and pair[1] == "rollback" and savepoints.get(pair[0]) == key:
                    return None
                if _helper_resets(node, key, helpers):
                    return None
                for arg in node.args:
                    if dotted_name(arg.value) == key:
                        return node
    return None


def _check_try(
    node: Union[cst.Try, cst.TryStar],
    following: Sequence[cst.CSTNode],
    loops: List[cst.CSTNode],
    known: Set[str],
    found: List[MissingRollback],
    savepoints: Dict[str, str],
    outliving: Optional[_Outliving],
    helpers: Mapping[str, FrozenSet[str]],
    committers: Mapping[str, Committer],
    statements_abort: bool = True,
) -> None:
    body = suite_statements(node.body)
    failing: Dict[str, cst.Call] = {}
    vias: Dict[str, Tuple[str, str]] = {}
    savepoint: Set[str] = set()
    for call in _calls(_reachable_by_handlers(body)):
        pair = _receiver_and_method(call)
        if pair is None:
            committed = _committed_by_helper(call, committers, known)
            if committed is not None and committed[0] not in failing:
                failing[committed[0]] = call
                vias[committed[0]] = committed[1]
            continue
        key, method = pair
        # a load counts only on a name bound to a session here (`self.session.get(url)` of
        # an HTTP client is named as sessions are). Fixture: SL007/failed_session_load_swallowed.py
        reads = method in SESSION_READS and key in known
        if (method in FAILING_METHODS or (statements_abort and (method in STATEMENT_METHODS or reads))) and is_session_key(key, known):
            failing.setdefault(key, call)
        elif method == "begin_nested":
            savepoint.add(key)  # a savepoint's context manager rolls back for us
    for key in savepoint | _managed_in(body):
        failing.pop(key, None)
    if not failing:
        return
    for handler in node.handlers:
        if not _catches_database_errors(handler):
            continue
        handler_body = suite_statements(handler.body)
        if any(_inspects_state(handler_body, key) for key in failing):
            continue
        before_raise = _until_first_raise(handler_body)
        falls_through = _can_complete(handler_body)
        for key, failing_call in failing.items():
            next_iteration = False
            # A use in the handler itself, before any `raise` on its way
            use = _first_use(before_raise, key, savepoints, helpers)
            if use is None and node.finalbody is not None and not _resets(before_raise, key, savepoints, helpers):
                if not any(isinstance(n, cst.Raise) for n in walk(handler.body, enter_scopes=False)):
                    # the handler swallows the failure and the `finally` runs next, on the
                    # same session (real-bug corpus: codechecker's db_cleanup). Fixture:
                    # SL007/finally_uses_session_after_swallowed_commit.py
                    use = _first_use(suite_statements(node.finalbody.body), key, savepoints, helpers)
            if use is None and not _resets(before_raise, key, savepoints, helpers):
                ends = _ending(handler_body)
                if falls_through and ends is None and not _exits_on_fallback(handler_body, following):
                    use = _first_use(following, key, savepoints, helpers)
                if use is None and (falls_through or ends == "continue") and ends != "break" and loops:
                    # the next iteration uses the session, unless the loop body resets it first
                    use = _first_use([loops[-1]], key, savepoints, helpers)
                    next_iteration = use is not None
            borrowed = outliving is not None and outliving.is_borrowed(key)
            if use is not None:
                found.append(MissingRollback(handler, key, failing_call, use, next_iteration, via=vias.get(key), borrowed=borrowed))
            elif (
                outliving is not None
                and outliving.get(key)
                and not any(isinstance(n, cst.Raise) for n in walk(handler.body, enter_scopes=False))
                and not _resets(handler_body, key, savepoints, helpers)
                and not (node.finalbody is not None and _resets(suite_statements(node.finalbody.body), key, savepoints, helpers))
            ):
                # Nothing here uses it again, but the session outlives the function: its next
                # user (the caller, the request's later code, the next request) gets
                # PendingRollbackError.
                found.append(MissingRollback(handler, key, failing_call, None, False, outliving.get(key), vias.get(key), borrowed))


def _exits_on_fallback(handler: Sequence[cst.CSTNode], following: Sequence[cst.CSTNode]) -> bool:
    """The handler sets the looked-up value to None (`user = None`) and the statement after
    the `try` leaves when it is (`if not user: flask.abort(404)`): the session is not used
    again on the handler's path (corpus review: anitya's admin routes).
    Fixture: SL007/failed_statement_swallowed.py"""
    nulled: Set[str] = set()
    for statement in handler:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Assign) and isinstance(small.value, cst.Name) and small.value.value == "None":
                nulled.update(t.target.value for t in small.targets if isinstance(t.target, cst.Name))
    if not nulled or not following or not isinstance(following[0], cst.If) or following[0].orelse is not None:
        return False
    test = following[0].test
    tested: Optional[cst.BaseExpression]
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        tested = test.expression
    elif isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.comparisons[0].operator, cst.Is):
        comparator = test.comparisons[0].comparator
        tested = test.left if isinstance(comparator, cst.Name) and comparator.value == "None" else None
    else:
        return False
    if not isinstance(tested, cst.Name) or tested.value not in nulled:
        return False
    body = suite_statements(following[0].body)
    last = body[-1] if body else None
    if not isinstance(last, cst.SimpleStatementLine) or not last.body:
        return False
    small = last.body[-1]
    if isinstance(small, (cst.Raise, cst.Return)):
        return True
    return isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and terminal_name(small.value.func) == "abort"


def _reachable_by_handlers(block: Sequence[cst.CSTNode]) -> List[cst.CSTNode]:
    """The parts of a `try` body whose exceptions can reach its handlers: an inner `try`, at
    any depth, whose catch-all handler never raises keeps its body's exceptions to itself
    (that inner handler is checked on its own); its handlers, `else` and `finally` stay.
    Fixture: SL007/nested_try_inner_handler_catches_all.py"""
    kept: List[cst.CSTNode] = []
    pending: List[cst.CSTNode] = list(reversed(block))
    while pending:
        node = pending.pop()
        if type(node).__name__ in ("Try", "TryStar") and _swallows_everything(node):
            kept.extend(_parts_outside_body(node))
        elif any(type(n).__name__ in ("Try", "TryStar") for n in walk(node, enter_scopes=False)):
            if isinstance(node, SCOPE_TYPES):
                continue
            # Split the compound statement: its own expressions stay, its blocks are opened.
            pending.extend(reversed(list(iter_children(node))))
        else:
            kept.append(node)
    return kept


def _swallows_everything(node: cst.CSTNode) -> bool:
    for handler in getattr(node, "handlers", ()):
        kind = handler.type
        catch_all = kind is None or (terminal_name(kind) or "") in ("Exception", "BaseException")
        if catch_all and not any(isinstance(n, cst.Raise) for n in walk(handler.body, enter_scopes=False)):
            return True
    return False


def _parts_outside_body(node: cst.CSTNode) -> List[cst.CSTNode]:
    parts: List[cst.CSTNode] = [handler.body for handler in getattr(node, "handlers", ())]
    for name in ("orelse", "finalbody"):
        part = getattr(node, name, None)
        if part is not None:
            parts.append(part)
    return parts


def _managed_in(block: Sequence[cst.CSTNode]) -> Set[str]:
    """Sessions a context manager inside the `try` body looks after: `with session_scope() as
    session:` (the scope rolls back and closes on the way out, and the next use of the name
    is a new session), `with session.begin():` (rolls the transaction back on an exception).
    Fixture: SL007/session_scope_entered_inside_try.py"""
    managed: Set[str] = set()
    for root in block:
        for node in walk(root, enter_scopes=False):
            if not isinstance(node, cst.With):
                continue
            for item in node.items:
                if item.asname is not None and isinstance(item.asname.name, cst.Name):
                    managed.add(item.asname.name.value)
                call = item.item
                if isinstance(call, cst.Call):
                    pair = _receiver_and_method(call)
                    if pair is not None and pair[1] in ("begin", "begin_nested"):
                        managed.add(pair[0])
                    elif pair is not None and pair[1] == "using" and call.args:
                        # oslo.db's enginefacade: `with writer.using(context):` gives
                        # `context.session` a transaction that rolls back on the way out.
                        # Fixture: SL007/oslo_db_errors.py
                        owner = dotted_name(call.args[0].value)
                        if owner:
                            managed.add(f"{owner}.session")
    return managed


def _inspects_state(block: Sequence[cst.CSTNode], key: str) -> bool:
    """The handler looks at the session's state (`if not session.is_active: break`) and
    decides for itself: the analysis cannot tell which way it goes.
    Fixture: SL007/handler_checks_is_active.py"""
    for root in block:
        for node in walk(root, enter_scopes=False):
            if isinstance(node, cst.Attribute) and node.attr.value in ("is_active", "in_transaction"):
                if dotted_name(node.value) == key:
                    return True
    return False


def _until_first_raise(block: Sequence[cst.CSTNode]) -> List[cst.CSTNode]:
    """The statements of a block up to (not including) the first top-level `raise`."""
    kept: List[cst.CSTNode] = []
    for statement in block:
        if isinstance(statement, cst.SimpleStatementLine) and any(isinstance(s, cst.Raise) for s in statement.body):
            break
        kept.append(statement)
    return kept


def _can_complete(block: Sequence[cst.CSTNode]) -> bool:
    """Whether a block can finish without raising, returning, breaking or continuing: its
    last abrupt statement is conditional, or an if/else with a branch that completes."""
    for statement in block:
        if isinstance(statement, cst.SimpleStatementLine):
            if any(isinstance(s, (cst.Raise, cst.Return, cst.Continue, cst.Break)) for s in statement.body):
                return False
        elif isinstance(statement, cst.If) and not _if_can_complete(statement):
            return False
    return True


def _if_can_complete(node: cst.If) -> bool:
    if _can_complete(suite_statements(node.body)):
        return True
    orelse = node.orelse
    if orelse is None:
        return True
    if isinstance(orelse, cst.If):
        return _if_can_complete(orelse)
    return _can_complete(suite_statements(orelse.body))


def _statements_in(block: Sequence[cst.CSTNode]) -> Iterable[cst.CSTNode]:
    for root in block:
        for node in walk(root, enter_scopes=False):
            if isinstance(node, cst.BaseSmallStatement):
                yield node


def _resets(block: Sequence[cst.CSTNode], key: str, savepoints: Dict[str, str], helpers: Mapping[str, FrozenSet[str]] = types.MappingProxyType({})) -> bool:
    for call in _calls(block):
        if _helper_resets(call, key, helpers) or _raw_reset(call, key):
            return True
        pair = _receiver_and_method(call)
        if pair is not None and pair[0] == key and pair[1] in RESETTING_METHODS:
            return True
        if pair is not None and pair[1] == "rollback" and savepoints.get(pair[0]) == key:
            return True
    return False


def _raw_reset(call: cst.Call, key: str) -> bool:
    """`db.execute("ROLLBACK")` (or "COMMIT"): a statement that ends the aborted transaction
    on the same connection (corpus review: lnbits' migrations)."""
    pair = _receiver_and_method(call)
    if pair is None or pair[0] != key or pair[1] not in STATEMENT_METHODS or not call.args:
        return False
    first = call.args[0].value
    if isinstance(first, cst.Call) and first.args:  # `text("ROLLBACK")`
        first = first.args[0].value
    value = first.evaluated_value if isinstance(first, cst.SimpleString) else None
    return isinstance(value, str) and value.strip().rstrip(";").strip().upper() in ("ROLLBACK", "COMMIT")


def _helper_resets(call: cst.Call, key: str, helpers: Mapping[str, FrozenSet[str]]) -> bool:
    """A call of a function or method of the module that rolls back or closes `key`:
    `self._handle_error(e)` whose body does `self.session.rollback()`.
    Fixture: SL007/helper_rolls_back.py"""
    func = call.func
    if isinstance(func, cst.Name):
        name = func.value
    elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in ("self", "cls"):
        name = func.attr.value
    else:
        return False
    return key in helpers.get(name, ())


def held_attributes(cls: cst.ClassDef, module: Optional[cst.Module] = None, depth: int = 0) -> FrozenSet[str]:
    """Attributes a class sets on `self` in its methods to something other than None, with
    those its base classes of the same module set (flask-restless's views get `self.session`
    from their base). A base from elsewhere adds nothing: tvb's DAOs inherit a metaclass
    that puts a per-call session on `self`."""
    found: Set[str] = set()
    if module is not None and depth < 5:
        classes = {s.name.value: s for s in module.body if isinstance(s, cst.ClassDef)}
        for base in cls.bases:
            inherited = classes.get(dotted_name(base.value) or "")
            if inherited is not None and inherited is not cls:
                found |= held_attributes(inherited, module, depth + 1)
    for node in walk(cls):
        if isinstance(node, cst.Assign) and not (isinstance(node.value, cst.Name) and node.value.value == "None"):
            for target in node.targets:
                dotted = dotted_name(target.target)
                if dotted is not None and dotted.startswith("self.") and dotted.count(".") == 1:
                    found.add(dotted[5:])
    return frozenset(found)


def helper_commits(module: cst.Module) -> Dict[str, Committer]:
    """The module-level functions that commit (or flush, or run a statement on) a session
    parameter without rolling it back themselves, directly or through another such function
    of the module: a call of one in a `try` fails the way the commit would (real-bug corpus:
    the bulk-action loop of remnawave-bedolaga's admin routes). The libcst reading of
    callables.committing_functions. Fixture: SL007/helper_commits_the_session.py"""
    found: Dict[str, Committer] = {}
    shapes: Dict[str, Tuple[List[str], Set[str], List[CallShape]]] = {}
    resets: Dict[str, Set[str]] = {}
    for statement in module.body:
        if not isinstance(statement, cst.FunctionDef):
            continue
        params = statement.params
        positional = [p.name.value for p in (*params.posonly_params, *params.params)]
        names = set(positional) | {p.name.value for p in params.kwonly_params}
        committed: Dict[str, str] = {}
        reset: Set[str] = set()
        calls: List[CallShape] = []
        for call in _calls([statement.body]):
            if isinstance(call.func, cst.Name):
                plain = [a for a in call.args if a.keyword is None and not a.star]
                args = tuple(a.value.value if isinstance(a.value, cst.Name) else None for a in plain)
                keywords = tuple((a.keyword.value, a.value.value) for a in call.args if a.keyword is not None and isinstance(a.value, cst.Name))
                if any(a in names for a in args) or any(v in names for _, v in keywords):
                    calls.append((call.func.value, args, keywords))
                continue
            pair = _receiver_and_method(call)
            if pair is None or pair[0] not in names:
                continue
            if pair[1] in FAILING_METHODS or pair[1] in HELPER_STATEMENTS:
                committed[pair[0]] = stronger_failure(committed.get(pair[0]), pair[1])
            elif pair[1] in RESETTING_METHODS:
                reset.add(pair[0])
        kept = {name: method for name, method in committed.items() if name not in reset}
        if kept:
            found[statement.name.value] = committer_summary(kept, positional)
        if names:
            shapes[statement.name.value] = (positional, names, calls)
            resets[statement.name.value] = reset
    through_calls(found, shapes, resets)
    return found


def _committed_by_helper(call: cst.Call, committers: Mapping[str, Committer], known: Set[str]) -> Optional[Tuple[str, Tuple[str, str]]]:
    """The session key a call of a committing helper commits, and (helper, method)."""
    if not committers or not isinstance(call.func, cst.Name) or call.func.value not in committers:
        return None
    where, method = committers[call.func.value]
    positional = [a for a in call.args if a.keyword is None and not a.star]
    for position, name in where:
        arg = next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)
        if arg is None and 0 <= position < len(positional):
            arg = positional[position]
        key = dotted_name(arg.value) if arg is not None else None
        if key and is_session_key(key, known):
            return key, (call.func.value, method)
    return None


def helper_resets(module: cst.Module) -> Dict[str, FrozenSet[str]]:
    """For each function and method of `module` by name (methods of different classes
    merged), the receivers it rolls back or closes (`self.session`, `session`)."""
    found: Dict[str, Set[str]] = {}
    for node in walk(module):
        if isinstance(node, cst.FunctionDef):
            for call in _calls([node.body]):
                pair = _receiver_and_method(call)
                if pair is not None and pair[1] in RESETTING_METHODS:
                    found.setdefault(node.name.value, set()).add(pair[0])
    return {name: frozenset(keys) for name, keys in found.items()}


def _ending(block: Sequence[cst.CSTNode]) -> Optional[str]:
    """How a handler block ends when it does not fall through: return, continue, break."""
    for statement in block:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Return):
                    return "return"
                if isinstance(small, cst.Continue):
                    return "continue"
                if isinstance(small, cst.Break):
                    return "break"
        elif isinstance(statement, (cst.Return, cst.Continue, cst.Break)):
            return {cst.Return: "return", cst.Continue: "continue", cst.Break: "break"}[type(statement)]
    return None
