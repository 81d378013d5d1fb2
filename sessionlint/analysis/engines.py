"""Engines built per call (SL004): which engine builds run on every request, or on every
call of a function that uses the engine and lets it go without `dispose()`."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector, _is_main_guard
from sessionlint.analysis.facts import EngineBuild, ScopeFacts
from sessionlint.analysis.frameworks import FrameworkCollector, Timing, is_test_code
from sessionlint.analysis.tree import dotted_name, iter_children, mentions_name, suite_statements, terminal_name, walk
from sessionlint.knowledge import ENGINE_BORROWERS, MATERIALIZING_METHODS, is_test_path


@dataclass(frozen=True)
class EngineBuiltPerCall:
    build: EngineBuild
    function: cst.FunctionDef
    timing: Timing  # PER_REQUEST (a handler), or UNKNOWN (a function that builds, uses, drops)
    reason: str  # for PER_REQUEST: why the function runs per request
    returns_first: bool = False  # disposed of, but a `return` comes before the dispose
    shared_by: Optional[str] = None  # the class whose `__new__` hands out one cached instance


def engines_built_per_call(lifecycle: LifecycleCollector, frameworks: FrameworkCollector, module: cst.Module, path: str) -> List[EngineBuiltPerCall]:
    """Pooled engines built in a function that runs per request, or built, used and dropped
    without `dispose()` in a function whose timing is unknown (not once: start-up, a cached
    getter, a script's `main()`, a CLI command)."""
    found: List[EngineBuiltPerCall] = []
    script_only: Optional[Set[str]] = None
    singletons: Optional[Dict[int, str]] = None
    for facts in lifecycle.finished.values():
        function = facts.node
        if not isinstance(function, cst.FunctionDef) or not facts.engine_builds:
            continue
        if function.name.value == "__init__":
            if singletons is None:
                singletons = _singleton_inits(module)
            owner = singletons.get(id(function))
            if owner is not None:
                for build in facts.engine_builds:
                    if build.pooled and not _guarded(function, build.call):
                        found.append(EngineBuiltPerCall(build, function, Timing.UNKNOWN, "", shared_by=owner))
                continue
        timing, reason = frameworks.timing_of(function)
        if timing is Timing.ONCE:
            continue
        if script_only is None:
            script_only = _called_only_by_main_guard(module)
        if function.name.value in script_only and any(function is statement for statement in module.body):
            continue  # a script's `main()`: runs once per process
        for build in facts.engine_builds:
            if not build.pooled:
                continue
            if timing is Timing.PER_REQUEST and build.name is not None and build.name in facts.disposed:
                continue  # a pool per request, released at its end (real-bug corpus: a fixed Celery task)
            if timing is Timing.PER_REQUEST and _returned(function, build):
                continue  # an engine factory: reported where its callers call it per request
            if timing is Timing.PER_REQUEST and _cached(function, build):
                continue  # kept in a module-level container or a global: built once per key
            # (a fresh engine from a project factory, used and dropped, is a pool per call as
            # much as one built in place when the module calls that factory from several
            # functions: real-bug corpus, multiscanner's add_task; one caller is often a
            # one-shot step, corpus review: datahub's _get_observed_queries)
            if timing is Timing.PER_REQUEST or (
                (not build.via_factory or build.library or _called_from_several(module, build.call)) and _pool_per_call(facts, build, module, path)
            ):
                returns_first = build.name is not None and build.name in facts.disposed
                found.append(EngineBuiltPerCall(build, function, timing, reason, returns_first))
    return found


def _singleton_inits(module: cst.Module) -> Dict[int, str]:
    """`id(__init__)` -> class name, for the classes whose `__new__` hands out a cached
    instance (`cls._instances[key] = instance`, `cls._instance = ...`): Python still runs
    `__init__` on every `Cls(...)`, so an engine built there replaces the shared one each
    time and abandons its pool (real-bug corpus: gnosis's DBManager)."""
    found: Dict[int, str] = {}
    for node in walk(module):
        if not isinstance(node, cst.ClassDef):
            continue
        methods = {m.name.value: m for m in suite_statements(node.body) if isinstance(m, cst.FunctionDef)}
        new, init = methods.get("__new__"), methods.get("__init__")
        if new is None or init is None:
            continue
        for sub in walk(new.body, enter_scopes=False):
            if isinstance(sub, cst.Call) and terminal_name(sub.func) == "setdefault" and isinstance(sub.func, cst.Attribute):
                if (dotted_name(sub.func.value) or "").split(".")[0] in ("cls", node.name.value):
                    found[id(init)] = node.name.value  # `cls._instances.setdefault(key, ...)`
                    break
            if isinstance(sub, (cst.Assign, cst.AugAssign)):
                targets = [t.target for t in sub.targets] if isinstance(sub, cst.Assign) else [sub.target]
                if any((dotted_name(_base_of(t)) or "").split(".")[0] in ("cls", node.name.value) for t in targets if not isinstance(t, cst.Name)):
                    found[id(init)] = node.name.value
                    break
    return found


def _base_of(target: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(target, (cst.Subscript, cst.Attribute)):
        target = target.value
    return target


def _guarded(function: cst.FunctionDef, call: cst.Call) -> bool:
    """The build sits under an `if` (`if not self._initialized:`, `if not hasattr(self,
    "_engine"):`), or after one that returns (`if hasattr(self, "_initialized"): return`):
    built once per shared instance."""
    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, cst.If) and any(sub is call for sub in walk(node.body)):
            return True
    for statement in suite_statements(function.body):
        if any(sub is call for sub in walk(statement)):
            return False
        if isinstance(statement, cst.If) and any(isinstance(sub, cst.Return) for sub in walk(statement.body, enter_scopes=False)):
            return True
    return False


def _cached(function: cst.FunctionDef, build: EngineBuild) -> bool:
    """The engine is kept beyond the call: assigned to a `global`, or stored in a container
    (`_ENGINES[key] = engine`, `cache[key] = create_engine(url)`). Corpus review: langflow's
    per-database engine cache."""
    declared = {n.name.value for node in walk(function.body) if isinstance(node, cst.Global) for n in node.names}
    if build.name is not None and build.name in declared:
        return True
    for node in walk(function.body):
        if isinstance(node, cst.Assign):
            stores = [t.target for t in node.targets if isinstance(t.target, cst.Subscript)]
            if stores and (node.value is build.call or (build.name is not None and mentions_name(node.value, build.name))):
                return True
    return False


def _returned(function: cst.FunctionDef, build: EngineBuild) -> bool:
    """`return create_engine(url)`, or the name it is bound to returned as it is."""
    for node in walk(function.body):
        if isinstance(node, cst.Return) and node.value is not None:
            if node.value is build.call or (build.name is not None and isinstance(node.value, cst.Name) and node.value.value == build.name):
                return True
    return False


def _pool_per_call(facts: ScopeFacts, build: EngineBuild, module: cst.Module, path: str) -> bool:
    """The same function builds the engine, uses it, and lets it go without dispose()."""
    name = build.name
    if name is None or name not in facts.engine_consumers:
        return False
    assert isinstance(facts.node, cst.FunctionDef)
    if name in facts.disposed and not _returns_before_dispose(facts.node, build, name):
        return False
    info = facts.info
    if info is None or is_test_code(path, info.name, info.decorators):
        return False
    if info.name == "__init__" or _called_only_from_init(module, info.name):
        return False  # objects own their engine for their lifetime (often built once)
    if _engine_escapes(facts.node, name, _in_loop(facts.node, build.call)):
        return False
    return not _one_shot_helper(module, info.name)


def _returns_before_dispose(function: cst.FunctionDef, build: EngineBuild, name: str) -> bool:
    """A `return` between the build and the first `name.dispose()` (in source order), with
    no `finally` that disposes: that path leaves the pool behind (real-bug corpus: gnosis's
    db_cache wrapper, which disposed only on a cache miss). Fixture:
    SL004/engine_disposed_on_one_path.py"""

    def disposes(node: cst.CSTNode) -> bool:
        # `engine.dispose()`, or `engine.dispose` registered (`atexit.register(engine.dispose)`)
        return (
            isinstance(node, cst.Attribute)
            and node.attr.value == "dispose"
            and isinstance(node.value, cst.Name)
            and node.value.value == name
        )

    for node in walk(function.body, enter_scopes=False):
        if isinstance(node, cst.Try) and node.finalbody is not None and any(disposes(n) for n in walk(node.finalbody, enter_scopes=False)):
            return False
    # (a `return` in an `except` handler is an error path: often the connect that failed,
    # which left nothing in the pool. Corpus review: blazar's _is_backend_avail)
    on_error = {id(n) for handler in walk(function.body, enter_scopes=False) if isinstance(handler, cst.ExceptHandler) for n in walk(handler)}
    built = False
    for node in walk(function.body, enter_scopes=False):
        if node is build.call:
            built = True
        elif built and disposes(node):
            return False
        elif built and isinstance(node, cst.Return) and id(node) not in on_error:
            return True
    return False


def _called_from_several(module: cst.Module, call: cst.Call) -> bool:
    """Whether the module calls the factory `call` calls (`self._get_db_engine()`,
    `make_engine(url)`) from two functions or more."""
    name = terminal_name(call.func)
    callers: Set[str] = set()
    for function in walk(module):
        if isinstance(function, cst.FunctionDef):
            for node in walk(function.body):
                if isinstance(node, cst.Call) and terminal_name(node.func) == name:
                    callers.add(function.name.value)
                    break
    return len(callers) >= 2


def _called_only_from_init(module: cst.Module, name: str) -> bool:
    """A method the module calls as `self.<name>()` in `__init__` (or the `__post_init__`
    it calls) only (`self._conn = self.connect()`): it runs once per object, as `__init__`
    does (corpus review: langchain-community's Lantern store). Fixture:
    SL004/engine_owned_by_object.py"""
    callers: List[str] = []
    for method in walk(module):
        if not isinstance(method, cst.FunctionDef):
            continue
        for node in walk(method.body):
            if (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and node.func.attr.value == name
                and isinstance(node.func.value, cst.Name)
                and node.func.value.value == "self"
            ):
                callers.append(method.name.value)
    return bool(callers) and all(caller in ("__init__", "__post_init__") for caller in callers)


def _in_loop(function: cst.FunctionDef, call: cst.Call) -> bool:
    for node in walk(function.body):
        if isinstance(node, (cst.For, cst.While)) and any(sub is call for sub in walk(node)):
            return True
    return False


def _engine_escapes(function: cst.FunctionDef, name: str, in_loop: bool = False) -> bool:
    """Whether the engine outlives the call, itself or through what was built on it (a
    sessionmaker, a session, a connection): returned, yielded, stored on an object or in a
    container, declared global, or passed to something other than a session/sessionmaker."""
    consumers = {"Session", "AsyncSession", "sessionmaker", "async_sessionmaker", "scoped_session"} | ENGINE_BORROWERS
    derived = {name}
    # (`df = pd.read_sql(q, engine)` binds a DataFrame, nothing built on the engine)
    assigns = [
        n for n in walk(function.body)
        if isinstance(n, cst.Assign) and not (isinstance(n.value, cst.Call) and terminal_name(n.value.func) in ENGINE_BORROWERS - {"inspect"})
    ]
    changed = True
    while changed:  # names built on the engine: SessionLocal = sessionmaker(bind=engine)
        changed = False
        for assign in assigns:
            if _read_off(assign.value):
                continue  # `task = ses.query(Task).get(task_id)`: rows, not a session or pool
            if any(mentions_name(assign.value, d) for d in derived):
                for assign_target in assign.targets:
                    if isinstance(assign_target.target, cst.Name) and assign_target.target.value not in derived:
                        derived.add(assign_target.target.value)
                        changed = True
    # A generator lends what it yields for the whole iteration: `with engine.connect() as
    # conn: yield inspect(conn)` hands the engine to the consumer, while `return
    # conn.execute(q).scalar()` only hands back a result. Fixture: SL004/engine_lent_by_generator.py
    lent = set(derived)
    withs = [n for n in walk(function.body) if isinstance(n, cst.With)]
    changed = True
    while changed:
        changed = False
        bindings: List[Tuple[cst.CSTNode, cst.CSTNode]] = [(t.target, n.value) for n in assigns for t in n.targets]
        bindings += [(i.asname.name, i.item) for n in withs for i in n.items if i.asname is not None]
        for bound, value in bindings:
            if _read_off(value):
                continue  # rows or a value: `cached = session.exec(q).first()` lends nothing
            if isinstance(bound, cst.Name) and bound.value not in lent and any(mentions_name(value, d) for d in lent):
                lent.add(bound.value)
                changed = True

    def mentions_derived(node: cst.CSTNode) -> bool:
        return any(mentions_name(node, d) for d in derived)

    # A connection checked out of the engine and handed back (`return engine.connect()`,
    # `with engine.begin() as conn: yield conn`) leaves the engine behind: the caller closes
    # the connection, and nothing disposes the pool it returns to (real-bug corpus: agate-
    # sql's get_connection, jetbase's get_db_connection). Fixture: SL004/engine_lent_by_generator.py
    connections = _connections_of(function, name)

    def a_connection(value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Name):
            return value.value in connections
        return isinstance(value, cst.Call) and _connects(value, name)

    # a session the function closes itself, lent to a call before (`Log.create(db=db, ...)`
    # then `db.close()`), gives the callee no engine to keep (real-bug corpus: fidesops'
    # write_execution_log). Fixture: SL004/library_engine_builder.py
    closed = {
        n.func.value.value
        for n in walk(function.body)
        if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == "close" and isinstance(n.func.value, cst.Name)
    } - {name}
    for node in walk(function.body):
        if isinstance(node, cst.Global) and any(n.name.value in derived for n in node.names):
            return True
        if isinstance(node, cst.Return) and node.value is not None and not a_connection(node.value):
            if mentions_derived(node.value) or _hands_on(node.value, lent - derived):
                return True
        if isinstance(node, cst.Yield) and node.value is not None and isinstance(node.value, cst.BaseExpression) and a_connection(node.value):
            continue
        if isinstance(node, cst.Yield) and node.value is not None and not in_loop and any(mentions_name(node.value, d) for d in lent):
            # (built in a loop, each item gets a pool of its own that nothing disposes)
            return True
        if isinstance(node, cst.Assign) and mentions_derived(node.value):
            if any(not isinstance(t.target, cst.Name) for t in node.targets):
                return True  # self.maker = sessionmaker(bind=engine), cache[key] = engine
        if isinstance(node, cst.Call) and terminal_name(node.func) not in consumers:
            for arg in node.args:
                if isinstance(arg.value, cst.Name) and arg.value.value in (derived - closed) | {name}:
                    if arg.value.value == name or terminal_name(node.func) not in ("execute", "add", "get"):
                        return True
    return False


def _read_off(value: cst.CSTNode) -> bool:
    """`s.exec(q).first()`, `s.query(T).get(pk)`: rows, a value or an ORM object read off a
    session or result, which keep neither the session nor the pool (real-bug corpus:
    multiscanner's update_task returned `task.to_dict()`)."""
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and (value.func.attr.value in MATERIALIZING_METHODS or (value.func.attr.value == "get" and isinstance(value.func.value, cst.Call)))
    )


