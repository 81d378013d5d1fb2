"""The module scan: one file's module-level factories, imports, session type aliases and
function facts, from CPython's `ast` (a tenth of libcst's cost). Run only on the files whose
text can bind a factory."""

import ast
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from sessionlint.knowledge import (
    ENGINE_BUILDERS,
    MAKER_BUILDERS,
    SESSION_CLASSES,
    FactoryKind,
    Origin,
    library_engine_builder,
)
from sessionlint.project.model import (
    Factory,
    ImportBinding,
    ModuleFacts,
    builder_factory,
)


def _terminal(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def dotted_of(node: ast.AST) -> Optional[str]:  # `a.b.c` of a Name/Attribute chain
    parts: List[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _top_level_statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Module-level statements, looking into `if`/`try` blocks (TYPE_CHECKING, fallbacks)."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.If):
            yield from _top_level_statements(statement.body)
            yield from _top_level_statements(statement.orelse)
        elif isinstance(statement, ast.Try):
            yield from _top_level_statements(statement.body)
            for handler in statement.handlers:
                yield from _top_level_statements(handler.body)
            yield from _top_level_statements(statement.orelse)
            yield from _top_level_statements(statement.finalbody)


def scan_module(path: str, tree: ast.Module, may_release: bool = True) -> ModuleFacts:
    facts = ModuleFacts(path=path)
    builds: List[str] = []
    module_classes = {s.name: s for s in tree.body if isinstance(s, ast.ClassDef)}
    for statement in _top_level_statements(tree.body):
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if alias.name != "*":
                    facts.imports[alias.asname or alias.name] = ImportBinding(
                        statement.module or "", statement.level or 0, alias.name
                    )
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    facts.imports[alias.asname] = ImportBinding(alias.name, 0, "")
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            value = statement.value
            is_async_alias = _session_alias(value)
            if is_async_alias is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        facts.session_aliases[target.id] = is_async_alias
                continue
            if not isinstance(value, ast.Call) or value.func is None:
                continue
            builder = _builder_of(value, facts.imports)
            if builder is None:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    facts.factories[target.id] = builder
        elif isinstance(statement, ast.ClassDef):
            # `class Session(SqlModelSession): ...`: a project's own Session class makes
            # sessions too. Fixture: SL001/session_subclass.py
            for base in statement.bases:
                factory = _session_class_of(base, facts)
                if factory is not None:
                    facts.factories[statement.name] = factory
                    break
            facts.holders[statement.name] = _may_close(statement, module_classes)
            engines = _engine_attributes(statement)
            for method in statement.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if (method.name == "__init__" or not method.name.startswith("_")) and _builds(method, facts.imports):
                        # a public method too: `SessionManager().make_session(engine)` in a
                        # request's path builds per request (real-bug corpus: keylime)
                        builds.append(f"{statement.name}.{method.name}")
                    found_in_method = _function_facts(method, facts.imports, statement.name, engines)
                    if not method.name.startswith("__"):
                        _add_function(facts, f"{statement.name}.{method.name}", found_in_method)
                    # `global _Session; _Session = sessionmaker(...)` in a method binds the
                    # module's name too (real-bug corpus: AntaREST's DBSessionMiddleware)
                    facts.factories.update(found_in_method.bound)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _builds(statement, facts.imports):
                builds.append(statement.name)
            found = _function_facts(statement, facts.imports)
            _add_function(facts, statement.name, found)
            facts.factories.update(found.bound)
            facts.registries.update(found.registries)
    facts.star_imports = tuple(
        sorted({(s.module or "", s.level or 0) for s in _top_level_statements(tree.body) if isinstance(s, ast.ImportFrom) and any(a.name == "*" for a in s.names)})
    )
    # (`may_release`: the text has a `.remove`, `.close` or `.aclose`; without one, none)
    facts.released = _released(tree, facts) if may_release else ()
    facts.builds = tuple(builds)
    return facts


# Methods by which an object lets go of what it holds.
_RELEASING_METHODS = frozenset({"close", "aclose", "__exit__", "__aexit__", "__del__", "shutdown", "dispose", "teardown", "cleanup"})
_PLAIN_BASES = frozenset({"object", "ABC", "Generic", "Protocol"})


def _may_close(cls: ast.ClassDef, classes: Optional[Mapping[str, ast.ClassDef]] = None, depth: int = 0) -> bool:
    """Whether objects of a class may close a session they are given: a method calls
    `self.<x>.close()` (or remove/dispose), the class defines a releasing method, or a base
    class (other than object/ABC) may do it for it: a base of the same module is looked into
    (`class VendorRepository(NamespacedRepository)`), one from elsewhere may. False: a
    repository or service that only borrows the session it is built with.
    Fixture: tests/fixtures/projects/repository_borrows"""
    for base in cls.bases:
        written = base.value if isinstance(base, ast.Subscript) else base
        name = _terminal(written)
        if name in _PLAIN_BASES:
            continue
        inherited = (classes or {}).get(name or "") if isinstance(written, ast.Name) else None
        if inherited is None or inherited is cls or depth > 5 or _may_close(inherited, classes, depth + 1):
            return True
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if item.name in _RELEASING_METHODS:
                return True
            for node in ast.walk(item):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("close", "remove", "dispose", "aclose")
                    and isinstance(node.func.value, ast.Attribute)
                    and isinstance(node.func.value.value, ast.Name)
                    and node.func.value.value.id == "self"
                ):
                    return True
    return False


class _Released:
    """What one function (its nested functions included) says of the sessions it closes:
    the callees whose session it closes (`db = R()` then `db.close()`, or `with R() as
    db:`; a registry whose thread session is closed after each use holds no connection,
    corpus review: argilla's `get_sync_db`), and, for a teardown that removes registries
    named by strings (`for module, attr in [("db.auth", "db_session"), ...]:
    getattr(importlib.import_module(module), attr).remove()`, corpus: openalgo's fixed
    teardown), each (module, name) pair of strings, written out as `@module:0:name` as an
    import inside a function is."""

    def __init__(self) -> None:
        self.made: Dict[str, str] = {}
        self.closed: List[str] = []
        self.entered: List[str] = []
        self.getattr = False
        self.removes = False
        self.pairs: List[str] = []

    def see(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            if isinstance(node.value, ast.Call) and not node.value.args and len(node.targets) == 1:
                target, callee = node.targets[0], dotted_of(node.value.func)
                if isinstance(target, ast.Name) and callee:
                    self.made[target.id] = callee
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if isinstance(item.context_expr, ast.Call) and not item.context_expr.args:
                    callee = dotted_of(item.context_expr.func)
                    if callee:
                        self.entered.append(callee)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                if func.attr in ("close", "aclose") and isinstance(func.value, ast.Name):
                    self.closed.append(func.value.id)
                elif func.attr == "remove" and not node.args:
                    self.removes = True
            if _terminal(func) == "getattr":
                self.getattr = True
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            module, name = (e.value if isinstance(e, ast.Constant) else None for e in node.elts)
            if isinstance(module, str) and isinstance(name, str) and module and name.isidentifier():
                self.pairs.append(f"@{module}:0:{name}")

    def receivers(self) -> List[str]:
        return self.entered + [self.made[name] for name in self.closed if name in self.made]

    def removed_by_name(self) -> List[str]:
        return self.pairs if self.getattr and self.removes else []


def _builds(function: ast.AST, imports: Mapping[str, ImportBinding]) -> bool:
    """Whether a function's own scope builds a pooled engine, a sessionmaker or a registry
    (a library's engine builder, knowledge.LIBRARY_ENGINE_BUILDERS, included): what makes it
    matter when it runs (project.calls follows its callers)."""
    for node in walk_own_scope(function):
        if isinstance(node, ast.Call):
            name = _terminal(node.func)
            if name in MAKER_BUILDERS:
                return True
            if name in ENGINE_BUILDERS and not any(
                k.arg == "poolclass" and _terminal(k.value) == "NullPool" for k in node.keywords
            ):
                return True
            binding = imports.get(node.func.id) if type(node.func) is ast.Name else None
            if binding is not None and binding.level == 0 and library_engine_builder(binding.module, binding.original):
                return True
    return False


def _released(tree: ast.Module, facts: ModuleFacts) -> Tuple[str, ...]:
    """The module-level names (as written: `db_session`, `db.Session`) this module calls
    `.remove()` or `.close()` on with no arguments, or hands on as a callback
    (`app.teardown_appcontext(Session.remove)`); a loop over a literal of them (`for s in
    (a, b): s.remove()`) releases each. What `ProjectIndex.released` resolves. One walk of
    the module: each node is also seen by every function it is in (`_Released`)."""
    known: Set[str] = set(facts.imports)
    for statement in _top_level_statements(tree.body):
        if isinstance(statement, ast.Import):
            known.update((a.asname or a.name).split(".")[0] for a in statement.names)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            known.update(t.id for t in targets if isinstance(t, ast.Name))
    loops: Dict[str, List[str]] = {}
    receivers: List[str] = []
    functions: List[_Released] = []
    # imports inside functions (`from database.auth_db import db_session` in a teardown, to
    # avoid an import cycle): written out as `@module:level:original`
    local_imports: Dict[str, str] = {}
    top = {id(statement) for statement in tree.body}
    stack: List[Tuple[ast.AST, Tuple[_Released, ...]]] = [(child, ()) for child in reversed(tree.body)]
    while stack:
        node, within = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            record = _Released()
            functions.append(record)
            within = within + (record,)
        for record in within:
            record.see(node)
        if isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name) and isinstance(node.iter, (ast.Tuple, ast.List)):
            loops.setdefault(node.target.id, []).extend(d for d in map(dotted_of, node.iter.elts) if d)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("remove", "close") and not node.args and not node.keywords:
                receiver = dotted_of(func.value)
                if receiver:
                    receivers.append(receiver)
            for arg in node.args:
                if isinstance(arg, ast.Attribute) and arg.attr in ("remove", "close"):
                    receiver = dotted_of(arg.value)
                    if receiver:
                        receivers.append(receiver)
        elif isinstance(node, ast.ImportFrom) and id(node) not in top:
            for alias in node.names:
                if alias.name != "*":
                    local_imports.setdefault(alias.asname or alias.name, f"@{node.module or ''}:{node.level or 0}:{alias.name}")
        stack.extend((child, within) for child in ast.iter_child_nodes(node))
    found: Set[str] = set()
    for record in functions:
        receivers.extend(record.receivers())
        found.update(record.removed_by_name())
    for receiver in receivers:
        for name in loops.get(receiver, [receiver]):
            head, dot, rest = name.partition(".")
            if head in known:
                found.add(name)
            elif head in local_imports:
                found.add(local_imports[head] + dot + rest)
    return tuple(sorted(found))


def _add_function(facts: ModuleFacts, name: str, found: "FunctionFacts") -> None:
    if found.returned:
        facts.returned_calls[name] = found.returned
    if found.yielded:
        facts.yielded_calls[name] = found.yielded
    if found.opened:
        facts.opened_calls[name] = found.opened


def _session_class_of(base: ast.expr, facts: ModuleFacts) -> Optional[Factory]:
    """A base class that is SQLAlchemy's or SQLModel's Session/AsyncSession, imported under
    any name (`from sqlmodel import Session as SqlModelSession`), or a Session subclass
    defined earlier in the module."""
    dotted = dotted_of(base)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    binding = facts.imports.get(head)
    if binding is not None and binding.level == 0:
        full = f"{binding.module}.{binding.original}" + (f".{rest}" if rest else "") if binding.original else f"{binding.module}.{rest}"
        if full in SESSION_CLASSES:
            return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], Origin.SUBCLASS, full)
    if dotted in SESSION_CLASSES:
        return Factory(FactoryKind.SESSION, SESSION_CLASSES[dotted], Origin.SUBCLASS, dotted)
    earlier = facts.factories.get(dotted)
    if earlier is not None and earlier.kind is FactoryKind.SESSION and earlier.origin is Origin.SUBCLASS:
        return earlier
    return None


