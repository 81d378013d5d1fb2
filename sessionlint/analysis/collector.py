"""The analysis side of the single traversal: per scope, the calls that create sessions
and connections (resolved to factories), how each created object is held, engines and
sessionmakers built, calls of async coroutine methods not awaited, parameters that hold
sessions. When the traversal leaves a scope, the lifecycle of each bound session is worked out
(`lifecycle.build_lives`) and the other per-scope facts are finished."""

from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

import libcst as cst

from sessionlint.analysis.databases import statements_abort_transactions
from sessionlint.analysis.factories import Resolver, lends_engine
from sessionlint.analysis.facts import (
    Creation,
    EngineBuild,
    Holding,
    ScopeFacts,
    Unawaited,
    WithMismatch,
    _borrowed_value,
    is_bound_to_borrowed_connection,
)
from sessionlint.analysis.frameworks import describe_function
from sessionlint.analysis.handoffs import find_handoffs, find_shared_sessions, find_stores
from sessionlint.analysis.lifecycle import _scope_body, build_lives
from sessionlint.analysis.ownership import Closer, find_closers
from sessionlint.analysis.parameters import note_parameters
from sessionlint.analysis.settle import drop_finished_draws, joined_handoffs, keep_owned_locals, lost_in
from sessionlint.analysis.transactions import find_missing_rollbacks, held_attributes, helper_commits, helper_resets
from sessionlint.analysis.tree import dotted_name, terminal_name, walk
from sessionlint.knowledge import (
    ASYNC_SESSION_COROUTINES,
    CLOSING_WRAPPERS,
    CONNECTION_METHODS,
    CONVENTIONAL_SESSION_NAMES,
    ENGINE_BUILDERS,
    ENGINE_READERS,
    FAILING_CALLS,
    HANDOFF_SINKS,
    LIBRARY_ENGINE_BUILDERS,
    MAKER_BUILDERS,
    RETURNS_SELF,
    STREAMING_RESPONSES,
    FactoryKind,
    Origin,
    is_test_path,
)
from sessionlint.project.model import Committer, Factory, builder_factory


