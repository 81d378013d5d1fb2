"""Per-request reachability across modules: which functions that build an engine, a
sessionmaker or a registry (`ModuleFacts.builds`) run per request because a request handler,
task or other per-call entry point of any module of the project calls them, directly or
through a few calls (`Cls(...)` reaches `Cls.__init__`).

The search runs backwards from the few building functions: one regex over the project's
files finds those that call one of their names, only those are parsed (with `ast`), and the
enclosing function of each call is either an entry point (`knowledge.definition_timing`), run
once, or the next name to search for. What a file says of the names searched (its call
sites, their timing, how the callee is bound) is kept in the cache by the file's content and
the names, so a run over an unchanged tree parses nothing. The lint reads the answers from
`ProjectIndex.per_request` (analysis.frameworks)."""

import ast
import functools
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Protocol, Set, Tuple

from sessionlint.knowledge import definition_timing, is_test_path
from sessionlint.project.model import ProjectIndex
from sessionlint.project.scan import dotted_of
from sessionlint.project.text import alternation

Key = Tuple[str, str]  # (path, qualified name: `f`, `Cls.__init__`, `Cls.method`)
# How a module binds a callee's first name: (module, level, original name) of an import, or
# ("", LOCAL, "def" | "class") for a function or class the module defines.
Binding = Tuple[str, int, str]
LOCAL = -1
# One call site: (enclosing function, its timing, why, callee as written, its binding)
Site = Tuple[str, str, str, str, Binding]
DEPTH = 3  # calls followed from a building function up to an entry point
MAX_NAMES = 200  # names searched for at one depth (a bound on the regex and the parsing)


class CallsCache(Protocol):
    """The part of the project cache this search uses (sessionlint.cache.Cache)."""

    @property
    def enabled(self) -> bool: ...

    def digest(self, data: bytes) -> str: ...

    def get_calls(self, names: str, digest: str) -> Optional[List[Site]]: ...

    def put_calls(self, names: str, digest: str, sites: List[Site]) -> None: ...


@dataclass(frozen=True)
class Search:
    """One depth of the search: the names looked for (`searched`: the cache's key, with the
    context the sites depend on) and the module stems a file calling one of them names."""

    pattern: "re.Pattern[bytes]"
    names: FrozenSet[str]
    searched: str
    stems: Dict[bytes, FrozenSet[bytes]]
    every_stem: FrozenSet[bytes]
    homes: FrozenSet[str]

    @property
    def stems_first(self) -> bool:
        # (with few stems, looking for them first is cheaper than the regex; with many, as in
        # a tree of many projects, it is not: whole-corpus run, 5 s at one depth)
        return len(self.every_stem) <= 16

    @functools.cached_property
    def key(self) -> Tuple[str, Tuple[Tuple[bytes, Tuple[bytes, ...]], ...], Tuple[str, ...]]:
        """Everything a file's answer depends on besides the file."""
        return self.searched, tuple(sorted((name, tuple(sorted(group))) for name, group in self.stems.items())), tuple(sorted(self.homes))


@dataclass
class SearchMemory:
    """What the search keeps between passes over files that change one at a time
    (project.live): the searches of the last pass, and each file's answer to each search
    with the content hash of the bytes it was given (`digests`: path -> hash of the bytes
    the pass was given)."""

    searches: List[Search] = field(default_factory=list)
    answers: Dict[Tuple[Any, str], Tuple[str, Optional[List[Site]]]] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)

    def answer(self, search: Search, path: str, data: bytes, digest: str, index: ProjectIndex, use: Optional[CallsCache]) -> Optional[List[Site]]:
        """The file's answer to `search` (kept for `digest`)."""
        key = (search.key, path)
        known = self.answers.get(key)
        if known is not None and known[0] == digest:
            return known[1]
        sites = file_sites(path, data, search, index, use)
        self.answers[key] = (digest, sites)
        return sites


