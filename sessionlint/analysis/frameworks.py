"""What kind of function this is, as far as the frameworks that call it are concerned:
a FastAPI dependency, a pytest fixture, a context-manager helper, a generator."""

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, FrozenSet, List, Optional, Set, Tuple, Union

import libcst as cst

from sessionlint.analysis.tree import dotted_name, terminal_name, walk
from sessionlint.knowledge import ENDPOINT_REGISTRARS, START_UP_EVENTS, definition_timing


@dataclass(frozen=True)
class FunctionInfo:
    node: Union[cst.FunctionDef, cst.Module]
    name: str  # "<module>" for module level
    is_async: bool
    is_generator: bool
    decorators: FrozenSet[str]  # dotted decorator names, call parentheses dropped
    # Named in `Depends(...)`/`Security(...)` somewhere in the linted project: FastAPI calls
    # it per request and closes only what a generator cleans up after its `yield`.
    is_dependency: bool

    @property
    def is_pytest_fixture(self) -> bool:
        # pytest runs the code after a fixture's `yield` even when the test fails.
        return any(d in ("pytest.fixture", "fixture", "pytest_asyncio.fixture", "pytest.yield_fixture", "yield_fixture") for d in self.decorators)

    @property
    def is_context_manager(self) -> bool:
        return any(d.rsplit(".", 1)[-1] in ("contextmanager", "asynccontextmanager") for d in self.decorators)


def decorator_names(node: cst.FunctionDef) -> FrozenSet[str]:
    names = set()
    for decorator in node.decorators:
        expression = decorator.decorator
        if isinstance(expression, cst.Call):
            expression = expression.func
        name = dotted_name(expression)
        if name:
            names.add(name)
    return frozenset(names)


def is_generator(node: cst.FunctionDef) -> bool:
    for child in walk(node.body, enter_scopes=False):
        if isinstance(child, cst.Yield):
            return True
    return False


def describe_function(
    node: Union[cst.FunctionDef, cst.Module], depends_targets: FrozenSet[str], has_yield: Optional[bool] = None
) -> FunctionInfo:
    """`has_yield` when the traversal already knows (it saw a `yield` in this scope)."""
    if isinstance(node, cst.Module):
        return FunctionInfo(node, "<module>", False, False, frozenset(), False)
    return FunctionInfo(
        node=node,
        name=node.name.value,
        is_async=node.asynchronous is not None,
        is_generator=is_generator(node) if has_yield is None else has_yield,
        decorators=decorator_names(node),
        # `Depends(get_db)` names a function; a method of the same name (`self` first) is
        # not that function. Fixture: SL001/dependency_returns_session.py
        is_dependency=node.name.value in depends_targets and not _is_method(node),
    )


def _is_method(node: cst.FunctionDef) -> bool:
    params = node.params.posonly_params or node.params.params
    return bool(params) and params[0].name.value in ("self", "cls")


# --- when code runs: per request, once, or unknown -----------------------------------------




class Timing(Enum):
    PER_REQUEST = "per request"
    ONCE = "once"
    UNKNOWN = "unknown"


_TIMINGS = {timing.value: timing for timing in Timing}


@dataclass
class FunctionRecord:
    node: cst.FunctionDef
    name: str
    class_name: Optional[str]
    class_bases: FrozenSet[str]
    decorators: FrozenSet[str]
    decorator_calls: FrozenSet[str]  # decorators written with arguments
    calls: Set[str] = field(default_factory=set)  # `f(...)` -> "f", `self.m(...)` -> "self.m"
    global_guard: bool = False  # `global X` and a test of X: built once, reused after
    timing: Timing = Timing.UNKNOWN
    reason: str = ""