class LifecycleCollector:
    """Analysis side of the single traversal: creation sites per scope, lives on leave."""

    def __init__(self, resolver: Resolver, depends_targets: FrozenSet[str], async_dependencies: FrozenSet[str] = frozenset()) -> None:
        self.resolver = resolver
        self.depends_targets = depends_targets
        self.async_dependencies = async_dependencies
        self.scopes: List[ScopeFacts] = []
        self.finished: Dict[int, ScopeFacts] = {}
        self.try_depth: List[int] = []
        self._module_bindings: Optional[Tuple[FrozenSet[str], FrozenSet[str]]] = None
        self._closers: Optional[Dict[str, Closer]] = None
        self._resets: Optional[Dict[str, FrozenSet[str]]] = None
        self._commits: Optional[Dict[str, Committer]] = None
        self._abort: Optional[bool] = None

    def facts_for(self, node: cst.CSTNode) -> Optional[ScopeFacts]:
        return self.finished.get(id(node))

    def enter_scope(self, node: cst.CSTNode) -> None:
        facts = ScopeFacts(node)
        if isinstance(node, cst.FunctionDef):
            note_parameters(node, facts, self.resolver, self.async_dependencies)
            params = node.params
            every = [*params.posonly_params, *params.params, *params.kwonly_params]
            every += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
            facts.parameters = {p.name.value for p in every}
        self.scopes.append(facts)
        self.try_depth.append(0)

    def _module_closers(self) -> Dict[str, "Closer"]:
        """Module-level functions that close what they are given (computed once per file,
        only when some scope creates a session)."""
        if self._closers is None:
            imported = {name: Closer(positions, keywords) for name, (positions, keywords) in self.resolver.imported_closers().items()}
            self._closers = dict(imported)
            self._closers.update(find_closers(self.scopes[0].node, imported) if self.scopes else {})
        return self._closers

    def _module_names(self) -> Tuple[FrozenSet[str], FrozenSet[str]]:
        """(names bound at module level, classes defined there), from the module's own
        statements, computed once per file and only for functions that hold sessions."""
        if self._module_bindings is None:
            module = self.scopes[0].node
            names: Set[str] = set()
            classes: Set[str] = set()
            for statement in getattr(module, "body", ()):
                if isinstance(statement, cst.ClassDef):
                    classes.add(statement.name.value)
                elif isinstance(statement, cst.SimpleStatementLine):
                    for small in statement.body:
                        targets = []
                        if isinstance(small, cst.Assign):
                            targets = [t.target for t in small.targets]
                        elif isinstance(small, cst.AnnAssign):
                            targets = [small.target]
                        names.update(t.value for t in targets if isinstance(t, cst.Name))
            self._module_bindings = (frozenset(names), frozenset(classes))
        return self._module_bindings

    def on_yield(self) -> None:
        if self.scopes:
            self.scopes[-1].has_yield = True

    def on_ann_assign(self, node: cst.AnnAssign) -> None:
        """`sessionmaker: AsyncSessionMaker = request.state.sessionmaker` binds a local name
        (corpus review: polar's get_db_read_session). Fixture: SL005/local_name_sessionmaker.py"""
        if self.scopes and node.value is not None and type(node.target) is cst.Name:
            self.scopes[-1].assigned_names.add(node.target.value)

    def on_assign(self, node: cst.Assign) -> None:
        if not self.scopes:
            return
        facts = self.scopes[-1]
        for target in node.targets:
            if type(target.target) is cst.Name:
                facts.assigned_names.add(target.target.value)
        if type(node.value) is cst.Name:
            facts.name_value_assigns.append(node)
        if type(node.value) in (cst.Attribute, cst.Call, cst.Name) and _borrowed_value(node.value):
            for target in node.targets:
                if type(target.target) is cst.Name:
                    facts.borrowed_names.add(target.target.value)

    def on_global(self, node: cst.Global) -> None:
        if self.scopes:
            self.scopes[-1].global_names.update(n.name.value for n in node.names)

    def enter_try(self) -> None:
        if self.try_depth:
            self.try_depth[-1] += 1

    def leave_try(self) -> None:
        if self.try_depth:
            self.try_depth[-1] -= 1

    def leave_scope(self, node: cst.CSTNode) -> None:
        facts = self.scopes.pop()
        self.try_depth.pop()
        if facts.drawn_from:
            drop_finished_draws(node, facts)
        if facts.lost_locals:
            keep_owned_locals(node, facts)
        if isinstance(node, (cst.FunctionDef, cst.Module)):
            facts.info = describe_function(node, self.depends_targets, facts.has_yield if isinstance(node, cst.FunctionDef) else None)
            if facts.handoff_calls:
                facts.joined_handoffs = joined_handoffs(node, facts.handoff_calls)
                facts.handoffs = find_handoffs(facts, self.resolver.index.versions.get("fastapi"), self.resolver.mentions_sqlalchemy)
            if isinstance(node, cst.FunctionDef) and self.scopes and facts.name_value_assigns and (facts.injected or facts.creations):
                facts.handoffs.extend(find_stores(node, facts, self._module_names()))
            if isinstance(node, cst.Module) and facts.creations:
                facts.shared_sessions = find_shared_sessions(facts, self.resolver.index.imported_names)
            if facts.commits_in_try:
                try:
                    facts.missing_rollbacks = find_missing_rollbacks(
                        _scope_body(node), facts.session_names, node if isinstance(node, cst.FunctionDef) else None, self.resolver.is_registry,
                        self._helper_resets(),
                        self._held_attributes(),
                        self._helper_commits(),
                        self._statements_abort(),
                    )
                except RecursionError:
                    facts.gave_up = True
            if facts.creations:
                try:
                    build_lives(facts, facts.info, self._module_closers(), self.resolver.holder_closes)
                except RecursionError:
                    facts.gave_up = True
                    facts.lives = []
                    facts.uses_after_close = []
        self.finished[id(node)] = facts

    def on_call(self, node: cst.Call, ancestors: Sequence[cst.CSTNode]) -> None:
        if not self.scopes:
            return
        facts = self.scopes[-1]
        func = node.func
        for arg in node.args:
            # `self.addCleanup(self.engine.dispose)`, `atexit.register(engine.dispose)`
            value = arg.value
            if type(value) is cst.Attribute and value.attr.value == "dispose":
                disposed = dotted_name(value.value)
                if disposed:
                    facts.disposed.add(disposed)
        if type(func) is cst.Attribute:
            method = func.attr.value
            receiver = func.value
            if method == "configure" and type(receiver) is cst.Name and any(a.keyword is not None and a.keyword.value == "bind" for a in node.args):
                # `local_session.configure(bind=connection)`: its sessions borrow a connection
                # someone else owns (corpus review: calibre-web's database check)
                for scope in self.scopes:
                    scope.local_makers.pop(receiver.value, None)
            if method == "dispose":
                disposed = dotted_name(receiver)
                if disposed:
                    facts.disposed.add(disposed)
            if method in FAILING_CALLS and self.try_depth[-1] > 0:
                facts.commits_in_try = True
            if method in ASYNC_SESSION_COROUTINES and type(receiver) is cst.Name:
                self._check_awaited(node, receiver.value, method, ancestors, facts)
            if method in CONNECTION_METHODS:
                if type(receiver) is cst.Name and method in ("connect", "begin", "raw_connection"):
                    facts.engine_consumers.add(receiver.value)
                if type(receiver) is cst.Name and any(receiver.value in scope.borrowed_names for scope in self.scopes):
                    return  # `engine = op.get_bind()`: Alembic's connection, not an engine (corpus review)
                engine = self.resolver.engine_of(receiver, self._local_engines())
                if engine is None and type(receiver) is cst.Name:
                    engine = _checked_engine(receiver.value, node, ancestors)
                if engine is not None:
                    factory = Factory(FactoryKind.CONNECTION, engine.is_async, Origin.ENGINE_CONNECT, method)
                    self._record(node, factory, ancestors, facts)
                    return
                if not (type(receiver) is cst.Name and receiver.value == "self"):
                    return  # (`self.connect()` is a method of the class, resolved below)
        callee = terminal_name(func) or ""
        if type(func) is cst.Name and self.try_depth[-1] > 0 and callee in self._helper_commits():
            facts.commits_in_try = True  # `_save(db, item)` in a `try`: the helper commits
        if callee == "get_bind" and ancestors and isinstance(ancestors[-1], cst.Assign):
            for target in ancestors[-1].targets:
                if isinstance(target.target, cst.Name):
                    facts.borrowed_names.add(target.target.value)
        if callee in ENGINE_BUILDERS:
            self._note_engine(node, ancestors)
            return
        if callee in MAKER_BUILDERS and not self._shadowed(func) and not self._stored_maker(func):
            parent = ancestors[-1] if ancestors else None
            grandparent = ancestors[-2] if len(ancestors) > 1 else None
            nested = isinstance(parent, cst.Arg) and isinstance(grandparent, cst.Call) and terminal_name(grandparent.func) in MAKER_BUILDERS
            if not nested:  # scoped_session(sessionmaker(...)) is one build
                facts.maker_builds.append(node)
                self._note_local_maker(node, callee, parent, facts)
            self._note_engine_consumer(node, facts)
            return
        if callee in HANDOFF_SINKS or callee in STREAMING_RESPONSES:
            facts.handoff_calls.append(node)
        if callee in ENGINE_READERS:
            # `pd.read_sql(query, engine)`, `df.to_sql(name, con=engine)`: the engine serves
            # this scope. Fixture: SL004/engine_lent_to_readers.py
            for arg in node.args:
                if type(arg.value) is cst.Name and (arg.keyword is None or arg.keyword.value in ("con", "bind")):
                    facts.engine_consumers.add(arg.value.value)
        if type(func) is cst.Attribute and type(func.value) is cst.Name and func.attr.value in ("connect", "begin", "raw_connection"):
            facts.engine_consumers.add(func.value.value)
        elif type(func) is cst.Name and func.value in facts.local_engines:
            # `SessionLocal()`: a library builder's sessionmaker (SL004/library_engine_builder.py)
            facts.engine_consumers.add(func.value)
        if type(func) is cst.Attribute and func.attr.value == "begin" and self.resolver.may_be_factory(func.value):
            # `with SessionLocal.begin() as db:` opens a session in a transaction and closes
            # it at the end of the block (sessionmaker.begin()).
            maker = self.resolver.factory_of(func.value)
            if maker is not None and maker.kind is FactoryKind.SESSION:
                self._record(node, maker, ancestors, facts)
            return
        local = self._local_maker(func)
        if local is not None:
            name, maker = local
            registry = name if maker.kind is FactoryKind.REGISTRY else None
            self._record(node, Factory(FactoryKind.SESSION, maker.is_async, Origin.MAKER, name), ancestors, facts, registry)
            return
        if callee in ("next", "anext") and type(func) is cst.Name and node.args:
            # `db = next(get_db())`: the session of a dependency generator, taken out of it by
            # hand; the generator's `finally` runs only when it is collected. `gen =
            # get_db(); db = next(gen)` too, unless the function finishes the generator.
            # Fixture: tests/fixtures/projects/factory_summaries
            source = node.args[0].value
            generator = None
            if type(source) is cst.Call:
                generator = self.resolver.generator_of(source.func)
            elif type(source) is cst.Name and len(node.args) == 1:
                generator = facts.local_generators.get(source.value)
                if generator is not None:
                    facts.drawn_from[len(facts.creations)] = source.value
            if generator is not None:
                self._record(node, Factory(FactoryKind.SESSION, generator.is_async, Origin.GENERATOR, generator.detail), ancestors, facts)
            return
        if type(func) is cst.Name and func.value in facts.generator_params and ancestors and isinstance(ancestors[-1], cst.Assign):
            targets = ancestors[-1].targets
            if len(targets) == 1 and isinstance(targets[0].target, cst.Name):
                facts.local_generators[targets[0].target.value] = facts.generator_params[func.value]
                return
        if type(func) is cst.Name and self.resolver.may_be_generator(func.value) and ancestors and isinstance(ancestors[-1], cst.Assign):
            generator = self.resolver.generator_of(func)
            targets = ancestors[-1].targets
            if generator is not None and len(targets) == 1 and isinstance(targets[0].target, cst.Name):
                facts.local_generators[targets[0].target.value] = generator
                return
        if not self.resolver.may_be_factory(func):
            return
        resolved = self.resolver.factory_of(func, self._class_name())
        if resolved is None:
            return
        if resolved.kind is FactoryKind.SESSION:
            self._record(node, resolved, ancestors, facts)
            self._note_engine_consumer(node, facts)
        elif resolved.kind is FactoryKind.CONNECTION:
            # `connection = get_connection(url)`: a project function that checks a new
            # connection out. Fixture: tests/fixtures/projects/connection_helpers
            self._record(node, resolved, ancestors, facts)
        elif resolved.kind is FactoryKind.ENGINE and resolved.origin is Origin.FUNCTION:
            # `engine = make_engine(url)`: a project function that builds a new pool on
            # every call. Fixture: SL004/engine_from_project_factory.py
            if lends_engine(node, resolved.detail):
                return  # `get_db_session(config, engine=engine)`: the library uses that one
            parent = ancestors[-1] if ancestors else None
            bound_to: Optional[str] = None
            if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
                bound_to = parent.targets[0].target.value
                facts.local_engines[bound_to] = resolved
                if resolved.is_async:
                    facts.async_names.add(bound_to)
            facts.engine_builds.append(EngineBuild(node, bound_to, True, via_factory=True, library=resolved.detail in LIBRARY_ENGINE_BUILDERS))
        elif resolved.kind is FactoryKind.ENGINE and resolved.origin is Origin.ENGINE_GETTER:
            # `engine = db._get_engine()`: the project's shared engine; `engine.connect()`
            # checks a connection out. Fixture: tests/fixtures/projects/engine_getter
            parent = ancestors[-1] if ancestors else None
            if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
                facts.local_engines[parent.targets[0].target.value] = resolved
        elif resolved.kind is FactoryKind.REGISTRY and isinstance(facts.node, cst.FunctionDef):
            # `db.Session()` of a registry nothing removes: the function holds the thread's
            # session, and nothing else will close it; or a function that closes the
            # registry's session itself owns it (a close outside `finally` is SL002).
            # Fixture: tests/fixtures/projects/registry_never_removed
            dotted = dotted_name(func)
            if dotted is None or is_test_path(self.resolver.path):
                return
            if self.resolver.unremoved_registry(func):
                self._record(node, Factory(FactoryKind.SESSION, resolved.is_async, Origin.UNREMOVED_REGISTRY, dotted), ancestors, facts, dotted)
            elif _closes_bound_name(facts.node, ancestors):
                self._record(node, Factory(FactoryKind.SESSION, resolved.is_async, Origin.MAKER, dotted), ancestors, facts, dotted)
        elif resolved.kind is FactoryKind.MAKER:
            # `Session = get_session_maker(); session = Session()`: a project function that
            # returns a sessionmaker. Fixture: SL001/maker_from_project_function.py
            parent = ancestors[-1] if ancestors else None
            if isinstance(facts.node, cst.FunctionDef) and isinstance(parent, cst.Assign) and len(parent.targets) == 1:
                bound = parent.targets[0].target
                if isinstance(bound, cst.Name):
                    facts.local_makers[bound.value] = Factory(FactoryKind.SESSION, resolved.is_async, Origin.MAKER, resolved.detail)

    def _helper_resets(self) -> Dict[str, FrozenSet[str]]:
        """What each function of the module rolls back or closes, worked out once."""
        if self._resets is None:
            module = self.scopes[0].node if self.scopes else None
            self._resets = helper_resets(module) if isinstance(module, cst.Module) else {}
        return self._resets

    def _helper_commits(self) -> Dict[str, Committer]:
        """What each function of the module, and each function it imports by name from a
        project module, commits of the sessions it is given, once."""
        if self._commits is None:
            module = self.scopes[0].node if self.scopes else None
            self._commits = self.resolver.imported_committers()
            self._commits.update(helper_commits(module) if isinstance(module, cst.Module) else {})
        return self._commits

    def _statements_abort(self) -> bool:
        """transactions.statements_abort_transactions of the module, once."""
        if self._abort is None:
            module = self.scopes[0].node if self.scopes else None
            self._abort = statements_abort_transactions(module) if isinstance(module, cst.Module) else True
        return self._abort

    def _held_attributes(self) -> FrozenSet[str]:
        """`self.<attr>` set by the class whose method the traversal is in."""
        module = self.scopes[0].node if self.scopes else None
        for scope in reversed(self.scopes):
            if isinstance(scope.node, cst.ClassDef):
                return held_attributes(scope.node, module if isinstance(module, cst.Module) else None)
        return frozenset()

    def _class_name(self) -> Optional[str]:
        """The class whose method the traversal is in (through nested functions)."""
        for scope in reversed(self.scopes):
            if isinstance(scope.node, cst.ClassDef):
                return scope.node.name.value
            if not isinstance(scope.node, cst.FunctionDef):
                return None
        return None

    def _stored_maker(self, func: cst.BaseExpression) -> bool:
        """`request.registry.sessionmaker()`: an attribute of an object (not of an imported
        module such as `sqlalchemy.orm`) that holds a sessionmaker, called for a session."""
        if not isinstance(func, cst.Attribute):
            return False
        head = (dotted_name(func) or "").split(".")[0]
        return bool(head) and head not in self.resolver.imports and head not in ("sqlalchemy", "sa", "orm")

    def _shadowed(self, func: cst.BaseExpression) -> bool:
        """`sessionmaker` as a local name of the function (`sessionmaker =
        request.state.async_sessionmaker`, a parameter): calling it builds nothing.
        Fixture: SL005/local_name_sessionmaker.py"""
        if not isinstance(func, cst.Name):
            return False
        return any(func.value in scope.parameters or func.value in scope.assigned_names for scope in self.scopes[1:])

    def _note_local_maker(self, node: cst.Call, callee: str, parent: Optional[cst.CSTNode], facts: ScopeFacts) -> None:
        """`maker = sessionmaker(...)` / `registry = scoped_session(...)` in a function."""
        if not isinstance(facts.node, cst.FunctionDef) or not isinstance(parent, cst.Assign) or len(parent.targets) != 1:
            return
        target = parent.targets[0].target
        if not isinstance(target, cst.Name):
            return
        built = builder_factory(callee)
        if built is None:
            return
        is_async = built.is_async or any(
            arg.keyword is not None and arg.keyword.value == "class_" and (terminal_name(arg.value) or "").endswith("AsyncSession") for arg in node.args
        )
        if built.kind is FactoryKind.REGISTRY and node.args:
            inner = node.args[0].value
            if isinstance(inner, cst.Call) and terminal_name(inner.func) == "async_sessionmaker":
                is_async = True
        facts.local_makers[target.value] = Factory(built.kind, is_async, Origin.MAKER, callee)

    def _local_maker(self, func: cst.BaseExpression) -> Optional[Tuple[str, Factory]]:
        """The maker or registry a name of the enclosing functions was bound to there."""
        if not isinstance(func, cst.Name):
            return None
        for scope in reversed(self.scopes):
            maker = scope.local_makers.get(func.value)
            if maker is not None:
                return func.value, maker
            if func.value in scope.assigned_names or func.value in scope.parameters:
                return None  # rebound to something else in a closer scope
        return None

    def _note_engine_consumer(self, node: cst.Call, facts: ScopeFacts) -> None:
        """`Session(engine)`, `sessionmaker(bind=engine)`: the engine serves this scope."""
        for arg in node.args:
            if isinstance(arg.value, cst.Name) and (arg.keyword is None or arg.keyword.value == "bind"):
                facts.engine_consumers.add(arg.value.value)

    def on_with(self, node: cst.With) -> None:
        """`async with <...session...>(...) as name`: only an async context manager can be
        entered with `async with`, so a session obtained that way (Prefect's
        `db.session_context()`, a project helper) is an AsyncSession."""
        if node.asynchronous is None or not self.scopes:
            return
        for item in node.items:
            call = item.item
            if not isinstance(call, cst.Call) or item.asname is None or not isinstance(item.asname.name, cst.Name):
                continue
            name = item.asname.name.value
            if "session" in (terminal_name(call.func) or "").lower() or (
                name in CONVENTIONAL_SESSION_NAMES and self.resolver.mentions_sqlalchemy
            ):
                self.scopes[-1].async_names.add(name)

    def _note_engine(self, node: cst.Call, ancestors: Sequence[cst.CSTNode]) -> None:
        """`name = create_engine(...)` in this scope: `name.connect()` opens connections."""
        builder = builder_factory(terminal_name(node.func) or "")
        assert builder is not None
        facts = self.scopes[-1]
        pooled = not any(
            arg.keyword is not None and arg.keyword.value == "poolclass" and terminal_name(arg.value) == "NullPool"
            for arg in node.args
        )
        parent = ancestors[-1] if ancestors else None
        name = None
        target = parent.targets[0].target if isinstance(parent, cst.Assign) and len(parent.targets) == 1 else None
        if isinstance(parent, cst.AnnAssign):
            target = parent.target  # `engine: Engine = create_engine(url)` (jetbase)
        if isinstance(target, cst.Name):
            name = target.value
            facts.local_engines[name] = builder
            if builder.is_async:
                facts.async_names.add(name)
        facts.engine_builds.append(EngineBuild(node, name, pooled))

    def _local_engines(self) -> Dict[str, Factory]:
        merged: Dict[str, Factory] = {}
        for scope in self.scopes:
            merged.update(scope.local_engines)
        return merged

    def _record(self, node: cst.Call, factory: Factory, ancestors: Sequence[cst.CSTNode], facts: ScopeFacts, registry: Optional[str] = None) -> None:
        holding, name, with_node = classify_holding(node, ancestors)
        if factory.origin is Origin.OPEN_CONTEXT:
            # `with guarded_session() as db:` hands over a session the block must close
            # (outside `with`, the call makes only the context manager)
            if holding is not Holding.MANAGED or with_node is None or name is None:
                return
            holding = Holding.BOUND
        lost = lost_in(node, ancestors, facts) if holding is Holding.PASSED and factory.kind is FactoryKind.CONNECTION else None
        default_of = None
        if holding is Holding.PASSED and len(ancestors) >= 1 and isinstance(ancestors[-1], cst.Param) and ancestors[-1].default is node:
            default_of = ancestors[-1].name.value
        in_async_with = with_node.asynchronous is not None if with_node is not None else None
        in_main_guard = isinstance(facts.node, cst.Module) and any(_is_main_guard(a) for a in ancestors)
        creation = Creation(
            node,
            factory,
            holding,
            name,
            is_bound_to_borrowed_connection(node, facts.borrowed_names),
            in_async_with,
            in_main_guard,
            registry,
            lost,
            default_of,
        )
        facts.creations.append(creation)
        if name is not None:
            if factory.kind is FactoryKind.SESSION:
                facts.session_names.add(name)
            if factory.is_async:
                facts.async_names.add(name)
            elif not in_async_with:
                facts.async_names.discard(name)
        if with_node is not None and in_async_with is not None and in_async_with != factory.is_async:
            if factory.kind is FactoryKind.SESSION or factory.is_async:
                facts.with_mismatches.append(WithMismatch(creation, factory.is_async))

    def _check_awaited(self, node: cst.Call, receiver: str, method: str, ancestors: Sequence[cst.CSTNode], facts: ScopeFacts) -> None:
        if receiver not in facts.async_names:
            return
        parent = ancestors[-1] if ancestors else None
        if isinstance(parent, cst.Expr):
            facts.unawaited.append(Unawaited(node, receiver, method))
        elif isinstance(parent, cst.Attribute) and parent.value is node:
            # `db.execute(q).scalars()`: an attribute of the coroutine object
            facts.unawaited.append(Unawaited(node, receiver, method))