def _connects(call: cst.Call, engine: str) -> bool:
    """`engine.connect()`, `engine.raw_connection()`, `engine.begin()`."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value in ("connect", "raw_connection", "begin")
        and isinstance(func.value, cst.Name)
        and func.value.value == engine
    )


def _connections_of(function: cst.FunctionDef, engine: str) -> Set[str]:
    """Names bound to a connection of `engine`: `conn = engine.connect()`, `with
    engine.begin() as conn:`."""
    found: Set[str] = set()
    for node in walk(function.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and _connects(node.value, engine):
            found.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))
        elif isinstance(node, cst.WithItem) and isinstance(node.item, cst.Call) and _connects(node.item, engine):
            if node.asname is not None and isinstance(node.asname.name, cst.Name):
                found.add(node.asname.name.value)
    return found


def _hands_on(node: cst.CSTNode, names: Set[str]) -> bool:
    """Whether `node` passes one of `names` on: as the value itself, through an attribute
    (`inspector.bind`), inside a container, or as an argument of a call (`return
    Profiler(conn=inspector.bind)`). A value computed from it (`conn.execute(q).scalar()`,
    `result.rowcount > 0`) hands nothing on. Fixture: SL004/engine_handed_on_by_return.py"""
    if not names:
        return False
    base = node
    while isinstance(base, cst.Attribute):
        base = base.value
    if isinstance(base, cst.Name):
        return base.value in names
    if isinstance(node, cst.Call):
        return any(_hands_on(arg.value, names) for arg in node.args)
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return any(_hands_on(element.value, names) for element in node.elements)
    if isinstance(node, cst.Dict):
        return any(_hands_on(element.value, names) for element in node.elements if isinstance(element, cst.DictElement))
    return False


def _one_shot_helper(module: cst.Module, name: str) -> bool:
    """A private helper (`_name`) whose calls in the module are one outside any loop, plus
    any number that are memoised (`if self._x is None: self._x = self._name()`), and which
    is not passed around: it runs as often as its one caller, which the module cannot tell,
    so a pool per call is not asserted. Fixture: SL004/private_helper_called_once.py"""
    if not name.startswith("_") or name.startswith("__"):
        return False
    plain = 0
    found = False

    def visit(node: cst.CSTNode, looping: bool, memo: Set[str]) -> bool:
        nonlocal plain, found
        if isinstance(node, (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
            looping = True
        elif isinstance(node, (cst.FunctionDef, cst.Lambda)):
            looping = False
        elif isinstance(node, cst.If):
            memo = memo | _memo_slots(node.test)
        elif isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and terminal_name(node.value.func) == name:
            slots = {_slot(t.target) for t in node.targets} - {None}
            if slots and slots <= memo:
                found = True
                for arg in node.value.args:
                    if not visit(arg, looping, memo):
                        return False
                return True
        if isinstance(node, cst.Call) and terminal_name(node.func) == name:
            found = True
            if looping:
                return False
            plain += 1
            if plain > 1:
                return False
            for arg in node.args:
                if not visit(arg, looping, memo):
                    return False
            return True
        if isinstance(node, (cst.Name, cst.Attribute)) and terminal_name(node) == name:
            return False  # referenced, not called: a callback that may run any number of times
        if isinstance(node, cst.FunctionDef) and node.name.value == name:
            return visit(node.body, False, set())
        return all(visit(child, looping, memo) for child in iter_children(node))  # not `.children`: it visits

    return visit(module, False, set()) and found


def _slot(node: cst.CSTNode) -> Optional[str]:
    """`self._x` -> "_x"; a plain name -> itself."""
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    if isinstance(node, cst.Name):
        return node.value
    return None


def _memo_slots(test: cst.BaseExpression) -> Set[str]:
    """The slots a test checks for being unset: `self._x is None`, `not self._x`, either
    side of an `and`."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        return _memo_slots(test.left) | _memo_slots(test.right)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        slot = _slot(test.expression)
        return {slot} if slot else set()
    if (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Is)
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == "None"
    ):
        slot = _slot(test.left)
        return {slot} if slot else set()
    return set()