def _builder_of(call: ast.Call, imports: Optional[Mapping[str, "ImportBinding"]] = None) -> Optional[Factory]:
    """What `sessionmaker(...)`, `create_engine(...)`... build; `sessionmaker(class_=
    AsyncSession)` (SQLAlchemy 1.4 style, also under an import alias such as Airflow's
    `AsyncSession as SAAsyncSession`) makes AsyncSessions."""
    builder = builder_factory(_terminal(call.func) or "")
    if builder is not None and builder.kind is FactoryKind.SESSION and not builder.is_async:
        for keyword in call.keywords:
            if keyword.arg != "class_":
                continue
            name = _terminal(keyword.value) or ""
            binding = (imports or {}).get(name) if isinstance(keyword.value, ast.Name) else None
            if name == "AsyncSession" or (binding is not None and binding.original == "AsyncSession"):
                return Factory(FactoryKind.SESSION, True, Origin.MAKER, f"{builder.detail}(class_=AsyncSession)")
    return builder


def _session_alias(value: Optional[ast.expr]) -> Optional[bool]:
    """`Annotated[AsyncSession, ...]` -> True, `Annotated[Session, ...]` -> False, else None."""
    if isinstance(value, ast.Subscript) and _terminal(value.value) == "Annotated":
        inner = value.slice
        first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
        name = _terminal(first) if isinstance(first, (ast.Name, ast.Attribute)) else None
        if name in ("AsyncSession", "Session"):
            return name == "AsyncSession"
    return None