def _closes_bound_name(function: cst.FunctionDef, ancestors: Sequence[cst.CSTNode]) -> bool:
    """`session = Registry()` in a function that calls `session.close()` itself."""
    parent = ancestors[-1] if ancestors else None
    if not isinstance(parent, cst.Assign) or len(parent.targets) != 1 or not isinstance(parent.targets[0].target, cst.Name):
        return False
    name = parent.targets[0].target.value
    return any(
        isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == "close" and isinstance(n.func.value, cst.Name) and n.func.value.value == name
        for n in walk(function.body, enter_scopes=False)
    )


def _is_main_guard(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.If) or not isinstance(node.test, cst.Comparison):
        return False
    test = node.test
    return (
        isinstance(test.left, cst.Name)
        and test.left.value == "__name__"
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].comparator, cst.SimpleString)
        and "__main__" in test.comparisons[0].comparator.value
    )


def classify_holding(
    call: cst.Call, ancestors: Sequence[cst.CSTNode]
) -> Tuple[Holding, Optional[str], Optional[cst.With]]:
    """How the object created by `call` is held, from its parent nodes; for a `with` item,
    also the `with` statement."""
    child: cst.CSTNode = call
    index = len(ancestors) - 1
    parent = ancestors[index] if index >= 0 else None
    while isinstance(parent, cst.Await) and index > 0:  # `await make_session()`
        child, index = parent, index - 1
        parent = ancestors[index]
    grandparent = ancestors[index - 1] if index >= 1 else None
    # `engine.connect().execution_options(...)` returns the same Connection: hold it as the
    # outer call is held (typically a `with` item). Fixture: SL010/execution_options_chain.py
    while (
        isinstance(parent, cst.Attribute)
        and parent.attr.value in RETURNS_SELF
        and isinstance(grandparent, cst.Call)
        and grandparent.func is parent
        and index >= 2
    ):
        child, index = grandparent, index - 2
        parent = ancestors[index] if index >= 0 else None
        grandparent = ancestors[index - 1] if index >= 1 else None
    if isinstance(parent, cst.Assign) and parent.value is child:
        targets = parent.targets
        if len(targets) == 1 and isinstance(targets[0].target, cst.Name):
            return Holding.BOUND, targets[0].target.value, None
        return Holding.PASSED, None, None
    if isinstance(parent, (cst.AnnAssign, cst.NamedExpr)) and parent.value is child:
        if isinstance(parent.target, cst.Name):
            return Holding.BOUND, parent.target.value, None
        return Holding.PASSED, None, None
    if isinstance(parent, cst.WithItem):
        name = None
        if parent.asname is not None and isinstance(parent.asname.name, cst.Name):
            name = parent.asname.name.value
        return Holding.MANAGED, name, grandparent if isinstance(grandparent, cst.With) else None
    if isinstance(parent, cst.Return):
        return Holding.RETURNED, None, None
    if isinstance(parent, cst.Yield):
        return Holding.YIELDED, None, None
    if isinstance(parent, cst.Attribute) and isinstance(grandparent, cst.Call) and grandparent.func is parent:
        if parent.attr.value in ("begin", "__enter__", "__aenter__"):
            return Holding.MANAGED, None, None
        if parent.attr.value == "close":
            # `engine.connect().close()`: a reachability probe, closed before anything else
            # runs. Fixture: SL010/connect_then_close_probe.py (false positive on real code).
            return Holding.MANAGED, None, None
        if parent.attr.value in ("get_bind", "close"):
            # `SessionLocal().get_bind()`: a throwaway session asked for its engine starts
            # no transaction and checks nothing out. Fixture: SL001/chained_get_bind.py
            return Holding.MANAGED, None, None
        return Holding.CHAINED, None, None
    if isinstance(parent, cst.Arg) and isinstance(grandparent, cst.Call):
        if terminal_name(grandparent.func) in CLOSING_WRAPPERS:
            return Holding.MANAGED, None, None
    return Holding.PASSED, None, None


