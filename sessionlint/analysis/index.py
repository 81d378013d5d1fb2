"""What creates sessions, project-wide: the factory index built before any file is linted.

The project pass runs before any file is linted. It reads the text of every file (which the
lint pass needs anyway) and parses with the stdlib `ast` (a tenth of libcst's cost) only the
few files whose text can define a factory: `sessionmaker(`, `scoped_session(`, `Session(`, a
subclass of a session class, or a name already known to be a factory imported from the project
(a re-export, or a function that returns a new session).
From those it records module-level factories, so that `from app.database import SessionLocal`
in routes.py resolves to the `sessionmaker(...)` in app/database.py.
"""

import ast
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Protocol, Sequence, Set, Tuple



class FactoryKind(Enum):
    SESSION = "session factory"  # calling it creates a session the caller owns
    REGISTRY = "session registry"  # scoped_session: calling it returns the thread's session
    ENGINE = "engine"  # the name holds an Engine: `.connect()` creates a connection
    CONNECTION = "connection source"  # `engine.connect()` / `engine.raw_connection()`


@dataclass(frozen=True)
class Factory:
    kind: FactoryKind
    is_async: bool
    origin: str  # how it was recognised, for messages and --verbose


# Classes whose instances are sessions (SQLAlchemy 2.x and SQLModel).
SESSION_CLASSES: Mapping[str, bool] = {
    "sqlalchemy.orm.Session": False,
    "sqlalchemy.orm.session.Session": False,
    "sqlmodel.Session": False,
    "sqlmodel.orm.session.Session": False,
    "sqlalchemy.ext.asyncio.AsyncSession": True,
    "sqlalchemy.ext.asyncio.session.AsyncSession": True,
    "sqlmodel.ext.asyncio.session.AsyncSession": True,
}

# Callables whose result is a session factory (sessionmaker) or a registry (scoped_session).
MAKER_BUILDERS: Mapping[str, Factory] = {
    "sessionmaker": Factory(FactoryKind.SESSION, False, "sessionmaker"),
    "async_sessionmaker": Factory(FactoryKind.SESSION, True, "async_sessionmaker"),
    "scoped_session": Factory(FactoryKind.REGISTRY, False, "scoped_session"),
    "async_scoped_session": Factory(FactoryKind.REGISTRY, True, "async_scoped_session"),
}

# Callables that build an Engine (and with it a connection pool).
ENGINE_BUILDERS: Mapping[str, Factory] = {
    "create_engine": Factory(FactoryKind.ENGINE, False, "create_engine"),
    "engine_from_config": Factory(FactoryKind.ENGINE, False, "engine_from_config"),
    "create_async_engine": Factory(FactoryKind.ENGINE, True, "create_async_engine"),
    "async_engine_from_config": Factory(FactoryKind.ENGINE, True, "async_engine_from_config"),
}
# Engine names assumed when an origin cannot be resolved, in files that mention SQLAlchemy.
CONVENTIONAL_ENGINE_NAMES: FrozenSet[str] = frozenset(
    {"engine", "async_engine", "db_engine", "sql_engine", "sa_engine", "sync_engine"}
)
# Engine methods that check a connection out of the pool.
CONNECTION_METHODS: FrozenSet[str] = frozenset({"connect", "raw_connection"})

# Names that, when their origin cannot be resolved (imported from outside the linted files,
# or a parameter), are taken to be session factories. `Session` is deliberately absent: an
# unresolved `Session` is as often a scoped_session registry as a sessionmaker.
# Extendable by configuration (`session-factories`).
CONVENTIONAL_FACTORY_NAMES: FrozenSet[str] = frozenset(
    {
        "SessionLocal",
        "AsyncSessionLocal",
        "async_session_maker",
        "async_session_factory",
        "async_session",
        "session_factory",
        "session_maker",
        "SessionFactory",
        "SessionMaker",
        "sessionMaker",
    }
)

_MANAGER_DECORATORS = frozenset({"contextmanager", "asynccontextmanager"})
_DEPENDS_RE = re.compile(rb"\b(?:Depends|Security)\(\s*(?:dependency\s*=\s*)?([A-Za-z_][\w.]*)")
# Calls that bind a session factory or an engine, whatever the project calls its own (the
# conventional names join them in IndexBuilder.binding_call).
_DEFINITION_NAMES = (
    "sessionmaker", "async_sessionmaker", "scoped_session", "async_scoped_session", "Session", "AsyncSession",
    "create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config",
)