# What a summary's callee stands for when it is not a name: a call of a sessionmaker or a
# registry the function built itself (`Session = sessionmaker(...); return Session()`,
# `return sessionmaker(bind=e)()`), and a sessionmaker the function builds and returns.
NEW_SESSION = "!session"
NEW_MAKER = "!maker"
NEW_ASYNC_MAKER = "!async-maker"  # async_sessionmaker(...), sessionmaker(class_=AsyncSession)
NEW_ENGINE = "!engine"  # a pooled engine built by the function (`return create_engine(url)`)
NEW_ASYNC_ENGINE = "!async-engine"
# A connection checked out of an engine the function built itself (`engine =
# create_engine(url); return engine.connect()`) or of a module-level engine
NEW_CONNECTION = "!connection"
CONNECTION_CALLS = ("connect", "raw_connection")
# A summary's callee written `=NAME`: the function returns the module-level (or imported)
# name NAME as it is (`def _get_engine(): return __ENGINE`), a getter of what NAME holds
GLOBAL = "="


@dataclass
class FunctionFacts:
    """What one walk of a function's own scope says, for the summaries."""

    returned: Tuple[Tuple[str, bool], ...] = ()  # callees whose fresh result it returns
    yielded: Tuple[Tuple[str, bool], ...] = ()  # the same, yielded by a plain generator
    # the same, yielded by a `@contextmanager` that closes it only when the block raises
    opened: Tuple[Tuple[str, bool], ...] = ()
    bound: Dict[str, Factory] = field(default_factory=dict)  # module globals bound to a builder
    registries: Set[str] = field(default_factory=set)  # names bound to `scoped_session(...)`


