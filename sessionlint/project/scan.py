"""The module scan: one file's module-level factories, imports, session type aliases and
function facts, from CPython's `ast` (a tenth of libcst's cost). Run only on the files whose
text can bind a factory."""

import ast
from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

from sessionlint.knowledge import (
    CONVENTIONAL_FACTORY_NAMES,
    SESSION_CLASSES,
    FactoryKind,
    Origin,
    is_async_name,
)
from sessionlint.project.model import (
    Factory,
    ImportBinding,
    ModuleFacts,
    ProjectIndex,
    builder_factory,
)


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


def scan_module(path: str, tree: ast.Module) -> ModuleFacts:
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
    assigns: List[Tuple[ast.Assign, ast.Call]] = []  # `target = call(...)`
    returns: List[ast.Return] = []
    registered: Set[str] = set()
    generator = False
    for node in _walk_own_scope(function):
        if isinstance(node, ast.Assign):
            if isinstance(node.value, ast.Call):
                assigns.append((node, node.value))
        elif isinstance(node, ast.Call):
            # `zope.sqlalchemy.register(session, transaction_manager=tm)`: the transaction
            # manager closes the session; what the function returns has an owner.
            # Fixture: SL001/session_registered_with_transaction_manager.py
            callee = _terminal(node.func) or ""
            if callee == "register" or callee.startswith("register_"):
                registered.update(a.id for a in node.args if isinstance(a, ast.Name))
        elif isinstance(node, ast.Return):
            if node.value is not None:
                returns.append(node)
        elif isinstance(node, ast.Global):
            declared.update(node.names)
        elif isinstance(node, (ast.Yield, ast.YieldFrom)):
            generator = True
    registries: Set[str] = set()
    for assign, call in assigns:
        if _terminal(call.func) in ("scoped_session", "async_scoped_session"):
            for target in assign.targets:
                name = _terminal(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
                if name:
                    registries.add(name)
    bound: Dict[str, Factory] = {}
    if declared:
        for assign, call in assigns:
            builder = _builder_of(call, imports)
            if builder is None:
                continue
            for target in assign.targets:
                if isinstance(target, ast.Name) and target.id in declared:
                    bound[target.id] = builder
    if function.decorator_list or generator or not returns:
        return (), bound, registries
    assigned: Dict[str, str] = {}
    for assign, call in assigns:
        assigned_callee = _dotted(call.func)
        if assigned_callee:
            for target in assign.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = assigned_callee
    is_async_def = isinstance(function, ast.AsyncFunctionDef)
    returned: List[Tuple[str, bool]] = []
    for node in returns:
        value = node.value
        if isinstance(value, ast.Call):
            returned_callee = _dotted(value.func)
            if returned_callee:
                returned.append((returned_callee, is_async_def))
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
                return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], Origin.SESSION_CLASS, full)
            if index.is_project_module(facts.path, binding.module, binding.level):
                return None
        if head in CONVENTIONAL_FACTORY_NAMES | index.extra_factory_names:
            return Factory(FactoryKind.SESSION, is_async_name(head), Origin.CONVENTIONAL, head)
        return None
    binding = facts.imports.get(head)
    if binding is not None:
        module = f"{binding.module}.{binding.original}" if binding.original else binding.module
        full = f"{module}.{rest}"
        if full in SESSION_CLASSES:
            return Factory(FactoryKind.SESSION, SESSION_CLASSES[full], Origin.SESSION_CLASS, full)
        target = index.path_of_module(facts.path, module, binding.level)
        if target is not None and "." not in rest:
            return index.lookup(target, rest)
    return None


def summarise_functions(index: ProjectIndex) -> Set[str]:
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
                        facts.factories[function] = Factory(FactoryKind.SESSION, factory.is_async, Origin.FUNCTION, function)
                        names.add(function)
                        changed = True
                        break
        if not changed:
            break
    return names