def find_per_request(
    index: ProjectIndex,
    read: Callable[[str], Optional[bytes]],
    cache: Optional[CallsCache] = None,
    memory: Optional[SearchMemory] = None,
) -> Dict[Key, str]:
    """(path, function) of the building functions that run per request, with why. With
    `memory`, each depth's search is recorded (project.live asks a changed file the same
    questions) and a file whose bytes have not changed since the last pass is not read."""
    found: Dict[Key, str] = {}
    # each searched function -> the building functions it leads to, how (the names of the
    # functions between), and those functions
    # (the first way found to each building function: a dict, so that call sites met again
    # add nothing)
    leads: Dict[Key, Dict[Key, Tuple[str, Tuple[Key, ...]]]] = {}
    frontier: Set[Key] = set()
    for path, facts in index.modules.items():
        for qualified in facts.builds:
            key = (path, qualified)
            leads[key] = {key: ("", ())}
            frontier.add(key)
    seen: Set[Key] = set(frontier)
    use = cache if cache is not None and cache.enabled else None
    # what a file's sites depend on besides its content and the names: the project's
    # `Depends(...)` targets and the configured request decorators (the timing)
    context = ",".join(sorted(index.depends_targets)) + ";" + ",".join(sorted(index.request_decorators))
    for _depth in range(DEPTH):
        names = {n for n in (_called_name(q) for _, q in frontier) if n is not None}
        if not names or len(names) > MAX_NAMES:
            break
        # A call can name a searched function only in its own module or in one that names
        # that module (an import of it, or of a name from it): the module's stem is in the
        # text. One trie regex finds the names a file calls; only their stems are looked for.
        stems: Dict[bytes, Set[bytes]] = {}
        homes: Set[str] = set()
        for home, qualified in frontier:
            name = _called_name(qualified)
            if name is not None:
                stems.setdefault(name.encode(), set()).add(_stem(home).encode())
                homes.add(home)
        search = Search(
            re.compile(rb"\b(" + alternation(names) + rb")\s*\("),
            frozenset(names),
            ",".join(sorted(names)) + ";" + context,
            {name: frozenset(group) for name, group in stems.items()},
            frozenset(stem for group in stems.values() for stem in group),
            frozenset(homes),
        )
        if memory is not None:
            memory.searches.append(search)
        following: Set[Key] = set()
        for path in sorted(index.paths):
            if is_test_path(path):
                continue  # tests call the code under test any number of times, on purpose
            digest = memory.digests.get(path) if memory is not None else None
            if memory is not None and digest is not None:
                known = memory.answers.get((search.key, path))
                if known is not None and known[0] == digest:
                    sites = known[1]
                else:
                    data = read(path)
                    sites = memory.answer(search, path, data, digest, index, use) if data is not None else None
            else:
                data = read(path)
                sites = file_sites(path, data, search, index, use) if data is not None else None
            for caller, timing, reason, callee, binding in sites or ():
                target = _target(index, path, callee, binding)
                if target is None or target not in frontier:
                    continue
                if timing == "once":
                    continue
                chains = leads.get(target, {})
                if timing == "per request":
                    for built, (how, between) in chains.items():
                        called = built[1][: -len(".__init__")] + "(...)` is created" if built[1].endswith(".__init__") and not how else None
                        via = f" through `{how}`" if how else ""
                        subject = f"`{called} in" if called else "it is called from"
                        found.setdefault(built, f"{subject} `{caller}` ({_short(path)}){via}, and {reason[0].lower() + reason[1:]}")
                        # the functions between run per request too: `engine = make_engine()`
                        # in one of them is a pool per request
                        for step in between:
                            found.setdefault(step, f"it is called from `{caller}` ({_short(path)}), and {reason[0].lower() + reason[1:]}")
                    continue
                key = (path, caller)
                if key not in seen:
                    seen.add(key)
                    following.add(key)
                name = caller.rsplit(".", 1)[-1]
                own = leads.setdefault(key, {})
                for built, (how, between) in chains.items():
                    if built not in own and key not in between:
                        own[built] = (name + (f" -> {how}" if how else ""), (key,) + between)
        frontier = following
        if not frontier:
            break
    return found