# `from x import names` (the names: a parenthesised list or the rest of the line), found by
# its literal start: `from_import_names` keeps the matches at the start of a line.
_FROM_IMPORT_RE = re.compile(rb"from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)")
_WORD_RE = re.compile(rb"\b([A-Za-z_]\w*)\b")
# The end of a called name that contains `ession` or `ngine` (IndexBuilder.calls_a_binding).
_CALL_TAILS = (re.compile(rb"(ession\w*)\s*\("), re.compile(rb"(ngine\w*)\s*\("))
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ALIAS_RE = re.compile(rb"=\s*Annotated\[\s*(?:[\w.]+\.)?(?:Async)?Session\b")
# What else the module scan learns a factory from without a call in the text: a subclass of a
# session class (`class TenantSession(Session):`) and a session class imported under another
# name (`Session as SASession`, then `return SASession(bind=e)` in a function). Two regexes
# that start with a literal, which the regex engine searches for (one pattern starting with
# `\b` is tried at every position: it doubled the text facts' time).
_SESSION_BASE_RE = re.compile(rb"class[ \t]+\w+[ \t]*\([^)]*Session\b")
_SESSION_AS_RE = re.compile(rb"Session[ \t]+as\b")


def alternation(names: Iterable[str]) -> bytes:
    """A regex group matching exactly `names`, as a trie (`s(?:ession(?:_maker)?|ync)`): Python's
    regex engine tries a flat alternation's branches one by one at every position, a trie's
    only those that share the next character (the factory trigger on the whole corpus:
    1.6 s -> 1.0 s per 2,400 files)."""
    trie: Dict[bytes, dict] = {}
    for name in sorted(set(names)):
        node = trie
        for byte in name.encode():
            node = node.setdefault(bytes([byte]), {})
        node[b""] = {}

    def group(node: Dict[bytes, dict]) -> bytes:
        branches = [re.escape(key) + group(child) for key, child in sorted(node.items()) if key]
        if not branches:
            return b""
        body = b"(?:" + b"|".join(branches) + b")" if len(branches) > 1 or b"" in node else branches[0]
        return body + b"?" if b"" in node else body

    return b"(?:" + group(trie) + b")"


def from_imports(data: bytes) -> List[Tuple[bytes, bytes]]:
    """(module, names part) of every `from module import ...` that starts a line (after
    spaces or tabs): what `(?m)^[ \t]*from...` finds, three to four times faster, since a
    regex that starts with a literal is searched for by that literal, not tried at every
    line. The module keeps its leading dots."""
    found = []
    search = _FROM_IMPORT_RE.search
    position = 0
    while True:
        match = search(data, position)
        if match is None:
            return found
        start = match.start()
        if not data[data.rfind(b"\n", 0, start) + 1 : start].strip(b" \t"):
            found.append((match.group(1), match.group(2)))
            position = match.end()
        else:
            position = start + 1


def from_import_names(data: bytes) -> List[bytes]:
    """The names part of every `from x import ...` that starts a line (`from_imports`)."""
    return [names for _, names in from_imports(data)]


def is_async_name(name: str) -> bool:
    return "async" in name.lower()


def is_engine_name(name: str) -> bool:
    """`engine`, `async_engine`, `self._engine`, `db_engine`, and `sqlite_engine_iris` (a
    pytest fixture's engine with data loaded): conventional engine names."""
    return name in CONVENTIONAL_ENGINE_NAMES or name.endswith("_engine") or "_engine_" in name


@dataclass(frozen=True)
class ImportBinding:
    """`name` in this module comes from `module` (absolute, or relative with `level` dots);
    `original` is the imported attribute, or "" when the module itself is bound."""

    module: str
    level: int
    original: str


@dataclass
class ModuleFacts:
    path: str
    factories: Dict[str, Factory] = field(default_factory=dict)
    imports: Dict[str, ImportBinding] = field(default_factory=dict)
    # function name -> names of callees whose result it returns (resolved in the second round)
    returned_calls: Dict[str, Tuple[Tuple[str, bool], ...]] = field(default_factory=dict)
    # type aliases of sessions: `DbSession = Annotated[AsyncSession, Depends(...)]` -> True
    session_aliases: Dict[str, bool] = field(default_factory=dict)
    # names a function of this module binds to a `scoped_session(...)` registry (`factory =
    # scoped_session(...)`, `self.session_factory = scoped_session(...)`)
    registries: Set[str] = field(default_factory=set)