def _called_only_by_main_guard(module: cst.Module) -> Set[str]:
    """Module-level functions called under `if __name__ == "__main__":` and nowhere else in
    the module: a script's `main()`, which runs once per process.
    Fixture: SL004/script_main.py"""
    in_guard: Set[str] = set()
    elsewhere: Set[str] = set()
    for statement in module.body:
        guard = _is_main_guard(statement)
        for sub in walk(statement):
            if isinstance(sub, cst.Call):
                name = terminal_name(sub.func)
                if name:
                    (in_guard if guard else elsewhere).add(name)
            elif not guard and isinstance(sub, cst.Arg) and isinstance(sub.value, cst.Name):
                # passed around by name (a callback, `entry_points=...main`): may run again
                elsewhere.add(sub.value.value)
    return in_guard - elsewhere


@dataclass(frozen=True)
class MakerBuiltPerCall:
    call: cst.Call
    function: cst.FunctionDef
    is_registry: bool  # a scoped_session registry (else a sessionmaker)


def makers_built_per_call(lifecycle: LifecycleCollector, frameworks: FrameworkCollector, module: cst.Module, path: str) -> List[MakerBuiltPerCall]:
    """`scoped_session` registries built in a function whose timing is not known to be once,
    and not kept: the function calls it on the spot or makes its sessions there, and neither
    returns, stores nor hands on the registry itself. Every call builds a new one, never the
    one a teardown removes.
    Fixture: SL005/maker_built_per_call.py"""
    found: List[MakerBuiltPerCall] = []
    script_only: Optional[Set[str]] = None
    for facts in lifecycle.finished.values():
        function = facts.node
        if not isinstance(function, cst.FunctionDef) or not facts.maker_builds:
            continue
        timing, _ = frameworks.timing_of(function)
        if timing is not Timing.UNKNOWN:
            continue  # per request: reported as such; once: fine
        info = facts.info
        if info is None or is_test_code(path, info.name, info.decorators) or is_test_path(path):
            continue
        if script_only is None:
            script_only = _called_only_by_main_guard(module)
        if function.name.value in script_only or function.name.value in ("main", "__init__", "setUp"):
            continue
        if function.name.value.lstrip("_").startswith(("init", "setup", "configure", "bootstrap", "create_")):
            continue  # start-up by its name (corpus review: calibre-web's init_db)
        for call in facts.maker_builds:
            # A plain sessionmaker built per call costs little; a registry built per call is
            # never the one a teardown removes.
            if terminal_name(call.func) in ("scoped_session", "async_scoped_session") and not _maker_kept(function, call):
                found.append(MakerBuiltPerCall(call, function, True))
    return found