def file_sites(path: str, data: bytes, search: Search, index: ProjectIndex, use: Optional[CallsCache] = None) -> Optional[List[Site]]:
    """The call sites in one file (not a test) of the names `search` looks for, or None
    when its text cannot call one of them."""
    if search.stems_first and path not in search.homes and not any(stem in data for stem in search.every_stem):
        return None
    hits = set(search.pattern.findall(data))  # the names the file calls (one trie regex)
    if not hits or (path not in search.homes and not any(stem in data for hit in hits for stem in search.stems.get(hit, ()))):
        return None
    digest = use.digest(data) if use is not None else ""
    sites = use.get_calls(search.searched, digest) if use is not None else None
    if sites is None:
        # (parsed for this depth only: keeping the trees of a large tree's matches
        # costs gigabytes; a file met again at the next depth is parsed again)
        file = _File.of(path, data)
        sites = file.sites(_match_lines(search.pattern, data), set(search.names), index) if file is not None else []
        if use is not None:
            use.put_calls(search.searched, digest, sites)
    return sites


def _called_name(qualified: str) -> Optional[str]:
    """What a call of the function is written as: `f(`, `Cls(` for a constructor, `method(`
    for a method called on a new object of its class."""
    if qualified.endswith(".__init__"):
        return qualified[: -len(".__init__")]
    if "." in qualified:
        # `Cls(...).method(...)` (_Function.calls); `self.method()` the lint follows in-module
        return qualified.rsplit(".", 1)[1]
    return qualified


def _stem(path: str) -> str:
    """How an import names the module at `path`: `db` for app/db.py and app/db/__init__.py."""
    base = os.path.basename(path)
    if base in ("__init__.py", "__init__.pyi"):
        return os.path.basename(os.path.dirname(path))
    return base.rsplit(".", 1)[0]


def _short(path: str) -> str:
    return os.path.basename(path)


def _parse(path: str, data: bytes) -> Optional[ast.Module]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(data, filename=path)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _decorators(function: ast.AST) -> Tuple[Set[str], Set[str]]:
    names: Set[str] = set()
    with_arguments: Set[str] = set()
    for decorator in getattr(function, "decorator_list", ()):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        dotted = dotted_of(target)
        if dotted:
            names.add(dotted)
            if isinstance(decorator, ast.Call):
                with_arguments.add(dotted)
    return names, with_arguments


def _match_lines(pattern: "re.Pattern[bytes]", data: bytes) -> List[int]:
    """The line numbers (1-based) of the matches of `pattern` in `data`."""
    found: List[int] = []
    line, position = 1, 0
    for match in pattern.finditer(data):
        line += data.count(b"\n", position, match.start())
        position = match.start()
        found.append(line)
    return found


class _Function:
    """What the search needs of one function or method, from one walk of it."""

    def __init__(self, node: ast.AST, class_name: Optional[str], bases: Tuple[str, ...]) -> None:
        self.node = node
        self.class_name = class_name
        self.bases = bases
        self.name = getattr(node, "name", "")
        self.qualified = f"{class_name}.{self.name}" if class_name else self.name
        self.decorators, self.decorator_calls = _decorators(node)
        self.calls: List[Tuple[str, ast.Call]] = []
        disposed: Set[str] = set()
        bound: List[Tuple[str, ast.Call]] = []
        declared: Set[str] = set()
        tests: List[ast.If] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                callee = func.id if isinstance(func, ast.Name) else None
                if callee is None and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                    callee = f"{func.value.id}.{func.attr}"  # `module.f(...)`, `name.dispose()`
                elif callee is None and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name):
                    callee = f"{func.value.func.id}().{func.attr}"  # `Manager(...).make(...)`: a method of a new object
                if callee is not None:
                    self.calls.append((callee, sub))
                    if callee.endswith(".dispose"):
                        disposed.add(callee.split(".")[0])
            elif isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                bound.extend((t.id, sub.value) for t in sub.targets if isinstance(t, ast.Name))
            elif isinstance(sub, ast.Global):
                declared.update(sub.names)
            elif isinstance(sub, ast.If):
                tests.append(sub)
        # calls whose result is bound to a name the function disposes of: the pool ends here
        # (Fixture: tests/fixtures/projects/per_request_across_modules)
        self.disposed = {id(call) for name, call in bound if name in disposed}
        self.guarded = _guarded(tests, declared)

    def timing(self, index: ProjectIndex, endpoints: FrozenSet[str]) -> Tuple[str, str]:
        timing, reason = definition_timing(
            self.name, self.decorators, self.decorator_calls, self.class_name, self.bases,
            index.depends_targets, endpoints, frozenset(), index.request_decorators,
        )
        if timing == "unknown" and self.guarded:
            return "once", "it builds once and keeps the result"
        return timing, reason