@dataclass
class ProjectIndex:
    """Module-level factories of the linted files, keyed by path, plus the names used as
    FastAPI dependencies anywhere in the project. Plain data: it is sent to worker processes."""

    # facts of the files whose text can bind a factory (the others have none to record)
    modules: Dict[str, ModuleFacts] = field(default_factory=dict)
    # every linted file: relative imports resolve against these
    paths: FrozenSet[str] = frozenset()
    # module stem (`c` of a/b/c.py, `b` of a/b/__init__.py) -> paths: the dotted suffixes
    # of those paths (`module_keys_for`) are worked out only for an import that names the stem
    module_stems: Dict[str, List[str]] = field(default_factory=dict)
    depends_targets: FrozenSet[str] = frozenset()
    # generator dependencies that yield an async session (FastAPI `Depends(get_async_db)`)
    async_dependencies: FrozenSet[str] = frozenset()
    # every name some linted file imports with `from x import name`
    imported_names: FrozenSet[str] = frozenset()
    # session type aliases by name, project-wide: name -> is async
    session_aliases: Dict[str, bool] = field(default_factory=dict)
    extra_factory_names: FrozenSet[str] = frozenset()
    # from the configuration: names of engines / engine getters, per-request decorators
    extra_engine_names: FrozenSet[str] = frozenset()
    request_decorators: FrozenSet[str] = frozenset()
    # (path, content_key of the bytes) of files CPython's parser accepted in the project pass:
    # their lint skips that check
    parsed: FrozenSet[Tuple[str, bytes]] = frozenset()

    # --- module resolution -------------------------------------------------------------
    def path_of_module(self, from_path: str, module: str, level: int) -> Optional[str]:
        """The linted file that `from <level dots><module> import ...` in `from_path` names."""
        if level:
            base = os.path.dirname(from_path)
            for _ in range(level - 1):
                base = os.path.dirname(base)
            parts = [p for p in module.split(".") if p]
            stem = os.path.join(base, *parts) if parts else base
            for candidate in (stem + ".py", os.path.join(stem, "__init__.py"), stem + ".pyi"):
                if candidate in self.paths or candidate in self.modules:
                    return candidate
            return None
        found = [p for p in self.module_stems.get(module.rsplit(".", 1)[-1], ()) if module in _module_keys(p)]
        if len(found) <= 1:
            return found[0] if found else None
        # Several packages of one tree share the key (services/a/app/db.py, services/b/app/
        # db.py): the one beside the importing file is the one its interpreter would import.
        # A tie resolves to neither.
        here = os.path.abspath(from_path)
        shared = sorted((len(os.path.commonpath([here, os.path.abspath(p)])), p) for p in found)
        return shared[-1][1] if shared[-1][0] > shared[-2][0] else None

    def lookup(self, path: str, name: str, depth: int = 0) -> Optional[Factory]:
        """The factory bound to `name` at module level in `path`, following re-exports."""
        facts = self.modules.get(path)
        if facts is None or depth > 5:
            return None
        found = facts.factories.get(name)
        if found is not None:
            return found
        binding = facts.imports.get(name)
        if binding is not None and binding.original:
            target = self.path_of_module(path, binding.module, binding.level)
            if target is not None:
                return self.lookup(target, binding.original, depth + 1)
        return None

    def is_project_module(self, from_path: str, module: str, level: int) -> bool:
        return self.path_of_module(from_path, module, level) is not None


# --- the project pass ------------------------------------------------------------------


def module_keys_for(path: str, depth: int = 8) -> List[str]:
    """Every dotted suffix of `path`: `/x/a/b/c.py` -> c, b.c, a.b.c, x.a.b.c (up to `depth`
    parts). Suffix keys resolve regular packages, namespace packages without __init__.py and
    src layouts alike; a key that two files share resolves to neither."""
    parts = os.path.abspath(path).replace("\\", "/").split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    parts = parts[:-1] if stem == "__init__" else parts[:-1] + [stem]
    parts = [p for p in parts if p][-depth:]
    return [".".join(parts[i:]) for i in range(len(parts))]


_KEYS: Dict[Tuple[str, str], FrozenSet[str]] = {}


def _module_keys(path: str) -> FrozenSet[str]:
    """`module_keys_for`, remembered per working directory and path: the project pass's
    function summaries resolve the same imports over and over (3.6 s of 20 on the whole
    corpus before)."""
    key = (os.getcwd(), path)
    found = _KEYS.get(key)
    if found is None:
        if len(_KEYS) > 200_000:
            _KEYS.clear()
        found = _KEYS[key] = frozenset(module_keys_for(path))
    return found


def module_stem(path: str) -> str:
    """The last part of the module a file is: `c` for a/b/c.py, `b` for a/b/__init__.py."""
    head, name = os.path.split(path)
    stem = name.rsplit(".", 1)[0]
    return os.path.basename(head) if stem == "__init__" else stem


