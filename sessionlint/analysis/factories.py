"""The per-file resolver: callees and names of one linted module resolved to factories and
engines, from the module's own imports and definitions plus the project index."""

from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple, TypeVar

import libcst as cst

from sessionlint.analysis.tree import dotted_name, suite_statements, terminal_name
from sessionlint.knowledge import (
    CONVENTIONAL_FACTORY_NAMES,
    CONVENTIONAL_SESSION_NAMES,
    ENGINE_BUILDERS,
    LIBRARY_ENGINE_BUILDERS,
    MAKER_BUILDERS,
    SESSION_CLASSES,
    FactoryKind,
    Origin,
    is_async_name,
    is_engine_name,
    library_engine_builder,
)
from sessionlint.project.model import (
    Committer,
    Factory,
    ImportBinding,
    ProjectIndex,
    builder_factory,
)

# --- the per-file resolver ---------------------------------------------------------------


T = TypeVar("T")


class Resolver:
    """Resolves callees in one linted module to factories, from that module's own imports
    and definitions plus the project index. Tracks only the bindings factories need."""

    def __init__(self, module: cst.Module, path: str, index: ProjectIndex, mentions_sqlalchemy: bool = True) -> None:
        self.path = path
        self.index = index
        self.mentions_sqlalchemy = mentions_sqlalchemy
        self.imports: Dict[str, ImportBinding] = {}
        self.local_imports: List[Dict[str, ImportBinding]] = []  # per enclosing function
        self.defined: Set[str] = set()
        self.self_makers: Dict[str, Factory] = {}
        self._collect(module.body)
        own = index.modules.get(path)
        self.own_factories: Dict[str, Factory] = dict(own.factories) if own else {}
        self.own_generators: Dict[str, Factory] = dict(own.generators) if own else {}
        # names `from module import *` brings in that the project pass knows as factories
        self.star_names: FrozenSet[str] = frozenset(index.star_names(path)) if own is not None and own.star_imports else frozenset()
        # A conventional name this module binds to a scoped_session registry is one: calling
        # it returns the thread's session, which the registry's owner removes.
        # Fixture: SL001/scoped_registry_injected.py
        registries = own.registries if own else set()
        self.conventional = (CONVENTIONAL_FACTORY_NAMES | index.extra_factory_names) - registries
        # Quick filters for the traversal: a callee whose name is in neither set is not a
        # factory, whatever the resolution would say.
        self.callee_names: FrozenSet[str] = frozenset(
            set(self.own_factories)
            | self.star_names
            | self.conventional
            | {n for n, b in self.imports.items() if b.original or b.module}
        )

    # -- imports inside functions (`from app.settings import Session` to avoid a cycle) ------
    def enter_function(self) -> None:
        self.local_imports.append({})

    def leave_function(self) -> None:
        if self.local_imports:
            self.local_imports.pop()

    def on_import_from(self, node: cst.ImportFrom) -> None:
        """An import inside a function binds names for that function only.
        Fixture: SL001/factory_imported_inside_function.py"""
        if not self.local_imports or isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module) if node.module is not None else ""
        for alias in node.names:
            original = dotted_name(alias.name) or ""
            local = original
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.local_imports[-1][local] = ImportBinding(module or "", len(node.relative), original)

    def _local_binding(self, name: str) -> Optional[ImportBinding]:
        for scope in reversed(self.local_imports):
            binding = scope.get(name)
            if binding is not None:
                return binding
        return None

    def _collect(self, body: Iterable[cst.CSTNode]) -> None:
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.ImportFrom):
                        self._collect_import_from(small)
                    elif isinstance(small, cst.Import):
                        for alias in small.names:
                            name = dotted_name(alias.name) or ""
                            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                                self.imports[alias.asname.name.value] = ImportBinding(name, 0, "")
                            else:
                                head = name.split(".")[0]
                                self.imports[head] = ImportBinding(head, 0, "")
                    elif isinstance(small, (cst.Assign, cst.AnnAssign)):
                        targets = (
                            [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                        )
                        for target in targets:
                            if isinstance(target, cst.Name):
                                self.defined.add(target.value)
            elif isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                self.defined.add(statement.name.value)
                if isinstance(statement, cst.ClassDef):
                    self._collect_self_makers(statement)
            elif isinstance(statement, cst.If):
                self._collect(statement.body.body if isinstance(statement.body, cst.IndentedBlock) else ())
                orelse = statement.orelse
                if isinstance(orelse, cst.Else) and isinstance(orelse.body, cst.IndentedBlock):
                    self._collect(orelse.body.body)
            elif isinstance(statement, cst.Try):
                if isinstance(statement.body, cst.IndentedBlock):
                    self._collect(statement.body.body)
                for handler in statement.handlers:
                    if isinstance(handler.body, cst.IndentedBlock):
                        self._collect(handler.body.body)

    def _collect_self_makers(self, cls: cst.ClassDef) -> None:
        """`self.Session = sessionmaker(bind=self.engine)` in a method (at its top level or
        one `if` down): `self.Session()` makes sessions in this module. A `scoped_session`
        stored so is a registry and is left out. Fixture: SL001/sessionmaker_on_self.py"""
        ambiguous: Set[str] = set()
        for method in suite_statements(cls.body):
            if not isinstance(method, cst.FunctionDef):
                continue
            statements = list(suite_statements(method.body))
            for statement in list(statements):
                if isinstance(statement, cst.If):
                    statements.extend(suite_statements(statement.body))
                    if isinstance(statement.orelse, cst.Else):
                        statements.extend(suite_statements(statement.orelse.body))
            for statement in statements:
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue
                for small in statement.body:
                    if not isinstance(small, (cst.Assign, cst.AnnAssign)) or small.value is None:
                        continue
                    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                    callee = terminal_name(small.value.func) if isinstance(small.value, cst.Call) else None
                    maker = builder_factory(callee or "") if callee in MAKER_BUILDERS else None
                    given = _maker_parameter(method, small.value)
                    if given is not None:
                        # `self.__Session = Session`, the constructor's parameter of that name:
                        # a sessionmaker handed in (real-bug corpus: codechecker's request
                        # handler). Fixture: SL001/sessionmaker_given_to_constructor.py
                        for target in targets:
                            name = dotted_name(target) or ""
                            if name.startswith("self.") and name not in ambiguous:
                                self.self_makers[name] = given
                        continue
                    if maker is None or maker.kind is not FactoryKind.SESSION:
                        # anything else bound to the same attribute (a scoped_session registry
                        # in another branch): what `self.X()` returns is not known
                        for target in targets:
                            name = dotted_name(target) or ""
                            if name.startswith("self."):
                                self.self_makers.pop(name, None)
                                ambiguous.add(name)
                        continue
                    assert isinstance(small.value, cst.Call)
                    if not maker.is_async and any(
                        arg.keyword is not None and arg.keyword.value == "class_" and (terminal_name(arg.value) or "").endswith("AsyncSession")
                        for arg in small.value.args
                    ):
                        maker = Factory(FactoryKind.SESSION, True, Origin.MAKER, f"{maker.detail}(class_=AsyncSession)")
                    for target in targets:
                        name = dotted_name(target) or ""
                        if not name.startswith("self.") or name in ambiguous:
                            continue
                        earlier = self.self_makers.get(name)
                        if earlier is not None and earlier.is_async != maker.is_async:
                            # sync in one branch, async in another (`if async_mode:`): unknown
                            del self.self_makers[name]
                            ambiguous.add(name)
                        else:
                            self.self_makers[name] = maker

    def _collect_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module) if node.module is not None else ""
        level = len(node.relative)
        for alias in node.names:
            original = dotted_name(alias.name) or ""
            local = original
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.imports[local] = ImportBinding(module or "", level, original)

    def engine_of(self, node: cst.BaseExpression, local_engines: Mapping[str, Factory]) -> Optional[Factory]:
        """The Engine `node` evaluates to: a name bound to `create_engine(...)` in this scope,
        this module or a project module, a direct builder call, or a conventional engine name
        in a file that mentions SQLAlchemy."""
        if isinstance(node, cst.Call):
            builder = terminal_name(node.func) or ""
            if builder in ENGINE_BUILDERS:
                return builder_factory(builder)
            callee = terminal_name(node.func) or ""
            if self.may_be_factory(node.func):
                made = self.factory_of(node.func)
                if made is not None and made.kind is FactoryKind.ENGINE:
                    return made  # `make_engine(url).connect()`: a project engine factory
            if callee in self.index.extra_engine_names:  # configured engine getter
                return Factory(FactoryKind.ENGINE, is_async_name(callee), Origin.CONFIGURED, callee)
            # a getter of an engine: get_engine(), self._get_read_engine(), engine_for(url)
            if "engine" in callee.lower() and self.mentions_sqlalchemy:
                return Factory(FactoryKind.ENGINE, is_async_name(callee), Origin.CONVENTIONAL, f"{callee}()")
            return None
        if isinstance(node, cst.Name):
            local = local_engines.get(node.value)
            if local is not None:
                return local
            if node.value in self.index.extra_engine_names:
                return Factory(FactoryKind.ENGINE, is_async_name(node.value), Origin.CONFIGURED, node.value)
            found = self._resolve_name(node.value)
            if found is not None:
                return found if found.kind is FactoryKind.ENGINE else None
            if is_engine_name(node.value) and self.mentions_sqlalchemy:
                if node.value not in self.imports:
                    return Factory(FactoryKind.ENGINE, is_async_name(node.value), Origin.CONVENTIONAL, node.value)
                if self._imported_value(self.imports[node.value]):
                    return Factory(FactoryKind.ENGINE, is_async_name(node.value), Origin.CONVENTIONAL, node.value)
            return None
        if isinstance(node, cst.Attribute):
            attr = node.attr.value
            if attr in self.index.extra_engine_names:
                return Factory(FactoryKind.ENGINE, is_async_name(attr), Origin.CONFIGURED, attr)
            if is_engine_name(attr) and self.mentions_sqlalchemy:
                return Factory(FactoryKind.ENGINE, is_async_name(attr), Origin.CONVENTIONAL, attr)
            found = self._resolve_attribute(node)
            if found is not None and found.kind is FactoryKind.ENGINE:
                return found
        return None

    def _imported_value(self, binding: ImportBinding) -> bool:
        """Whether `from <project module> import name` brings a value, not a submodule
        (`from sqlalchemy import engine` or `from app.db import engine` with app/db/engine.py
        are modules). Fixture: tests/fixtures/projects/engine_import"""
        if not binding.original or self.index.path_of_module(self.path, binding.module, binding.level) is None:
            return False
        return self.index.path_of_module(self.path, f"{binding.module}.{binding.original}".lstrip("."), binding.level) is None

    def may_be_factory(self, callee: cst.BaseExpression) -> bool:
        """Cheap test used on every call in the traversal."""
        if isinstance(callee, cst.Name):
            return callee.value in self.callee_names or (bool(self.local_imports) and self._local_binding(callee.value) is not None)
        if isinstance(callee, cst.Attribute):
            return True
        return isinstance(callee, (cst.Call, cst.Subscript))  # `sessionmaker(bind=engine)()`, `state["session_maker"]()`

    def factory_of(self, callee: cst.BaseExpression, class_name: Optional[str] = None) -> Optional[Factory]:
        """What calling `callee` makes, if it is a factory: a session, a sessionmaker (a
        project function that builds and returns one), an engine. `class_name` is the class
        whose method the call is in (`self.make_session()`)."""
        if isinstance(callee, cst.Name):
            return self._resolve_name(callee.value)
        if isinstance(callee, cst.Attribute):
            owner = callee.value
            if isinstance(owner, cst.Call) and isinstance(owner.func, cst.Name):
                # `SessionManager().make_session(engine)`. Fixture: SL001/method_factory.py
                return self._resolve_method(owner.func.value, callee.attr.value)
            if class_name is not None and isinstance(owner, cst.Name) and owner.value == "self":
                found = self.own_factories.get(f"{class_name}.{callee.attr.value}")
                if found is not None:
                    return found
            return self._resolve_attribute(callee)
        if isinstance(callee, cst.Subscript) and self.mentions_sqlalchemy:
            # `app.state["session_maker"]()`: a sessionmaker kept under a key of an
            # application's state. Fixture: SL001/maker_on_application_object.py
            key = callee.slice[0].slice if len(callee.slice) == 1 else None
            if isinstance(key, cst.Index) and isinstance(key.value, cst.SimpleString):
                text = key.value.evaluated_value
                if isinstance(text, str) and text.lower().replace("_", "").startswith(("sessionmaker", "asyncsessionmaker", "sessionlocal")):
                    return Factory(FactoryKind.SESSION, "async" in text.lower(), Origin.CONVENTIONAL, text)
            return None
        if isinstance(callee, cst.Call):
            # `sessionmaker(bind=engine)()` calls the factory it just built. A registry
            # called at once (`scoped_session(...)()`) hands out its thread's session: not one.
            maker = builder_factory(terminal_name(callee.func) or "")
            if maker is not None and maker.kind is FactoryKind.SESSION:
                return maker
            # `get_session_maker()()`: a project function that returns a sessionmaker
            if self.may_be_factory(callee.func):
                built = self.factory_of(callee.func, class_name)
                if built is not None and built.kind is FactoryKind.MAKER:
                    return Factory(FactoryKind.SESSION, built.is_async, Origin.MAKER, f"{built.detail}()")
        return None

    def imported_committers(self) -> Dict[str, Committer]:
        """The functions this module imports by name (`from app.crud import
        create_transaction`) that commit a session parameter, under their local names
        (project.callables.committing_functions). Fixture: tests/fixtures/projects/commit_helpers"""
        return self._imported_by_name(self.index.committers)

    def _imported_by_name(self, table: Mapping[str, Mapping[str, T]]) -> Dict[str, T]:
        """What `table` (path -> function -> fact) says of the functions this module imports by
        name from project modules, under their local names."""
        found: Dict[str, T] = {}
        if not table:
            return found
        for local, binding in self.imports.items():
            if not binding.original:
                continue
            target = self.index.path_of_module(self.path, binding.module, binding.level)
            fact = table.get(target, {}).get(binding.original) if target is not None else None
            if fact is not None:
                found[local] = fact
        return found

    def _imported_from(self, local: str) -> Optional[Tuple[str, str]]:
        """(path of the project module, its name for it) of a name this module imports:
        `from database import db` -> ("database.py", "db"); `import database` -> (.., "")."""
        binding = self.imports.get(local)
        if binding is None:
            return None
        target = self.index.path_of_module(self.path, binding.module, binding.level)
        return (target, binding.original) if target is not None else None

    def imported_closers(self) -> Dict[str, Tuple[FrozenSet[int], FrozenSet[str]]]:
        """The functions this module imports by name that close a parameter on every path,
        under their local names: (positions, parameter names) (project.callables
        .closing_functions). Fixture: tests/fixtures/projects/closing_helpers"""
        return {local: (frozenset(positions), frozenset(names)) for local, (positions, names) in self._imported_by_name(self.index.closers).items()}

    def query_runner(self, func: cst.BaseExpression) -> Optional[int]:
        """The position of the callable parameter when `func` names a project function that
        runs a callable and closes a session in the `finally` around it
        (project.callables.query_runners): `run_in_thread` imported from `database`, or
        `database.run_in_thread`. Fixture: tests/fixtures/projects/query_runners"""
        if not self.index.runners:
            return None
        if isinstance(func, cst.Name):
            found = self._imported_from(func.value)
            if found is not None and found[1]:
                return self.index.runners.get(found[0], {}).get(found[1])
            return self.index.runners.get(self.path, {}).get(func.value) if found is None else None
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            binding = self.imports.get(func.value.value)
            if binding is not None:  # `import app.database as database`, `from app import database`
                module = f"{binding.module}.{binding.original}".lstrip(".") if binding.original else binding.module
                target = self.index.path_of_module(self.path, module, binding.level)
                return self.index.runners.get(target, {}).get(func.attr.value) if target is not None else None
        return None

    def lazy_callable(self, node: cst.BaseExpression) -> bool:
        """Whether calling `node` returns a query nothing has run yet: `session.query`, or a
        project callable whose returns are such queries (`db.query` where `db = DB(...)` in
        the module it comes from, a function returning `session.query(...).filter(...)`)."""
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            receiver, method = node.value.value, node.attr.value
            if method == "query" and receiver.lstrip("_") in CONVENTIONAL_SESSION_NAMES:
                return True
            found = self._imported_from(receiver)
            if found is None:
                return f"{receiver}.{method}" in self.index.lazy_callables.get(self.path, ())
            if found[1]:
                return f"{found[1]}.{method}" in self.index.lazy_callables.get(found[0], ())
            return method in self.index.lazy_callables.get(found[0], ())
        if isinstance(node, cst.Name):
            found = self._imported_from(node.value)
            if found is None:
                return node.value in self.index.lazy_callables.get(self.path, ())
            return bool(found[1]) and found[1] in self.index.lazy_callables.get(found[0], ())
        return False

    def unremoved_registry(self, callee: cst.BaseExpression) -> bool:
        """Whether `callee` (`Session`, `db.Session`) names a module-level `scoped_session`
        registry of the project that no file removes or closes, in a project that serves
        requests or runs tasks: each thread's session stays open after its request or task
        (real-bug corpus: amp-github-apps' metrics service). Fixture:
        tests/fixtures/projects/registry_never_removed"""
        index = self.index
        if not index.serves_requests:
            return False
        home: Optional[Tuple[str, str]] = None
        if isinstance(callee, cst.Name):
            name = callee.value
            own = index.modules.get(self.path)
            if own is not None and name in own.factories:
                home = (self.path, name)
            else:
                binding = self.imports.get(name)
                if binding is not None and binding.original:
                    target = index.path_of_module(self.path, binding.module, binding.level)
                    home = (target, binding.original) if target is not None else None
        elif isinstance(callee, cst.Attribute) and isinstance(callee.value, cst.Name):
            binding = self.imports.get(callee.value.value)
            if binding is not None:
                module = f"{binding.module}.{binding.original}" if binding.original else binding.module
                target = index.path_of_module(self.path, module, binding.level)
                home = (target, callee.attr.value) if target is not None else None
        if home is None:
            return False
        facts = index.modules.get(home[0])
        factory = facts.factories.get(home[1]) if facts is not None else None
        if factory is None or factory.kind is not FactoryKind.REGISTRY:
            return False
        return home not in index.released and home[1] not in index.released_names

    def is_registry(self, dotted: str) -> bool:
        """Whether a module-level name (`db_session`, `db.Session`) is a `scoped_session`
        registry of the project, or Flask-SQLAlchemy's `db.session`."""
        if dotted.endswith(".session") and dotted.count(".") == 1:
            return True  # Flask-SQLAlchemy's `db.session` is a scoped_session
        own = self.index.modules.get(self.path)
        if own is not None and dotted in own.registries:
            return True
        if "." not in dotted:
            found = self._resolve_name(dotted)
        else:
            expression = cst.parse_expression(dotted)
            found = self._resolve_attribute(expression) if isinstance(expression, cst.Attribute) else None
        return found is not None and found.kind is FactoryKind.REGISTRY

    def holder_closes(self, callee: cst.BaseExpression) -> Optional[bool]:
        """For a project class called with a session (`VendorRepository(db)`): whether its
        objects may close what they are given (None: not a class the project scan knows)."""
        if isinstance(callee, cst.Name):
            own = self.index.modules.get(self.path)
            if own is not None and callee.value in own.holders:
                return own.holders[callee.value]
            binding = (self._local_binding(callee.value) if self.local_imports else None) or self.imports.get(callee.value)
            if binding is None or not binding.original:
                return None
            target = self.index.path_of_module(self.path, binding.module, binding.level)
            name = binding.original
        elif isinstance(callee, cst.Attribute) and isinstance(callee.value, cst.Name):
            binding = self.imports.get(callee.value.value)
            if binding is None:
                return None
            module = f"{binding.module}.{binding.original}" if binding.original else binding.module
            target = self.index.path_of_module(self.path, module, binding.level)
            name = callee.attr.value
        else:
            return None
        facts = self.index.modules.get(target) if target is not None else None
        return facts.holders.get(name) if facts is not None else None

    def may_be_generator(self, name: str) -> bool:
        """Cheap test: a name that may be a project generator (`gen = get_db()`)."""
        return name in self.own_generators or name in self.imports or name in self.star_names

    def generator_of(self, callee: cst.BaseExpression) -> Optional[Factory]:
        """The project generator that `callee` names, if it yields a new session (`get_db`
        of `next(get_db())`). Fixture: SL001/next_of_dependency.py"""
        name = callee.value if isinstance(callee, cst.Name) else None
        if name is not None:
            own = self.own_generators.get(name)
            if own is not None:
                return own
            binding = (self._local_binding(name) if self.local_imports else None) or self.imports.get(name)
            if binding is not None and binding.original:
                target = self.index.path_of_module(self.path, binding.module, binding.level)
                return self.index.lookup(target, binding.original, table="generators") if target is not None else None
            if name in self.star_names:
                return self.index.lookup(self.path, name, table="generators")
            return None
        if isinstance(callee, cst.Attribute) and isinstance(callee.value, cst.Name):
            binding = self.imports.get(callee.value.value)
            if binding is not None:
                module = f"{binding.module}.{binding.original}" if binding.original else binding.module
                target = self.index.path_of_module(self.path, module, binding.level)
                if target is not None:
                    return self.index.lookup(target, callee.attr.value, table="generators")
        return None

    def _resolve_method(self, class_name: str, method: str) -> Optional[Factory]:
        """The factory method `method` of the project class `class_name`."""
        own = self.own_factories.get(f"{class_name}.{method}")
        if own is not None:
            return own
        binding = (self._local_binding(class_name) if self.local_imports else None) or self.imports.get(class_name)
        if binding is not None and binding.original:
            target = self.index.path_of_module(self.path, binding.module, binding.level)
            if target is not None:
                return self.index.lookup(target, f"{binding.original}.{method}")
        return None

    def _resolve_name(self, name: str) -> Optional[Factory]:
        if self.local_imports:
            local = self._local_binding(name)
            if local is not None:
                return self._resolve_import(local, name)
        own = self.own_factories.get(name)
        if own is not None:
            return own
        binding = self.imports.get(name)
        if binding is not None:
            return self._resolve_import(binding, name)
        if name in self.defined:
            return None
        if name in self.star_names:
            # `from app.db import *`. Fixture: tests/fixtures/projects/star_import
            return self.index.lookup(self.path, name)
        if name in self.conventional:
            return Factory(FactoryKind.SESSION, is_async_name(name), Origin.CONVENTIONAL, name)
        return None

    def _resolve_import(self, binding: ImportBinding, local: str) -> Optional[Factory]:
        if not binding.original:
            return None  # a module object is not callable
        full = f"{binding.module}.{binding.original}" if binding.module else binding.original
        if full in SESSION_CLASSES:
            return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], Origin.SESSION_CLASS, full)
        target = self.index.path_of_module(self.path, binding.module, binding.level)
        if target is not None:
            return self.index.lookup(target, binding.original)
        library = library_engine_builder(binding.module, binding.original) if binding.level == 0 else None
        if library is not None:
            # `get_db_session(config)` of fideslib: a new engine per call (the collector
            # skips a call that lends one). Fixture: SL004/library_engine_builder.py
            return Factory(FactoryKind.ENGINE, library[0], Origin.FUNCTION, full)
        if binding.level == 0 and binding.module.split(".")[0] in ("sqlalchemy", "sqlmodel"):
            return None  # a library name that is not a session class (e.g. sessionmaker)
        for candidate in (local, binding.original):
            if candidate in self.conventional:
                return Factory(FactoryKind.SESSION, is_async_name(candidate), Origin.CONVENTIONAL, candidate)
        return None

    def _resolve_attribute(self, callee: cst.Attribute) -> Optional[Factory]:
        dotted = dotted_name(callee)
        attr = callee.attr.value
        if dotted is not None and dotted in self.self_makers:
            maker = self.self_makers[dotted]
            return Factory(FactoryKind.SESSION, maker.is_async, Origin.MAKER, dotted)
        if dotted is not None and dotted.count(".") == 2 and dotted.startswith("self.") and f"self.{attr}" in self.self_makers:
            # `self.server.config_session()`: the sessionmaker another class of the module
            # keeps on itself, reached through the object this one holds (a request handler's
            # server; real-bug corpus: codechecker's readiness probe).
            # Fixture: SL003/maker_of_the_held_server.py
            maker = self.self_makers[f"self.{attr}"]
            return Factory(FactoryKind.SESSION, maker.is_async, Origin.MAKER, dotted)
        if dotted is not None:
            head, _, rest = dotted.partition(".")
            binding = self.imports.get(head)
            if binding is not None:
                module = f"{binding.module}.{binding.original}" if binding.original else binding.module
                full = f"{module}.{rest}"
                if full in SESSION_CLASSES:
                    return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], Origin.SESSION_CLASS, full)
                if "." in rest and not binding.original:
                    # `import oz.sqlalchemy` ... `oz.sqlalchemy.session()`: a function of a
                    # submodule (real-bug corpus: oz's SQLAlchemy middleware)
                    package, _, name = rest.rpartition(".")
                    submodule = self.index.path_of_module(self.path, f"{module}.{package}", binding.level)
                    if submodule is not None:
                        return self.index.lookup(submodule, name)
                target = self.index.path_of_module(self.path, module, binding.level)
                if target is not None:
                    if "." in rest:
                        return None
                    return self.index.lookup(target, rest)
                if module.split(".")[0] in ("sqlalchemy", "sqlmodel"):
                    return None
        if attr in self.conventional:
            return Factory(FactoryKind.SESSION, is_async_name(attr), Origin.CONVENTIONAL, attr)
        if attr in ("sessionmaker", "async_sessionmaker") and self.mentions_sqlalchemy and dotted is not None:
            # `request.registry.sessionmaker()`: a sessionmaker kept on an application object
            # (Pyramid's registry). Fixture: SL001/maker_on_application_object.py
            return Factory(FactoryKind.SESSION, attr.startswith("async"), Origin.CONVENTIONAL, attr)
        return None