def _unwrap(value: Optional[ast.expr]) -> Optional[ast.expr]:
    """`await x`, `cast(T, x)`, `typing.cast(T, x)`: x."""
    while True:
        if isinstance(value, ast.Await):
            value = value.value
        elif isinstance(value, ast.Call) and _terminal(value.func) == "cast" and len(value.args) == 2:
            value = value.args[1]
        else:
            return value


def _callee_of(call: ast.Call, makers: Set[str], class_name: Optional[str]) -> Optional[str]:
    """What a call's fresh result comes from, as a summary records it."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in makers:
        return NEW_SESSION
    if isinstance(func, ast.Attribute) and dotted_of(func) in makers:
        return NEW_SESSION
    if isinstance(func, ast.Call) and _terminal(func.func) in MAKER_BUILDERS:
        return NEW_SESSION  # `sessionmaker(bind=e)()`, `scoped_session(...)()`
    if _terminal(func) in MAKER_BUILDERS and MAKER_BUILDERS[_terminal(func) or ""][0] is FactoryKind.SESSION:
        # fresh-project review: fief's create_async_session_maker returns an async maker
        is_async = MAKER_BUILDERS[_terminal(func) or ""][1] or any(
            k.arg == "class_" and _terminal(k.value) == "AsyncSession" for k in call.keywords
        )
        return NEW_ASYNC_MAKER if is_async else NEW_MAKER
    if _terminal(func) in ENGINE_BUILDERS:
        pooled = not any(k.arg == "poolclass" and _terminal(k.value) == "NullPool" for k in call.keywords)
        return (NEW_ASYNC_ENGINE if ENGINE_BUILDERS[_terminal(func) or ""] else NEW_ENGINE) if pooled else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name):
        return f"{func.value.func.id}.{func.attr}"  # `SessionManager().make_session(engine)`
    dotted = dotted_of(func)
    if dotted is not None and class_name is not None and dotted.startswith("self.") and dotted.count(".") == 1:
        return f"{class_name}.{dotted[5:]}"
    return dotted


def _engine_attributes(cls: ast.ClassDef) -> FrozenSet[str]:
    """The attributes (`self.engine`) a class's methods bind to a new pooled engine: a
    method that returns `self.engine.connect()` checks a new connection out."""
    found: Set[str] = set()
    for method in cls.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in walk_own_scope(method):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _callee_of(node.value, set(), None) == NEW_ENGINE:
                found.update(d for d in (dotted_of(t) for t in node.targets) if d and d.startswith("self.") and d.count(".") == 1)
    return frozenset(found)


def _function_facts(
    function: ast.AST, imports: Optional[Mapping[str, ImportBinding]] = None, class_name: Optional[str] = None, engines: FrozenSet[str] = frozenset()
) -> FunctionFacts:
    """Of a top-level function (or a method of a top-level class), from one walk of its own
    scope: the callees whose fresh result it returns (`return F(...)`, `x = F(...); return
    x`; not for context managers and decorated functions such as caches and fixtures), or, for
    a plain generator, yields; the module globals it binds to a builder (`global Session;
    Session = sessionmaker(...)`); and the names it binds to a `scoped_session(...)` registry."""
    assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
    found = FunctionFacts()
    declared: Set[str] = set()
    assigns: List[Tuple[ast.Assign, ast.Call]] = []  # `target = call(...)`
    returns: List[ast.expr] = []
    yields: List[ast.expr] = []
    registered: Set[str] = set()
    generator = False
    # names the function binds (its parameters, assignments, loops, imports): not globals
    local: Set[str] = {a.arg for a in function.args.args + function.args.kwonlyargs + function.args.posonlyargs}
    for node in walk_own_scope(function):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            local.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            local.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, ast.Assign):
            value = _unwrap(node.value)
            if isinstance(value, ast.Call):
                assigns.append((node, value))
        elif isinstance(node, ast.Call):
            # `zope.sqlalchemy.register(session, transaction_manager=tm)`: the transaction
            # manager closes the session; what the function returns has an owner.
            # Fixture: SL001/session_registered_with_transaction_manager.py
            callee = _terminal(node.func) or ""
            if callee == "register" or callee.startswith("register_"):
                registered.update(a.id for a in node.args if isinstance(a, ast.Name))
        elif isinstance(node, ast.Return):
            if node.value is not None:
                returns.append(node.value)
        elif isinstance(node, ast.Global):
            declared.update(node.names)
        elif isinstance(node, ast.Yield):
            generator = True
            if node.value is not None:
                yields.append(node.value)
        elif isinstance(node, ast.YieldFrom):
            generator = True
    makers: Set[str] = set()
    for assign, call in assigns:
        builder = _terminal(call.func)
        if builder in ("scoped_session", "async_scoped_session"):
            for target in assign.targets:
                name = _terminal(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
                if name:
                    found.registries.add(name)
        if builder in MAKER_BUILDERS:
            makers.update(t.id for t in assign.targets if isinstance(t, ast.Name))
            # `self._registry = scoped_session(...)` built by the method itself (keylime's
            # SessionManager.make_session): `self._registry()` makes its sessions
            makers.update(d for d in (dotted_of(t) for t in assign.targets if isinstance(t, ast.Attribute)) if d and d.startswith("self."))
    if declared:
        for assign, call in assigns:
            built = _builder_of(call, imports)
            if built is None:
                continue
            for target in assign.targets:
                if isinstance(target, ast.Name) and target.id in declared:
                    found.bound[target.id] = built
    assigned: Dict[str, str] = {}
    for assign, call in assigns:
        assigned_callee = _callee_of(call, makers, class_name)
        if assigned_callee:
            for target in assign.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = assigned_callee
    # `engine = create_engine(url)` ... `connection = engine.connect()`: a new connection
    # (real-bug corpus: agate-sql's get_connection). Fixture: tests/fixtures/projects/connection_helpers
    engines_built = {name for name, callee in assigned.items() if callee == NEW_ENGINE} | engines

    def connection_of(callee: str) -> str:
        head, _, method = callee.rpartition(".")
        return NEW_CONNECTION if head in engines_built and method in CONNECTION_CALLS else callee

    assigned = {name: connection_of(callee) for name, callee in assigned.items()}
    is_async_def = isinstance(function, ast.AsyncFunctionDef)

    def fresh(values: Sequence[ast.expr]) -> Tuple[Tuple[str, bool], ...]:
        out: List[Tuple[str, bool]] = []
        for raw in values:
            value = _unwrap(raw)
            if isinstance(value, ast.Call):
                callee = _callee_of(value, makers, class_name)
                if callee:
                    out.append((connection_of(callee), is_async_def))
            elif isinstance(value, ast.Name) and value.id in assigned and value.id not in registered and value.id not in declared:
                # (a `global` it returns is built once and kept: not a fresh object)
                out.append((assigned[value.id], is_async_def))
            elif isinstance(value, ast.Name) and (value.id not in local or value.id in declared):
                out.append((GLOBAL + value.id, is_async_def))
        return tuple(out)

    decorated = bool(function.decorator_list) and not all(_is_plain_decorator(d) for d in function.decorator_list)
    if generator:
        if not function.decorator_list:  # a @contextmanager helper is entered with `with`
            found.yielded = tuple(
                item for item in fresh(yields) if item[0] not in (NEW_MAKER, NEW_ASYNC_MAKER, NEW_ENGINE, NEW_ASYNC_ENGINE, NEW_CONNECTION) and not item[0].startswith(GLOBAL)
            )
        elif len(function.decorator_list) == 1 and _terminal(function.decorator_list[0]) in ("contextmanager", "asynccontextmanager"):
            open_names = [y for y in yields if isinstance(y, ast.Name) and y.id in assigned and _closed_only_on_error(function, y.id)]
            found.opened = tuple(
                item for item in fresh(open_names) if item[0] not in (NEW_MAKER, NEW_ASYNC_MAKER, NEW_ENGINE, NEW_ASYNC_ENGINE, NEW_CONNECTION) and not item[0].startswith(GLOBAL)
            )
    elif returns and not decorated:
        found.returned = fresh(returns)
    return found


def _closed_only_on_error(function: ast.AST, name: str) -> bool:
    """A `@contextmanager` closes the session it yields in `except` handlers only (no
    `finally`, nothing after the `yield` on the normal path): the caller's block must close it
    (real-bug corpus: iris's guarded_session). Fixture: tests/fixtures/projects/open_context"""
    in_handlers: Set[int] = set()
    for node in walk_own_scope(function):
        if isinstance(node, ast.ExceptHandler):
            in_handlers.update(id(sub) for sub in ast.walk(node))
    closed_on_error = False
    for node in walk_own_scope(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            if node.func.value.id == name and node.func.attr in ("close", "aclose", "__exit__", "__aexit__"):
                if id(node) not in in_handlers:
                    return False
                closed_on_error = True
        elif isinstance(node, (ast.With, ast.AsyncWith)):  # `with closing(db):` closes it too
            if any(isinstance(i.context_expr, ast.Call) and any(isinstance(a, ast.Name) and a.id == name for a in i.context_expr.args) for i in node.items):
                return False
    return closed_on_error


def _is_plain_decorator(decorator: ast.expr) -> bool:
    """`@staticmethod`, `@classmethod`: they change nothing about what a call returns."""
    return _terminal(decorator) in ("staticmethod", "classmethod")


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
# Nodes that hold no statement, call or yield below them: not worth descending into.
_LEAVES = (ast.Name, ast.Constant, ast.Pass, ast.Break, ast.Continue, ast.alias, ast.arg, ast.Import, ast.ImportFrom)


def walk_own_scope(function: ast.AST) -> Iterable[ast.AST]:
    """Every node below `function` that is not inside a nested function, class or lambda
    (those nodes themselves included)."""
    stack: List[ast.AST] = list(ast.iter_child_nodes(function))
    pop = stack.pop
    push = stack.append
    while stack:
        node = pop()
        yield node
        if isinstance(node, _SCOPES) or isinstance(node, _LEAVES):
            continue
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        push(item)
            elif isinstance(value, ast.AST):
                push(value)