def _terminal(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _dotted(node: ast.expr) -> Optional[str]:
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


def _scan_module(path: str, tree: ast.Module) -> ModuleFacts:
    facts = ModuleFacts(path=path)
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
            alias = _session_alias(value)
            if alias is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        facts.session_aliases[target.id] = alias
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
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            returned, bound, registries = _function_facts(statement, facts.imports)
            if returned:
                facts.returned_calls[statement.name] = returned
            facts.factories.update(bound)
            facts.registries.update(registries)
    return facts


def _session_class_of(base: ast.expr, facts: ModuleFacts) -> Optional[Factory]:
    """A base class that is SQLAlchemy's or SQLModel's Session/AsyncSession, imported under
    any name (`from sqlmodel import Session as SqlModelSession`), or a Session subclass
    defined earlier in the module."""
    dotted = _dotted(base)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    binding = facts.imports.get(head)
    if binding is not None and binding.level == 0:
        full = f"{binding.module}.{binding.original}" + (f".{rest}" if rest else "") if binding.original else f"{binding.module}.{rest}"
        if full in SESSION_CLASSES:
            return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], f"subclass of {full}")
    if dotted in SESSION_CLASSES:
        return Factory(FactoryKind.SESSION, SESSION_CLASSES[dotted], f"subclass of {dotted}")
    earlier = facts.factories.get(dotted)
    if earlier is not None and earlier.kind is FactoryKind.SESSION and earlier.origin.startswith("subclass"):
        return earlier
    return None


def _builder_of(call: ast.Call, imports: Optional[Mapping[str, "ImportBinding"]] = None) -> Optional[Factory]:
    """What `sessionmaker(...)`, `create_engine(...)`... build; `sessionmaker(class_=
    AsyncSession)` (SQLAlchemy 1.4 style, also under an import alias such as Airflow's
    `AsyncSession as SAAsyncSession`) makes AsyncSessions."""
    builder = MAKER_BUILDERS.get(_terminal(call.func) or "") or ENGINE_BUILDERS.get(_terminal(call.func) or "")
    if builder is not None and builder.kind is FactoryKind.SESSION and not builder.is_async:
        for keyword in call.keywords:
            if keyword.arg != "class_":
                continue
            name = _terminal(keyword.value) or ""
            binding = (imports or {}).get(name) if isinstance(keyword.value, ast.Name) else None
            if name == "AsyncSession" or (binding is not None and binding.original == "AsyncSession"):
                return Factory(FactoryKind.SESSION, True, f"{builder.origin}(class_=AsyncSession)")
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


def _function_facts(
    function: ast.AST, imports: Optional[Mapping[str, ImportBinding]] = None
) -> Tuple[Tuple[Tuple[str, bool], ...], Dict[str, Factory], Set[str]]:
    """Of a top-level function, from one walk of its own scope: the callees whose fresh
    result it returns (`return F(...)`, `x = F(...); return x`; not for generators, context
    managers and decorated functions such as caches and fixtures); the module globals it
    binds to a builder (`global Session; Session = sessionmaker(...)`); and the names it
    binds to a `scoped_session(...)` registry."""
    assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
    declared: Set[str] = set()
    assigns: List[ast.Assign] = []
    returns: List[ast.Return] = []
    registered: Set[str] = set()
    generator = False
    for node in _walk_own_scope(function):
        kind = type(node)
        if kind is ast.Assign:
            if type(node.value) is ast.Call:  # type: ignore[attr-defined]
                assigns.append(node)  # type: ignore[arg-type]
        elif kind is ast.Call:
            # `zope.sqlalchemy.register(session, transaction_manager=tm)`: the transaction
            # manager closes the session; what the function returns has an owner.
            # Fixture: SL001/session_registered_with_transaction_manager.py
            callee = _terminal(node.func) or ""  # type: ignore[attr-defined]
            if callee == "register" or callee.startswith("register_"):
                registered.update(a.id for a in node.args if isinstance(a, ast.Name))  # type: ignore[attr-defined]
        elif kind is ast.Return:
            if node.value is not None:  # type: ignore[attr-defined]
                returns.append(node)  # type: ignore[arg-type]
        elif kind is ast.Global:
            declared.update(node.names)  # type: ignore[attr-defined]
        elif kind is ast.Yield or kind is ast.YieldFrom:
            generator = True
    registries: Set[str] = set()
    for assign in assigns:
        if _terminal(assign.value.func) in ("scoped_session", "async_scoped_session"):  # type: ignore[attr-defined]
            for target in assign.targets:
                name = _terminal(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
                if name:
                    registries.add(name)
    bound: Dict[str, Factory] = {}
    if declared:
        for assign in assigns:
            builder = _builder_of(assign.value, imports)  # type: ignore[arg-type]
            if builder is None:
                continue
            for target in assign.targets:
                if isinstance(target, ast.Name) and target.id in declared:
                    bound[target.id] = builder
    if function.decorator_list or generator or not returns:
        return (), bound, registries
    assigned: Dict[str, str] = {}
    for assign in assigns:
        callee = _dotted(assign.value.func)  # type: ignore[attr-defined]
        if callee:
            for target in assign.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = callee
    is_async_def = isinstance(function, ast.AsyncFunctionDef)
    returned: List[Tuple[str, bool]] = []
    for node in returns:
        value = node.value
        if isinstance(value, ast.Call):
            callee = _dotted(value.func)
            if callee:
                returned.append((callee, is_async_def))
        elif isinstance(value, ast.Name) and value.id in assigned and value.id not in registered:
            returned.append((assigned[value.id], is_async_def))
    return tuple(returned), bound, registries


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
# Nodes that hold no statement, call or yield below them: not worth descending into.
_LEAVES = (ast.Name, ast.Constant, ast.Pass, ast.Break, ast.Continue, ast.alias, ast.arg, ast.Import, ast.ImportFrom)


def _walk_own_scope(function: ast.AST) -> Iterable[ast.AST]:
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


def _resolve_in_module(index: ProjectIndex, facts: ModuleFacts, dotted: str) -> Optional[Factory]:
    """Resolve a callee written in `facts`' module, for function summaries."""
    head, _, rest = dotted.partition(".")
    if not rest:
        found = index.lookup(facts.path, head)
        if found is not None:
            return found
        binding = facts.imports.get(head)
        if binding is not None and binding.original:
            full = f"{binding.module}.{binding.original}" if binding.module else binding.original
            if full in SESSION_CLASSES:
                return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], full)
            if index.is_project_module(facts.path, binding.module, binding.level):
                return None
        if head in CONVENTIONAL_FACTORY_NAMES | index.extra_factory_names:
            return Factory(FactoryKind.SESSION, is_async_name(head), f"conventional name `{head}`")
        return None
    binding = facts.imports.get(head)
    if binding is not None:
        module = f"{binding.module}.{binding.original}" if binding.original else binding.module
        full = f"{module}.{rest}"
        if full in SESSION_CLASSES:
            return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], full)
        target = index.path_of_module(facts.path, module, binding.level)
        if target is not None and "." not in rest:
            return index.lookup(target, rest)
    return None


