"""Function summaries of the project pass: which project functions return (or yield, or
open as a context manager) a new session, sessionmaker, engine or connection, resolved
across modules from what the module scan recorded, until nothing changes."""

from typing import Optional, Set

from sessionlint.knowledge import CONVENTIONAL_FACTORY_NAMES, SESSION_CLASSES, FactoryKind, Origin, is_async_name
from sessionlint.project.model import Factory, ModuleFacts, ProjectIndex
from sessionlint.project.scan import CONNECTION_CALLS, GLOBAL, NEW_ASYNC_ENGINE, NEW_ASYNC_MAKER, NEW_CONNECTION, NEW_ENGINE, NEW_MAKER, NEW_SESSION


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
    """Mark the functions that return a fresh session (factories), a fresh sessionmaker
    (MAKER), or, as plain generators, yield a fresh session (generators); one level of
    summary, repeated until nothing changes (so a wrapper of a wrapper resolves too)."""
    names: Set[str] = set()
    for _ in range(4):
        changed = False
        for facts in index.modules.values():
            for function, calls in facts.returned_calls.items():
                if function in facts.factories:
                    continue
                for callee, is_async_def in calls:
                    summary = _summary_of(index, facts, callee, function, is_async_def)
                    if summary is not None:
                        facts.factories[function] = summary
                        names.add(function.rsplit(".", 1)[-1])
                        changed = True
                        break
            # generators that yield a new session (`next(get_db())` names the function), and
            # context managers that close the one they yield only on error
            for calls_of, table, origin in ((facts.yielded_calls, facts.generators, Origin.GENERATOR), (facts.opened_calls, facts.factories, Origin.OPEN_CONTEXT)):
                for function, calls in calls_of.items():
                    if function in table:
                        continue
                    for callee, is_async_def in calls:
                        summary = _summary_of(index, facts, callee, function, is_async_def)
                        if summary is not None and summary.kind is FactoryKind.SESSION:
                            table[function] = Factory(FactoryKind.SESSION, summary.is_async, origin, function)
                            names.add(function if origin is Origin.GENERATOR else function.rsplit(".", 1)[-1])
                            changed = True
                            break
        if not changed:
            break
    return names


def _summary_of(index: ProjectIndex, facts: ModuleFacts, callee: str, function: str, is_async_def: bool) -> Optional[Factory]:
    """What `function` returns when it returns the fresh result of `callee`: a session, a
    sessionmaker, or nothing known."""
    if callee == NEW_SESSION:
        return Factory(FactoryKind.SESSION, is_async_def, Origin.FUNCTION, function)
    if callee in (NEW_MAKER, NEW_ASYNC_MAKER):
        return Factory(FactoryKind.MAKER, is_async_def or callee == NEW_ASYNC_MAKER, Origin.FUNCTION, function)
    if callee in (NEW_ENGINE, NEW_ASYNC_ENGINE):
        return Factory(FactoryKind.ENGINE, callee == NEW_ASYNC_ENGINE, Origin.FUNCTION, function)
    if callee == NEW_CONNECTION:
        return Factory(FactoryKind.CONNECTION, False, Origin.FUNCTION, function)
    head, _, method = callee.rpartition(".")
    if method in CONNECTION_CALLS and head and "." not in head:
        # `return engine.connect()` on a module-level (or imported) engine
        engine = _resolve_in_module(index, facts, head)
        if engine is not None and engine.kind is FactoryKind.ENGINE and not engine.is_async:
            return Factory(FactoryKind.CONNECTION, False, Origin.FUNCTION, function)
        return None
    if callee.startswith(GLOBAL):
        # a getter of a shared engine: what it returns checks connections out of one pool.
        # Fixture: tests/fixtures/projects/engine_getter
        held = _resolve_in_module(index, facts, callee[len(GLOBAL):])
        if held is not None and held.kind is FactoryKind.ENGINE and held.origin is not Origin.FUNCTION:
            return Factory(FactoryKind.ENGINE, held.is_async, Origin.ENGINE_GETTER, function)
        return None
    factory = facts.factories.get(callee) if "." in callee and callee.split(".")[0] in _classes_of(facts) else None
    if factory is None and callee.count(".") == 1:
        # `SessionManager().make_session(engine)` with the class imported from a project
        # module (keylime's get_session)
        head, method = callee.split(".")
        binding = facts.imports.get(head)
        if binding is not None and binding.original:
            target = index.path_of_module(facts.path, binding.module, binding.level)
            if target is not None:
                factory = index.lookup(target, f"{binding.original}.{method}")
    if factory is None:
        factory = _resolve_in_module(index, facts, callee)
    if factory is None or factory.origin is Origin.OPEN_CONTEXT:
        return None  # (what an open context manager's call returns is the context manager)
    if factory.kind is FactoryKind.SESSION:
        return Factory(FactoryKind.SESSION, factory.is_async, Origin.FUNCTION, function)
    if factory.kind in (FactoryKind.MAKER, FactoryKind.ENGINE) and factory.origin is Origin.FUNCTION:
        return Factory(factory.kind, factory.is_async, Origin.FUNCTION, function)
    return None


def _classes_of(facts: ModuleFacts) -> Set[str]:
    return {name.split(".")[0] for name in list(facts.returned_calls) + list(facts.factories) if "." in name}