class _File:
    """One parsed module of the search: its functions by line, imports and endpoints, each
    worked out once, and only for the functions that hold a match."""

    def __init__(self, tree: ast.Module, data: bytes) -> None:
        self.tree = tree
        self.data = data
        self.spans: List[Tuple[int, int, ast.AST, Optional[str], Tuple[str, ...]]] = []
        own_bases = {s.name: tuple(filter(None, (dotted_of(b) for b in s.bases))) for s in tree.body if isinstance(s, ast.ClassDef)}
        for statement in tree.body:
            if isinstance(statement, ast.ClassDef):
                bases = _inherited(statement.name, own_bases)
                for item in statement.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.spans.append((item.lineno, item.end_lineno or item.lineno, item, statement.name, bases))
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.spans.append((statement.lineno, statement.end_lineno or statement.lineno, statement, None, ()))
        self.functions: Dict[int, _Function] = {}
        self._imports: Optional[Dict[str, Tuple[str, int, str]]] = None
        self._endpoints: Optional[FrozenSet[str]] = None

    @staticmethod
    def of(path: str, data: bytes) -> Optional["_File"]:
        tree = _parse(path, data)
        return _File(tree, data) if tree is not None else None

    def sites(self, lines: List[int], names: Set[str], index: ProjectIndex) -> List[Site]:
        """The call sites of `names` on `lines` whose callee the module binds."""
        found = []
        for caller, timing, reason, callee in self.call_sites(lines, names, index):
            binding = self.binding(callee)
            if binding is not None:
                found.append((caller, timing, reason, callee, binding))
        return found

    def binding(self, callee: str) -> Optional[Binding]:
        head, _, rest = callee.partition(".")
        if head.endswith("()"):
            head = head[:-2]
            if _defines(self.tree, head) and not _is_function(self.tree, head):
                return ("", LOCAL, "class")
            return self.imports.get(head)
        if not rest and _defines(self.tree, head):
            return ("", LOCAL, "def" if _is_function(self.tree, head) else "class")
        return self.imports.get(head)

    def call_sites(self, lines: List[int], names: Set[str], index: ProjectIndex) -> Iterable[Tuple[str, str, str, str]]:
        """(enclosing function, its timing, why, callee) of the calls of `names` on `lines`
        (calls at module level run once, at import)."""
        for start, end, node, class_name, bases in self.spans:
            if not any(start <= line <= end for line in lines):
                continue
            function = self.functions.get(id(node))
            if function is None:
                function = self.functions[id(node)] = _Function(node, class_name, bases)
            timing, reason = function.timing(index, self.endpoints)
            for callee, call in function.calls:
                if callee.rsplit(".", 1)[-1] in names and id(call) not in function.disposed:
                    yield function.qualified, timing, reason, callee

    @property
    def endpoints(self) -> FrozenSet[str]:
        if self._endpoints is None:
            words = (b"add_url_rule", b"add_api_route", b"add_route", b"Route(", b"add_request_method", b"add_view")
            self._endpoints = _registered_endpoints(self.tree) if any(w in self.data for w in words) else frozenset()
        return self._endpoints

    @property
    def imports(self) -> Dict[str, Tuple[str, int, str]]:
        if self._imports is None:
            self._imports = _imports(self.tree)
        return self._imports