class IndexBuilder:
    """The project pass, one file at a time: `add` each file's bytes as they are read (the
    text facts, and the module scan of files whose text can bind a factory), then `finish`,
    which re-reads through `read` only the files that mention names learnt on the way. No
    file's bytes are kept."""

    def __init__(
        self,
        extra_factory_names: Iterable[str] = (),
        cache: Optional[object] = None,
        extra_engine_names: Iterable[str] = (),
        request_decorators: Iterable[str] = (),
    ) -> None:
        self.index = ProjectIndex(
            extra_factory_names=frozenset(n.rsplit(".", 1)[-1] for n in extra_factory_names),
            extra_engine_names=frozenset(n.rsplit(".", 1)[-1] for n in extra_engine_names),
            request_decorators=frozenset(request_decorators),
        )
        self.cache = cache
        self.stems: Dict[str, List[str]] = {}
        self.depends: Set[str] = set()
        self.imported: Set[str] = set()
        self.scanned: Set[str] = set()
        # names each unscanned file imports with `from x import name` (interned): `finish`
        # rescans a file for a newly learnt factory name only if it imports the name this
        # way or calls it as an attribute (`db.SessionLocal()`)
        self.imports_of: Dict[str, Tuple[str, ...]] = {}
        self.parsed: Set[Tuple[str, bytes]] = set()
        self.digests: Dict[str, str] = {}  # path -> the hash of the bytes added, when cached
        # A call of a binding or a conventional factory name: one trie regex, one scan of the
        # text (with from_import_names, the text facts of airflow's 621 files took 0.17 s
        # with two flat alternations and the line-anchored `from` regex, 0.09 s now).
        conventional = CONVENTIONAL_FACTORY_NAMES | self.index.extra_factory_names
        names = set(_DEFINITION_NAMES) | conventional
        self.binding_call = re.compile(rb"\b" + alternation(names) + rb"\s*\(")
        # Every built-in name contains `ession` or `ngine`: `calls_a_binding` then searches for
        # those literals (a pattern starting with `\b` is tried at every position; airflow's
        # 159 files that say session or engine: 27 ms -> 6 ms).
        self.call_names: Optional[FrozenSet[bytes]] = None
        if all("ession" in name or "ngine" in name for name in names):
            self.call_names = frozenset(name.encode() for name in names)
        # Every built-in trigger word contains one of these; configured names may not.
        self.always_search = bool(self.index.extra_factory_names)

    def add(self, path: str, data: bytes, digest: Optional[str] = None) -> None:
        """One file's text facts (from the cache by `digest`, the hash of `data`, when given
        and known) and, if its text can bind a factory, its module scan."""
        self.merge(path, self.file_facts(path, data, digest), digest)

    def file_facts(self, path: str, data: bytes, digest: Optional[str] = None) -> "FileFacts":
        """What `add` learns from one file, without changing the builder (worker processes
        compute it, `merge` takes it in): (text facts, whether they are new to the cache,
        the module scan if the text can bind a factory)."""
        cache = self.cache if digest is not None and not self.always_search else None
        text = cache.get_text(digest) if cache is not None else None  # type: ignore[attr-defined]
        new_text = text is None
        if text is None:
            text = self._text_facts(data)
        scan = scan_record(path, data, self.cache, digest) if text[2] else None
        return text, new_text, scan

    def cached_facts(self, digest: str) -> Optional["FileFacts"]:
        """What `file_facts` would say of the bytes hashed to `digest`, when the cache knows
        it all (the text facts, and the module scan if the text can bind a factory)."""
        cache = self.cache
        if cache is None or self.always_search:
            return None
        text = cache.get_text(digest)  # type: ignore[attr-defined]
        if text is None:
            return None
        if not text[2]:
            return text, False, None
        stored = cache.get_scan(digest)  # type: ignore[attr-defined]
        return (text, False, (stored, False, None)) if stored is not None else None

    def merge(self, path: str, facts: "FileFacts", digest: Optional[str] = None) -> None:
        text, new_text, scan = facts
        if new_text and digest is not None and not self.always_search and self.cache is not None:
            self.cache.put_text(digest, text)  # type: ignore[attr-defined]
        imported, depends, can_bind = text
        if digest is not None:
            self.digests[path] = digest
        self.imported.update(imported)
        self.depends.update(depends)
        self.stems.setdefault(module_stem(path), []).append(path)
        # Every linted file is registered (relative imports resolve against it); only files
        # whose text can bind a factory are parsed.
        if can_bind and scan is not None:
            self.scanned.add(path)
            self.index.modules[path] = self._facts_of(path, scan, digest)
        elif imported:
            self.imports_of[path] = tuple(sys.intern(name) for name in imported)

    def _facts_of(self, path: str, scan: "ScanRecord", digest: Optional[str]) -> ModuleFacts:
        stored, new, accepted = scan
        if new and digest is not None and self.cache is not None:
            self.cache.put_scan(digest, stored)  # type: ignore[attr-defined]
        if accepted is not None:
            self.parsed.add((path, accepted))
        factories, imports, returned_calls, aliases, registries = stored
        return ModuleFacts(path, dict(factories), dict(imports), dict(returned_calls), dict(aliases), set(registries))

    def calls_a_binding(self, data: bytes) -> bool:
        """Whether `data` calls a name of `binding_call` (the name a whole word, then `(`)."""
        names = self.call_names
        if names is None:
            return self.binding_call.search(data) is not None
        for pattern in _CALL_TAILS:
            for match in pattern.finditer(data):
                start = match.start()
                head = start
                while head and data[head - 1] in _WORD_BYTES:
                    head -= 1
                if data[head:start] + match.group(1) in names:
                    return True
        return False

    def _text_facts(self, data: bytes) -> Tuple[Tuple[str, ...], Tuple[str, ...], bool]:
        """(names imported with `from x import`, `Depends()` targets, whether the text can
        bind a factory): what the project pass learns from a file without parsing it."""
        imported: Set[str] = set()
        depends: Set[str] = set()
        if b"import" in data:
            for names in from_import_names(data):
                imported.update(n.decode("ascii", "replace") for n in _WORD_RE.findall(names))
        if b"Depends(" in data or b"Security(" in data:
            for match in _DEPENDS_RE.finditer(data):
                depends.add(match.group(1).decode("ascii", "replace").rsplit(".", 1)[-1])
        can_bind = bool(
            (self.always_search or b"ession" in data or b"ngine" in data)
            and (self.calls_a_binding(data) or _ALIAS_RE.search(data) or _SESSION_BASE_RE.search(data) or _SESSION_AS_RE.search(data))
        )
        return tuple(sorted(imported)), tuple(sorted(depends)), can_bind

    def _remember(self, candidates: Sequence[Tuple[str, bool]], fresh: Sequence[str], reasons: Sequence[Tuple[str, "Reason"]]) -> None:
        """Keep in the cache what worker processes answered (their copies of the cache are
        theirs), as `rescan_reasons` does here: the first warm run after a cold run on the
        pool asked every question again, reading every file twice (airflow: 1,188 reads)."""
        cache = self.cache
        if cache is None or not getattr(cache, "enabled", False):
            return
        names = ",".join(fresh)
        given = dict(reasons)
        for path, _ in candidates:
            digest = self.digests.get(path)
            if digest is not None:
                cache.put_check(names, digest, given.get(path, _NO_REASON))  # type: ignore[attr-defined]

    def finish(self, read: Callable[[str], Optional[bytes]], workers: Optional["Rescans"] = None) -> ProjectIndex:
        """The index, once every file is added: function summaries, then rescans of files
        that import or call names learnt on the way, read through `read` (or by `workers`,
        worker processes that do what `rescan_reasons` and `scans` do)."""
        index = self.index
        index.module_stems = self.stems
        index.paths = frozenset(path for paths in self.stems.values() for path in paths)
        index.depends_targets = frozenset(self.depends)
        index.imported_names = frozenset(self.imported)
        known_names: Set[str] = set()
        for _round in range(3):
            new_names = _summarise_functions(index)
            new_names |= {n for f in index.modules.values() for n in f.factories}
            fresh = new_names - known_names
            if not fresh:
                break
            known_names |= fresh
            # A file the scan would learn something from about these names imports one of
            # them from a module of the project (a re-export, or `return SessionLocal()`) or
            # calls one as an attribute of a module (`return db.SessionLocal()`): what
            # _scan_module and the summaries read. A name imported from elsewhere is not the
            # project's factory (airflow.settings binds `Session`; the 57 files that import
            # `Session` from sqlalchemy.orm for their annotations teach nothing about it),
            # and a mere mention (`session.commit()`) teaches nothing.
            candidates = [
                (path, not fresh.isdisjoint(self.imports_of.get(path, ()))) for path in sorted(index.paths - self.scanned)
            ]
            if workers is not None:
                reasons = workers.reasons(candidates, sorted(fresh))
                self._remember(candidates, sorted(fresh), reasons)
            else:
                reasons = rescan_reasons(candidates, sorted(fresh), read, self.cache, self.digests)
            needed = [
                path
                for path, (attribute, modules) in reasons
                if attribute or any(index.path_of_module(path, module, level) is not None for module, level in modules)
            ]
            found = (workers.scans(needed) if workers is not None else scans(needed, read, self.cache, self.digests)) if needed else []
            rescanned = False
            for path, scan, digest in found:
                self.scanned.add(path)
                self.imports_of.pop(path, None)
                index.modules[path] = self._facts_of(path, scan, digest)
                rescanned = True
            if not rescanned:
                # Function summaries may still resolve through names learnt this round.
                _summarise_functions(index)
                break
        index.session_aliases = {n: a for f in index.modules.values() for n, a in f.session_aliases.items()}
        index.parsed = frozenset(self.parsed)
        return index