def _maker_kept(function: cst.FunctionDef, call: cst.Call) -> bool:
    """Whether the registry built by `call` is looked after or outlives the call of
    `function`: returned, yielded, stored, declared global, handed to a call, removed or
    closed; or every session taken from it is closed, returned or stored (a per-call
    registry whose one session is closed holds nothing: corpus review, calibre-web and Home
    Assistant). What is left is a registry whose session stays open after the call."""
    parents = _parents(function, call)
    parent = parents.get(id(call))
    if isinstance(parent, cst.Call) and parent.func is call:
        return _session_released(function, parent, parents)  # `scoped_session(...)()`
    if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
        name = parent.targets[0].target.value
    elif isinstance(parent, cst.AnnAssign) and isinstance(parent.target, cst.Name):
        name = parent.target.value
    else:
        return True  # stored (`self.maker = ...`), returned, passed on, ...
    for node in walk(function.body):
        if isinstance(node, cst.Global) and any(n.name.value == name for n in node.names):
            return True
        if not (isinstance(node, cst.Name) and node.value == name):
            continue
        holder = parents.get(id(node))
        if isinstance(holder, cst.AssignTarget) or (isinstance(holder, cst.AnnAssign) and holder.target is node):
            continue
        if isinstance(holder, cst.Call) and holder.func is node:
            if _session_released(function, holder, parents):
                return True
            continue  # `registry()`: a session made here
        if isinstance(holder, cst.Attribute) and holder.value is node:
            if holder.attr.value in ("remove", "close"):
                return True  # its sessions end with the call (only the build is wasted)
            if holder.attr.value == "configure":
                return True  # bound to a connection someone else owns (calibre-web's check)
            continue  # `registry.query(...)`: the registry's session used here
        return True  # returned, stored, passed on, compared...
    return False


