"""The project model: what the project pass learns about the project's modules, and the
questions it answers (which file `from x import y` names, what a name binds).

Plain data: it crosses process boundaries to the workers that lint.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Set, Tuple

from sessionlint.knowledge import ENGINE_BUILDERS, MAKER_BUILDERS, FactoryKind, Origin
from sessionlint.project.versions import SqlalchemyTarget, VersionRange


@dataclass(frozen=True)
class Factory:
    """What a name creates when called (or, for ENGINE, what it holds), and how that was
    recognised; `detail` (a name, a dotted path) is for messages."""

    kind: FactoryKind
    is_async: bool
    origin: Origin
    detail: str = ""


def builder_factory(name: str) -> Optional[Factory]:
    """What `name(...)` builds when `name` is a SQLAlchemy builder: a sessionmaker or a
    registry (a factory of sessions), or an engine."""
    maker = MAKER_BUILDERS.get(name)
    if maker is not None:
        return Factory(maker[0], maker[1], Origin.MAKER, name)
    is_async = ENGINE_BUILDERS.get(name)
    if is_async is not None:
        return Factory(FactoryKind.ENGINE, is_async, Origin.ENGINE_BUILDER, name)
    return None


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
    # generator function name -> names of callees whose fresh result it yields (resolved like
    # `returned_calls`): `next(get_db())` takes a new session out of it
    yielded_calls: Dict[str, Tuple[Tuple[str, bool], ...]] = field(default_factory=dict)
    # `from module import *` (module, level): its public names are this module's too
    star_imports: Tuple[Tuple[str, int], ...] = ()
    # `@contextmanager` function name -> callees whose fresh result it yields and closes
    # only when the block raises (resolved like `yielded_calls`, into `factories`)
    opened_calls: Dict[str, Tuple[Tuple[str, bool], ...]] = field(default_factory=dict)
    # generator functions that yield a new session (filled by the summaries)
    generators: Dict[str, Factory] = field(default_factory=dict)
    # module-level names it calls `.remove()`/`.close()` on (scan._released)
    released: Tuple[str, ...] = ()
    # functions (`f`) and constructors (`Cls.__init__`) that build an engine, sessionmaker or
    # registry: project.calls finds which run per request
    builds: Tuple[str, ...] = ()
    # top-level class -> whether its objects may close a session they are given (scan._may_close)
    holders: Dict[str, bool] = field(default_factory=dict)


# A module function that commits (or flushes) a session parameter and leaves its failure to
# the caller: (the parameters it commits as (position or -1, name), "commit" or "flush").
Committer = Tuple[Tuple[Tuple[int, str], ...], str]


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
    # the versions of the frameworks whose behaviour decides a finding, from the project's
    # dependency files (sessionlint.project.versions)
    versions: Dict[str, VersionRange] = field(default_factory=dict)
    # the oldest SQLAlchemy version the fixes and advice must work on (target-sqlalchemy, or
    # what the project declares, or 2.0: sessionlint.project.versions.sqlalchemy_target)
    sqlalchemy: SqlalchemyTarget = field(default_factory=SqlalchemyTarget)
    # (path, name) of the module-level names some file calls `.remove()`/`.close()` on, and
    # the last parts of those it could not resolve (`self.registry.remove()`)
    released: FrozenSet[Tuple[str, str]] = frozenset()
    released_names: FrozenSet[str] = frozenset()
    # whether the project serves requests or runs tasks (imports a web, task or bot
    # framework): what decides whether a registry never removed leaks
    serves_requests: bool = False
    # (path, function) -> why it runs per request, found across modules (project.calls):
    # `Cls.__init__` for a class built by a request handler
    per_request: Dict[Tuple[str, str], str] = field(default_factory=dict)
    # path -> its module functions that commit a session parameter (callables.committing_functions),
    # for the files whose text commits or flushes anything
    committers: Dict[str, Dict[str, Committer]] = field(default_factory=dict)
    # path -> its closing query runners (function -> position of the callable parameter) and
    # its callables that return a lazy query (callables.query_runners)
    runners: Dict[str, Dict[str, int]] = field(default_factory=dict)
    lazy_callables: Dict[str, FrozenSet[str]] = field(default_factory=dict)
    # path -> names of its classes' properties that check out a new connection on every
    # access (callables.connection_properties)
    connection_properties: Dict[str, FrozenSet[str]] = field(default_factory=dict)
    # path -> its module functions that close a parameter on every path: name -> (positions,
    # parameter names) (callables.closing_functions)
    closers: Dict[str, Dict[str, Tuple[Tuple[int, ...], Tuple[str, ...]]]] = field(default_factory=dict)
    # what `path_of_module` worked out for absolute imports (module_stems is fixed once the
    # index is finished; relative imports, checked against the growing `modules`, are not kept)
    _holders: Dict[str, Tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _nearest: Dict[Tuple[str, str], Optional[str]] = field(default_factory=dict, repr=False, compare=False)

    # --- module resolution -------------------------------------------------------------
    def forget_resolutions(self) -> None:
        self._holders.clear()
        self._nearest.clear()

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
        # (remembered: a tree of many packages has hundreds of `utils` and `__init__` files,
        # and the project pass resolves the same imports over and over)
        found = self._holders.get(module)
        if found is None:
            found = self._holders[module] = tuple(
                p for p in self.module_stems.get(module.rsplit(".", 1)[-1], ()) if module in _module_keys(p)
            )
        if len(found) <= 1:
            return found[0] if found else None
        # Several packages of one tree share the key (services/a/app/db.py, services/b/app/
        # db.py): the one beside the importing file is the one its interpreter would import.
        # A tie resolves to neither.
        where = (os.path.dirname(from_path), module)
        if where not in self._nearest:
            here = os.path.abspath(from_path)
            shared = sorted((len(os.path.commonpath([here, os.path.abspath(p)])), p) for p in found)
            self._nearest[where] = shared[-1][1] if shared[-1][0] > shared[-2][0] else None
        return self._nearest[where]

    def lookup(self, path: str, name: str, depth: int = 0, table: str = "factories") -> Optional[Factory]:
        """The factory bound to `name` at module level in `path` (or, with `table=
        "generators"`, the generator that yields a new session), following re-exports and
        `from module import *`."""
        facts = self.modules.get(path)
        if facts is None or depth > 5:
            return None
        found = getattr(facts, table).get(name)
        if found is not None:
            return found
        binding = facts.imports.get(name)
        if binding is not None and binding.original:
            target = self.path_of_module(path, binding.module, binding.level)
            if target is not None:
                return self.lookup(target, binding.original, depth + 1, table)
            return None
        if not name.startswith("_"):
            for module, level in facts.star_imports:
                target = self.path_of_module(path, module, level)
                if target is not None and target != path:
                    found = self.lookup(target, name, depth + 1, table)
                    if found is not None:
                        return found
        return None

    def resolve_released(self) -> None:
        """`released`/`released_names` from every module's `released` receivers: resolved to
        (path, name) when the import can be followed, else the last part of the name (which
        then releases every registry of that name). Fixture:
        tests/fixtures/projects/registry_never_removed"""
        found: Set[Tuple[str, str]] = set()
        names: Set[str] = set()
        for path, facts in self.modules.items():
            for dotted in facts.released:
                binding: Optional[ImportBinding]
                if dotted.startswith("@"):  # imported inside a function: `@module:level:original.rest`
                    module, level, tail = dotted[1:].split(":", 2)
                    original, _, rest = tail.partition(".")
                    binding = ImportBinding(module, int(level), original)
                else:
                    head, _, rest = dotted.partition(".")
                    binding = facts.imports.get(head)
                    if binding is None:
                        if not rest:
                            found.add((path, head))
                        else:
                            names.add(dotted.rsplit(".", 1)[-1])  # `self.registry`: unresolved
                        continue
                target = None
                if binding.original and not rest:
                    target = self.path_of_module(path, binding.module, binding.level)
                    if target is not None:
                        found.add((target, binding.original))
                elif rest and "." not in rest:
                    module = f"{binding.module}.{binding.original}" if binding.original else binding.module
                    target = self.path_of_module(path, module, binding.level)
                    if target is not None:
                        found.add((target, rest))
                if target is None:
                    names.add(dotted.rsplit(".", 1)[-1])  # from outside the linted files
        self.released = frozenset(found)
        self.released_names = frozenset(names)

    def star_names(self, path: str, depth: int = 0) -> Set[str]:
        """The factory names `from module import *` brings into the module at `path`."""
        facts = self.modules.get(path)
        if facts is None or depth > 5:
            return set()
        names: Set[str] = set()
        for module, level in facts.star_imports:
            target = self.path_of_module(path, module, level)
            if target is not None and target != path:
                inner = self.modules.get(target)
                if inner is not None:
                    names |= {n for n in list(inner.factories) + list(inner.generators) if not n.startswith("_") and "." not in n}
                names |= self.star_names(target, depth + 1)
        return names

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
    function summaries resolve the same imports over and over."""
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