class Rescans(Protocol):
    """What `IndexBuilder.finish` asks worker processes to do (engine._WarmPool)."""

    def reasons(self, candidates: Sequence[Tuple[str, bool]], fresh: Sequence[str]) -> List[Tuple[str, "Reason"]]: ...

    def scans(self, paths: Sequence[str]) -> List[Tuple[str, "ScanRecord", Optional[str]]]: ...


def build_index(
    sources: Mapping[str, bytes],
    extra_factory_names: Iterable[str] = (),
    cache: Optional[object] = None,
    extra_engine_names: Iterable[str] = (),
    request_decorators: Iterable[str] = (),
) -> ProjectIndex:
    """Build the project index from the files about to be linted, all in memory."""
    builder = IndexBuilder(extra_factory_names, cache, extra_engine_names, request_decorators)
    for path, data in sources.items():
        builder.add(path, data)
    return builder.finish(sources.get)


# The module scan of one file as the cache stores it (factories, imports, returned calls,
# session aliases, registries: the scan before function summaries), whether it is new to
# the cache, and the hash of the bytes if CPython's parser accepted them (else None).
ScanRecord = Tuple[Tuple[dict, dict, dict, dict, set], bool, Optional[bytes]]
# What IndexBuilder.file_facts learns from one file.
FileFacts = Tuple[Tuple[Tuple[str, ...], Tuple[str, ...], bool], bool, Optional[ScanRecord]]