def _checked_engine(name: str, call: cst.Call, ancestors: Sequence[cst.CSTNode]) -> Optional[Factory]:
    """`if isinstance(db, Engine): connection = db.connect()`: inside the branch the test
    holds, `db` is an Engine (real-bug corpus: records-mover's table source, handed an
    Engine or a Connection). Fixture: SL010/connection_of_checked_engine.py"""
    parent = ancestors[-1] if ancestors else None
    if isinstance(parent, cst.WithItem) and parent.asname is not None and isinstance(parent.asname.name, cst.Name) and parent.asname.name.value == name:
        return None  # `with conn.connect() as conn:` rebinds the engine's name (corpus review: pandas)
    if isinstance(parent, cst.Assign) and any(isinstance(t.target, cst.Name) and t.target.value == name for t in parent.targets):
        return None
    child: cst.CSTNode = call
    for ancestor in reversed(ancestors):
        if isinstance(ancestor, cst.If) and child is ancestor.body:
            test = ancestor.test
            if (
                isinstance(test, cst.Call)
                and terminal_name(test.func) == "isinstance"
                and len(test.args) == 2
                and isinstance(test.args[0].value, cst.Name)
                and test.args[0].value.value == name
            ):
                kinds = test.args[1].value
                named = [terminal_name(e.value) for e in kinds.elements] if isinstance(kinds, cst.Tuple) else [terminal_name(kinds)]
                if named and all(n in ("Engine", "AsyncEngine") for n in named):
                    is_async = all(n == "AsyncEngine" for n in named)
                    return Factory(FactoryKind.ENGINE, is_async, Origin.CONVENTIONAL, name)
        if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            break
        child = ancestor
    return None