class FrameworkCollector:
    """Classifies the functions of one module by when they run, for SL004/SL005/SL008."""

    def __init__(
        self, depends_targets: FrozenSet[str], request_decorators: FrozenSet[str] = frozenset(), project_timing: Optional[Dict[str, str]] = None
    ) -> None:
        self.depends_targets = depends_targets
        # functions of this module the project pass found to run per request, reached from a
        # handler of another module (project.calls): qualified name -> why
        self.project_timing = project_timing or {}
        # configured (`request-decorators`): dotted names as written, or their last part
        self.request_decorators = request_decorators
        self.functions: Dict[int, FunctionRecord] = {}
        self.stack: List[FunctionRecord] = []
        self.classes: List[Tuple[str, FrozenSet[str]]] = []
        self.endpoints: Set[str] = set()
        # functions given to `Column(default=...)`/`onupdate=`: SQLAlchemy calls them for
        # every row it inserts or updates (real-bug corpus: tahrir-api's recipient_default)
        self.row_callbacks: Set[str] = set()
        self.once_names: Set[str] = set()  # lifespan=..., on_startup=[...]
        # An Alembic env.py (it calls `context.run_migrations()`): run once per migration
        # process by `alembic upgrade`. Fixture: SL004/alembic_env_engine_from_config.py
        self.is_alembic_env = False
        self.done = False

    # -- traversal hooks --------------------------------------------------------------
    def enter_class(self, node: cst.ClassDef) -> None:
        bases = frozenset(filter(None, (dotted_name(b.value) for b in node.bases)))
        self.classes.append((node.name.value, bases))

    def leave_class(self) -> None:
        self.classes.pop()

    def enter_function(self, node: cst.FunctionDef) -> None:
        calls_with_args = set()
        for decorator in node.decorators:
            if isinstance(decorator.decorator, cst.Call):
                name = dotted_name(decorator.decorator.func)
                if name:
                    calls_with_args.add(name)
        owner = self.classes[-1] if self.classes and not self.stack else (None, frozenset())
        record = FunctionRecord(
            node,
            node.name.value,
            owner[0],
            owner[1],
            decorator_names(node),
            frozenset(calls_with_args),
        )
        self.functions[id(node)] = record
        self.stack.append(record)

    def leave_function(self) -> None:
        self.stack.pop()

    def on_call(self, node: cst.Call) -> None:
        callee = terminal_name(node.func) or ""
        if callee == "run_migrations" and dotted_name(node.func) == "context.run_migrations":
            self.is_alembic_env = True
        if self.stack:
            func = node.func
            if isinstance(func, cst.Name):
                self.stack[-1].calls.add(func.value)
            elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in ("self", "cls"):
                self.stack[-1].calls.add("self." + func.attr.value)
        if callee in ("Column", "mapped_column"):
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value in ("default", "onupdate") and isinstance(arg.value, cst.Name):
                    self.row_callbacks.add(arg.value.value)
        if callee in ENDPOINT_REGISTRARS:
            for arg in node.args:
                if arg.keyword is None or arg.keyword.value in ("endpoint", "view_func", "route"):
                    name = terminal_name(arg.value)
                    if name and not isinstance(arg.value, cst.SimpleString):
                        self.endpoints.add(name)
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value in ("lifespan", "on_startup"):
                if isinstance(arg.value, (cst.List, cst.Tuple)):
                    for element in arg.value.elements:
                        name = terminal_name(element.value)
                        if name:
                            self.once_names.add(name)
                else:
                    name = terminal_name(arg.value)
                    if name:
                        self.once_names.add(name)
        if callee in ("add_event_handler", "register") and len(node.args) >= 2:
            # `app.add_event_handler("startup", f)`; TurboGears' `tg.hooks.register(
            # "configure_new_app", f)`. Fixture: SL004/engine_built_once_lifespan_startup.py
            first = node.args[0].value
            if isinstance(first, cst.SimpleString) and any(w in first.value for w in START_UP_EVENTS):
                name = terminal_name(node.args[1].value)
                if name:
                    self.once_names.add(name)

    def on_global(self, node: cst.Global) -> None:
        if self.stack:
            self.stack[-1].global_guard = True  # refined when classifying

    # -- classification -----------------------------------------------------------------
    def classify(self) -> None:
        if self.done:
            return
        self.done = True
        by_name: Dict[str, List[FunctionRecord]] = {}
        for record in self.functions.values():
            key = f"self.{record.name}" if record.class_name else record.name
            by_name.setdefault(key, []).append(record)
        for record in self.functions.values():
            record.timing, record.reason = self._direct_timing(record)
        # Functions called from a per-request function of this module run per request too.
        changed = True
        while changed:
            changed = False
            for record in self.functions.values():
                if record.timing is not Timing.PER_REQUEST:
                    continue
                for called in record.calls:
                    for target in by_name.get(called, ()):
                        if target.timing is Timing.UNKNOWN:
                            target.timing = Timing.PER_REQUEST
                            target.reason = f"it is called from `{record.name}`, which runs per request"
                            changed = True

    def _direct_timing(self, record: FunctionRecord) -> Tuple[Timing, str]:
        if self.is_alembic_env:
            return Timing.ONCE, "Alembic runs env.py once per migration"
        if (record.global_guard and _has_none_guard(record.node)) or _has_memo_guard(record.node):
            return Timing.ONCE, "it runs once"
        if record.class_name is None and record.name in self.row_callbacks:
            return Timing.PER_REQUEST, f"`{record.name}` is a column default, called for every row inserted or updated"
        qualified = f"{record.class_name}.{record.name}" if record.class_name else record.name
        kind, reason = definition_timing(
            record.name,
            record.decorators,
            record.decorator_calls,
            record.class_name,
            record.class_bases,
            self.depends_targets,
            frozenset(self.endpoints),
            frozenset(self.once_names),
            self.request_decorators,
        )
        if kind == "unknown" and qualified in self.project_timing:
            return Timing.PER_REQUEST, self.project_timing[qualified]
        return _TIMINGS[kind], reason

    def timing_of(self, node: cst.FunctionDef) -> Tuple[Timing, str]:
        self.classify()
        record = self.functions.get(id(node))
        if record is None:
            return Timing.UNKNOWN, ""
        return record.timing, record.reason