def content_key(data: bytes) -> bytes:
    """A short, stable hash of a file's bytes (the same in every process, unlike `hash`)."""
    from sessionlint.fixes.files import blake2b

    return blake2b(data, digest_size=8).digest()


def scan_record(path: str, data: bytes, cache: Optional[object], digest: Optional[str] = None) -> ScanRecord:
    """The module-level facts of one file, from the cache when its bytes were seen before."""
    if digest is not None and cache is not None:
        stored = cache.get_scan(digest)  # type: ignore[attr-defined]
        if stored is not None:
            return stored, False, None
    accepted = None
    try:
        with warnings.catch_warnings():  # SyntaxWarnings in the linted code are not ours to print
            warnings.simplefilter("ignore")
            tree = ast.parse(data, filename=path)
        accepted = content_key(data)
        facts = _scan_module(path, tree)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        facts = ModuleFacts(path=path)
    # `_facts_of` copies these into the ModuleFacts that function summaries extend later.
    stored = (facts.factories, facts.imports, facts.returned_calls, facts.session_aliases, facts.registries)
    return stored, True, accepted


# Why a file not scanned yet may teach the scan something about names learnt on the way:
# whether it calls one as a module attribute (`db.SessionLocal()`), and the modules it
# imports one of them from, as (module, number of leading dots).
Reason = Tuple[bool, Tuple[Tuple[str, int], ...]]
_NO_REASON: Reason = (False, ())  # most files' answer, one object for all of them