def _session_released(function: cst.FunctionDef, call: cst.Call, parents: dict) -> bool:
    """The session `call` makes is closed (`with`, `.close()`), returned, yielded or
    stored by `function`."""
    parent = parents.get(id(call))
    if isinstance(parent, (cst.WithItem, cst.Return, cst.Yield)):
        return True
    if isinstance(parent, (cst.Assign, cst.AnnAssign)):
        if isinstance(parent, cst.Assign) and len(parent.targets) != 1:
            return False
        target = parent.targets[0].target if isinstance(parent, cst.Assign) else parent.target
        if not isinstance(target, cst.Name):
            return True  # `self.session = registry()`
        name = target.value
        for node in walk(function.body):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and isinstance(node.func.value, cst.Name):
                if node.func.value.value == name and node.func.attr.value in ("close", "remove"):
                    return True
            if isinstance(node, (cst.Return, cst.Yield)) and isinstance(node.value, cst.Name) and node.value.value == name:
                return True
    return False


def _parents(function: cst.FunctionDef, call: cst.Call) -> dict:
    """Parent of every node of the function, by id (a small map: only functions that build
    a maker get here)."""
    parents: dict = {}
    stack: List[cst.CSTNode] = [function]
    while stack:
        node = stack.pop()
        for child in iter_children(node):
            parents[id(child)] = node
            stack.append(child)
    return parents