def _has_none_guard(node: cst.FunctionDef) -> bool:
    """`if _engine is None:` (or `if not _engine:`, or `if _engine is not None: return`) on a
    global: a build-once getter. Fixture: SL004/engine_built_once_guards.py"""
    for child in walk(node.body, enter_scopes=False):
        if isinstance(child, cst.If):
            test = child.test
            if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
                return True
            if isinstance(test, cst.Comparison) and any(
                isinstance(c.operator, (cst.Is, cst.Equal, cst.IsNot, cst.NotEqual)) and isinstance(c.comparator, cst.Name) and c.comparator.value == "None"
                for c in test.comparisons
            ):
                return True
    return False


def _has_memo_guard(node: cst.FunctionDef) -> bool:
    """`if key not in CACHE: CACHE[key] = build(...)`: one build per key, kept in a
    container of the module. Fixture: SL004/engine_built_once_guards.py"""
    for child in walk(node.body, enter_scopes=False):
        if not isinstance(child, cst.If) or not isinstance(child.test, cst.Comparison):
            continue
        comparisons = child.test.comparisons
        if len(comparisons) != 1 or not isinstance(comparisons[0].operator, cst.NotIn):
            continue
        container = dotted_name(comparisons[0].comparator)
        if container is None:
            continue
        for sub in walk(child.body):
            if isinstance(sub, cst.AssignTarget) and isinstance(sub.target, cst.Subscript) and dotted_name(sub.target.value) == container:
                return True
    return False


def is_test_code(path: str, function_name: str, decorators: FrozenSet[str]) -> bool:
    """Tests build throwaway engines on purpose."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    return (
        base.startswith("test_")
        or base.endswith("_test.py")
        or base == "conftest.py"
        or function_name.startswith("test")
        or any(d.endswith("fixture") for d in decorators)
    )