def rescan_reasons(
    candidates: Iterable[Tuple[str, bool]],
    fresh: Sequence[str],
    read: Callable[[str], Optional[bytes]],
    cache: Optional[object],
    digests: Optional[Mapping[str, str]] = None,
) -> List[Tuple[str, Reason]]:
    """The reasons of the files among `candidates` (path, whether its text facts say it
    imports a name of `fresh`) that import a name of `fresh` or call one as a module
    attribute; `IndexBuilder.finish` decides which to scan. A file's reason depends only on
    its bytes and `fresh`: the cache keeps it by the hash of the bytes added (`digests`), so
    a warm run reads none of these files again."""
    # One regex, which the engine searches for by its leading `.` (airflow's 621 files for
    # its four names: 3 ms; a substring test per name first took 12 ms).
    attribute_call = re.compile(rb"\.(?:" + b"|".join(re.escape(n.encode()) for n in sorted(fresh)) + rb")\s*\(")
    fresh_names = frozenset(fresh)
    found = []
    use_cache = cache is not None and getattr(cache, "enabled", False)
    names = ",".join(fresh)
    for path, imports_fresh in candidates:
        added = digests.get(path) if use_cache and digests is not None else None
        reason = cache.get_check(names, added) if added is not None else None  # type: ignore[union-attr]
        if reason is None:
            data = read(path)
            if data is None:
                continue
            attribute = attribute_call.search(data) is not None
            modules = _modules_importing(data, fresh_names) if imports_fresh else ()
            reason = (attribute, modules) if attribute or modules else _NO_REASON
            digest = cache.digest(data) if use_cache else None  # type: ignore[union-attr]
            if digest is not None:
                cache.put_check(names, digest, reason)  # type: ignore[union-attr]
        if reason[0] or reason[1]:
            found.append((path, reason))
    return found


def _modules_importing(data: bytes, names: FrozenSet[str]) -> Tuple[Tuple[str, int], ...]:
    """The modules of the `from module import ...` lines of `data` that import one of
    `names` (under any alias: every word of the names part counts, as in the text facts)."""
    modules = []
    for module, imported in from_imports(data):
        if not names.isdisjoint(n.decode("ascii", "replace") for n in _WORD_RE.findall(imported)):
            dotted = module.decode("ascii", "replace")
            stripped = dotted.lstrip(".")
            modules.append((stripped, len(dotted) - len(stripped)))
    return tuple(sorted(set(modules)))


def scans(
    paths: Iterable[str],
    read: Callable[[str], Optional[bytes]],
    cache: Optional[object],
    digests: Optional[Mapping[str, str]] = None,
) -> List[Tuple[str, ScanRecord, Optional[str]]]:
    """The module scans of `paths`, from the cache by the hash of the bytes added
    (`digests`) when it has them, else of the bytes `read` returns."""
    found = []
    use_cache = cache is not None and getattr(cache, "enabled", False)
    for path in paths:
        added = digests.get(path) if use_cache and digests is not None else None
        stored = cache.get_scan(added) if added is not None else None  # type: ignore[union-attr]
        if stored is not None:
            found.append((path, (stored, False, None), added))
            continue
        data = read(path)
        if data is None:
            continue
        digest = cache.digest(data) if use_cache else None  # type: ignore[union-attr]
        found.append((path, scan_record(path, data, cache, digest), digest))
    return found


def _summarise_functions(index: ProjectIndex) -> Set[str]:
    """Mark functions that return a fresh session as factories; one level of summary,
    repeated until nothing changes (so a wrapper of a wrapper resolves too)."""
    names: Set[str] = set()
    for _ in range(3):
        changed = False
        for facts in index.modules.values():
            for function, calls in facts.returned_calls.items():
                if function in facts.factories:
                    continue
                for callee, is_async_def in calls:
                    factory = _resolve_in_module(index, facts, callee)
                    if factory is not None and factory.kind is FactoryKind.SESSION:
                        facts.factories[function] = Factory(
                            FactoryKind.SESSION,
                            factory.is_async,
                            f"function `{function}` returning a new session",
                        )
                        names.add(function)
                        changed = True
                        break
        if not changed:
            break
    return names


