"""Per-request reachability across modules: which functions that build an engine, a
sessionmaker or a registry (`ModuleFacts.builds`) run per request because a request handler,
task or other per-call entry point of any module of the project calls them, directly or
through a few calls (`Cls(...)` reaches `Cls.__init__`).

The search runs backwards from the few building functions: one regex over the project's
files finds those that call one of their names, only those are parsed (with `ast`), and the
enclosing function of each call is either an entry point (`knowledge.definition_timing`), run
once, or the next name to search for. The lint reads the answers from
`ProjectIndex.per_request` (analysis.frameworks)."""

import ast
import os
import re
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from sessionlint.knowledge import definition_timing, is_test_path
from sessionlint.project.model import ProjectIndex

Key = Tuple[str, str]  # (path, qualified name: `f`, `Cls.__init__`, `Cls.method`)
DEPTH = 3  # calls followed from a building function up to an entry point
MAX_NAMES = 200  # names searched for at one depth (a bound on the regex and the parsing)


def find_per_request(index: ProjectIndex, read: Callable[[str], Optional[bytes]]) -> Dict[Key, str]:
    """(path, function) of the building functions that run per request, with why."""
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
    parsed: Dict[str, Optional[ast.Module]] = {}
    for _depth in range(DEPTH):
        names = {n for n in (_called_name(q) for _, q in frontier) if n is not None}
        if not names or len(names) > MAX_NAMES:
            break
        pattern = re.compile(rb"\b(?:" + b"|".join(re.escape(n.encode()) for n in sorted(names)) + rb")\s*\(")
        following: Set[Key] = set()
        for path in sorted(index.paths):
            if is_test_path(path):
                continue  # tests call the code under test any number of times, on purpose
            data = read(path)
            if data is None or pattern.search(data) is None:
                continue
            if path not in parsed:
                parsed[path] = _parse(path, data)
            tree = parsed[path]
            if tree is None:
                continue
            for caller, timing, reason, callee in _call_sites(tree, names, index, path):
                target = _resolve(index, path, tree, callee)
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


def _called_name(qualified: str) -> Optional[str]:
    """What a call of the function is written as: `f(`, `Cls(` for a constructor; a method
    of a class is followed only through its own class (the lint does that in-module)."""
    if qualified.endswith(".__init__"):
        return qualified[: -len(".__init__")]
    if "." in qualified:
        return None
    return qualified


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
        dotted = _dotted(target)
        if dotted:
            names.add(dotted)
            if isinstance(decorator, ast.Call):
                with_arguments.add(dotted)
    return names, with_arguments


def _dotted(node: ast.AST) -> Optional[str]:
    parts: List[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _call_sites(tree: ast.Module, names: Set[str], index: ProjectIndex, path: str) -> Iterable[Tuple[str, str, str, str]]:
    """(enclosing function, its timing, why, callee name) of the calls of `names` inside the
    module's functions and methods (calls at module level run once, at import)."""
    endpoints = _registered_endpoints(tree)

    def visit(body: List[ast.stmt], class_name: Optional[str], bases: Tuple[str, ...]) -> Iterable[Tuple[str, str, str, str]]:
        for statement in body:
            if isinstance(statement, ast.ClassDef):
                class_bases = tuple(filter(None, (_dotted(b) for b in statement.bases)))
                yield from visit(statement.body, statement.name, class_bases)
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decorators, with_arguments = _decorators(statement)
                timing, reason = definition_timing(
                    statement.name, decorators, with_arguments, class_name, bases,
                    index.depends_targets, endpoints, frozenset(), index.request_decorators,
                )
                qualified = f"{class_name}.{statement.name}" if class_name else statement.name
                if timing == "unknown" and _guarded(statement):
                    timing, reason = "once", "it builds once and keeps the result"
                disposed = _disposed_calls(statement)
                for node in ast.walk(statement):
                    if isinstance(node, ast.Call) and id(node) not in disposed:
                        callee = node.func.id if isinstance(node.func, ast.Name) else None
                        if callee is None and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                            callee = f"{node.func.value.id}.{node.func.attr}"  # `module.f(...)`
                        if callee is not None and callee.rsplit(".", 1)[-1] in names:
                            yield qualified, timing, reason, callee

    return visit(tree.body, None, ())


def _guarded(function: ast.AST) -> bool:
    """A getter that builds once and keeps what it built: `global X` with a test of X
    (`if X is None:`), `if key not in CACHE: CACHE[key] = ...`, or `if self._x is None:`
    (corpus review: mlflow's `_get_job_store`). As analysis.frameworks decides it in-module."""
    declared: Set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Global):
            declared.update(node.names)
    for node in ast.walk(function):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test = test.operand
            subject = _dotted(test)
            if subject and (subject in declared or subject.startswith("self.")):
                return True
        elif isinstance(test, ast.Compare) and len(test.ops) == 1:
            subject = _dotted(test.left)
            other = test.comparators[0]
            if isinstance(test.ops[0], (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) and isinstance(other, ast.Constant) and other.value is None:
                if subject and (subject in declared or subject.startswith("self.")):
                    return True
            if isinstance(test.ops[0], ast.NotIn):
                container = _dotted(other)
                if container and any(
                    isinstance(sub, ast.Assign) and any(isinstance(t, ast.Subscript) and _dotted(t.value) == container for t in sub.targets)
                    for sub in ast.walk(node)
                ):
                    return True
    return False


def _disposed_calls(function: ast.AST) -> Set[int]:
    """Calls whose result the function binds to a name and disposes of (`engine =
    make_engine(url); ...; engine.dispose()`): the pool ends with the call, whatever runs it.
    Fixture: tests/fixtures/projects/per_request_across_modules"""
    disposed = {
        node.func.value.id
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "dispose" and isinstance(node.func.value, ast.Name)
    }
    if not disposed:
        return set()
    return {
        id(node.value)
        for node in ast.walk(function)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(isinstance(t, ast.Name) and t.id in disposed for t in node.targets)
    }


def _registered_endpoints(tree: ast.Module) -> frozenset:
    """Functions registered as endpoints by call: `app.add_url_rule(rule, view_func=f)`,
    `config.add_request_method(f, ...)` (Pyramid: runs per request), `Route("/", f)`."""
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id if isinstance(node.func, ast.Name) else ""
            if name in ("add_url_rule", "add_api_route", "add_route", "Route", "WebSocketRoute", "add_request_method", "add_view"):
                for arg in list(node.args) + [k.value for k in node.keywords if k.arg in ("view_func", "endpoint", "view", "callable")]:
                    dotted = _dotted(arg)
                    if dotted:
                        found.add(dotted.rsplit(".", 1)[-1])
    return frozenset(found)


def _resolve(index: ProjectIndex, path: str, tree: ast.Module, callee: str) -> Optional[Key]:
    """The building function a call names: defined in this module, or imported from a
    module of the project (`from app.db import make_engine`, `db.make_engine(...)`)."""
    head, _, rest = callee.partition(".")
    if not rest and _defines(tree, head):
        return (path, head) if _is_function(tree, head) else (path, f"{head}.__init__")
    imports = _imports(tree)
    binding = imports.get(head)
    if binding is None:
        return None
    module, level, original = binding
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