def _inherited(name: str, own_bases: Mapping[str, Tuple[str, ...]]) -> Tuple[str, ...]:
    """The bases of a class and, through the classes of the same module it derives from,
    theirs: `AgentsHandler(BaseHandler)` with `BaseHandler(RequestHandler)` is a view
    (real-bug corpus: keylime's verifier)."""
    found: List[str] = []
    pending = list(own_bases.get(name, ()))
    while pending and len(found) < 32:
        base = pending.pop(0)
        if base in found:
            continue
        found.append(base)
        if base != name:
            pending.extend(own_bases.get(base, ()))
    return tuple(found)


def _guarded(tests: List[ast.If], declared: Set[str]) -> bool:
    """A getter that builds once and keeps what it built: `global X` with a test of X
    (`if X is None:`), `if key not in CACHE: CACHE[key] = ...`, or `if self._x is None:`
    (corpus review: mlflow's `_get_job_store`). As analysis.frameworks decides it in-module."""
    for node in tests:
        test = node.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            subject = dotted_of(test.operand)
            if subject and (subject in declared or subject.startswith("self.")):
                return True
        elif isinstance(test, ast.Compare) and len(test.ops) == 1:
            subject = dotted_of(test.left)
            other = test.comparators[0]
            if isinstance(test.ops[0], (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) and isinstance(other, ast.Constant) and other.value is None:
                if subject and (subject in declared or subject.startswith("self.")):
                    return True
            if isinstance(test.ops[0], ast.NotIn):
                container = dotted_of(other)
                if container and any(
                    isinstance(sub, ast.Assign) and any(isinstance(t, ast.Subscript) and dotted_of(t.value) == container for t in sub.targets)
                    for statement in node.body
                    for sub in ast.walk(statement)
                ):
                    return True
    return False


def _registered_endpoints(tree: ast.Module) -> frozenset:
    """Functions registered as endpoints by call: `app.add_url_rule(rule, view_func=f)`,
    `config.add_request_method(f, ...)` (Pyramid: runs per request), `Route("/", f)`."""
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id if isinstance(node.func, ast.Name) else ""
            if name in ("add_url_rule", "add_api_route", "add_route", "Route", "WebSocketRoute", "add_request_method", "add_view"):
                for arg in list(node.args) + [k.value for k in node.keywords if k.arg in ("view_func", "endpoint", "view", "callable")]:
                    dotted = dotted_of(arg)
                    if dotted:
                        found.add(dotted.rsplit(".", 1)[-1])
    return frozenset(found)


def _target(index: ProjectIndex, path: str, callee: str, binding: Binding) -> Optional[Key]:
    """The building function a call names: defined in this module, or imported from a
    module of the project (`from app.db import make_engine`, `db.make_engine(...)`)."""
    head, _, rest = callee.partition(".")
    module, level, original = binding
    if head.endswith("()"):  # `Cls(...).method(...)`: the method of the class
        head, method = head[:-2], rest
        if level == LOCAL:
            return (path, f"{head}.{method}") if original == "class" else None
        target = index.path_of_module(path, module, level)
        return (target, f"{original}.{method}") if target is not None and original else None
    if level == LOCAL:
        return (path, head) if original == "def" else (path, f"{head}.__init__")
    if rest:
        module = f"{module}.{original}" if original else module
        target = index.path_of_module(path, module, level)
        name = rest
    else:
        target = index.path_of_module(path, module, level)
        name = original
    if target is None:
        return None
    builds = index.modules[target].builds if target in index.modules else ()
    if name in builds:
        return (target, name)
    if f"{name}.__init__" in builds:
        return (target, f"{name}.__init__")
    return (target, name)  # a function searched for on the way (not itself a builder)


def _defines(tree: ast.Module, name: str) -> bool:
    return any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and s.name == name for s in tree.body)


def _is_function(tree: ast.Module, name: str) -> bool:
    return any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name for s in tree.body)


def _imports(tree: ast.Module) -> Dict[str, Tuple[str, int, str]]:
    """local name -> (module, level, original) of the module's imports, including those
    inside functions (an import in a function avoids a cycle)."""
    found: Dict[str, Tuple[str, int, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = (node.module or "", node.level or 0, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, 0, "")
                else:
                    head = alias.name.split(".")[0]
                    found[head] = (head, 0, "")
    return found