# Parameter names that stand for a sessionmaker handed to a constructor, besides the
# conventional factory names the module resolves on its own (`session_factory` may be a
# registry the module builds): `Session` is one only as a parameter, since a class takes
# the factory, not SQLAlchemy's class, under that name.
MAKER_PARAMETERS = frozenset({"Session", "sessionmaker", "session_class"})


def _maker_parameter(method: cst.FunctionDef, value: cst.BaseExpression) -> Optional[Factory]:
    """The sessionmaker `value` is, when it is a parameter of `__init__` named as one (or
    annotated `sessionmaker`/`async_sessionmaker`) and not a scoped_session registry."""
    if method.name.value != "__init__" or not isinstance(value, cst.Name):
        return None
    for param in (*method.params.params, *method.params.kwonly_params):
        if param.name.value != value.value:
            continue
        annotation = terminal_name(param.annotation.annotation) if param.annotation is not None else None
        if annotation in ("scoped_session", "async_scoped_session"):
            return None
        if annotation in ("sessionmaker", "async_sessionmaker") or (annotation is None and value.value in MAKER_PARAMETERS):
            is_async = annotation == "async_sessionmaker" or "async" in value.value.lower()
            return Factory(FactoryKind.SESSION, is_async, Origin.CONVENTIONAL, value.value)
    return None


def lends_engine(call: cst.Call, builder: str) -> bool:
    """A call of a library's engine builder (knowledge.LIBRARY_ENGINE_BUILDERS) given the
    engine to use: its keyword, or a positional argument named `...engine...`."""
    entry = LIBRARY_ENGINE_BUILDERS.get(builder)
    if entry is None or not entry[1]:
        return False
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value == entry[1]:
                return True
        elif "engine" in (terminal_name(arg.value) or "").lower():
            return True
    return False
