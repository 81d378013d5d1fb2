"""Parameters that hold sessions: annotations (`Session`, `Annotated[AsyncSession, ...]`)
and FastAPI `Depends(...)` / `Security(...)` injections."""

from typing import TYPE_CHECKING, AbstractSet, Optional, Set

import libcst as cst

from sessionlint.analysis.tree import terminal_name, walk
from sessionlint.knowledge import ASYNC_TYPE_NAMES, CONVENTIONAL_SESSION_NAMES, SESSION_TYPE_NAMES, FactoryKind, Origin
from sessionlint.project.model import Factory

if TYPE_CHECKING:
    from sessionlint.analysis.factories import Resolver
    from sessionlint.analysis.facts import ScopeFacts

_GENERATOR_TYPES = frozenset({"Generator", "Iterator", "Iterable", "AsyncGenerator", "AsyncIterator"})


def yielded_session_type(annotation: cst.BaseExpression) -> Optional[str]:
    """For `Callable[..., Generator[Session, None, None]]` (or an `Iterator`, an async
    generator): the name of the type the generators it makes yield."""
    if not isinstance(annotation, cst.Subscript) or terminal_name(annotation.value) != "Callable" or len(annotation.slice) != 2:
        return None
    returned = annotation.slice[1].slice
    if not isinstance(returned, cst.Index) or not isinstance(returned.value, cst.Subscript):
        return None
    generator = returned.value
    if terminal_name(generator.value) not in _GENERATOR_TYPES or not generator.slice:
        return None
    first = generator.slice[0].slice
    return terminal_name(first.value) if isinstance(first, cst.Index) else None


def _annotation_names(annotation: cst.BaseExpression) -> Set[str]:
    """Type names an annotation mentions: `AsyncSession`, `Optional[Session]`,
    `Annotated[AsyncSession, Depends(get_db)]` (the first argument only)."""
    names: Set[str] = set()
    if isinstance(annotation, cst.Subscript):
        base = terminal_name(annotation.value) or ""
        elements = annotation.slice
        if base == "Annotated" and elements:
            first = elements[0].slice
            if isinstance(first, cst.Index):
                names |= _annotation_names(first.value)
            return names
        for element in elements:
            if isinstance(element.slice, cst.Index):
                names |= _annotation_names(element.slice.value)
        return names
    if isinstance(annotation, cst.BinaryOperation):  # Session | None
        return _annotation_names(annotation.left) | _annotation_names(annotation.right)
    if isinstance(annotation, cst.SimpleString):
        text = annotation.value.strip("'\"")
        return {text.rsplit(".", 1)[-1]}
    name = terminal_name(annotation)
    if name:
        names.add(name)
    return names


def _is_session_dependency(param: str, dependency: str, types: Set[str]) -> bool:
    """A `Depends(...)` parameter holds a session when annotated as one, named like one
    (`db`, `session`), or injected by a dependency named like one (`get_db`,
    `get_async_session`). `user=Depends(get_current_user)` does not."""
    if types & SESSION_TYPE_NAMES or param in CONVENTIONAL_SESSION_NAMES:
        return True
    lowered = dependency.lower()
    return "session" in lowered or lowered.endswith(("_db", "db")) or lowered.startswith("get_db")


def _function_scoped(node: cst.CSTNode) -> bool:
    """`Depends(get_db, scope="function")` (FastAPI 0.121+): exits before the response."""
    if isinstance(node, cst.Call) and terminal_name(node.func) in ("Depends", "Security"):
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value == "scope":
                return isinstance(arg.value, cst.SimpleString) and "function" in arg.value.value
    return False


def _depends_target(node: cst.BaseExpression) -> Optional[str]:
    if isinstance(node, cst.Call) and terminal_name(node.func) in ("Depends", "Security") and node.args:
        return terminal_name(node.args[0].value)
    return None


def note_parameters(node: cst.FunctionDef, facts: "ScopeFacts", resolver: "Resolver", async_dependencies: AbstractSet[str]) -> None:
    """Parameters that hold sessions: annotated `Session`/`AsyncSession` (also inside
    `Annotated[...]`), or injected with `Depends(f)` where `f` yields an async session."""
    params = node.params
    for param in list(params.posonly_params) + list(params.params) + list(params.kwonly_params):
        name = param.name.value
        annotation = param.annotation.annotation if param.annotation is not None else None
        types = _annotation_names(annotation) if annotation is not None else set()
        aliases = resolver.index.session_aliases
        aliased = types & set(aliases)
        for alias in aliased:
            types.add("AsyncSession" if aliases[alias] else "Session")
        if aliased:
            # Session aliases are `Annotated[Session, Depends(get_db)]` (the index records
            # only Annotated ones): the framework injects a request-scoped session.
            # Fixture: SL008/dependency_session_handed_over.py
            facts.injected.setdefault(name, False)
        yielded = yielded_session_type(annotation) if annotation is not None else None
        if yielded is not None:
            binding = resolver.imports.get(yielded)
            original = binding.original if binding is not None and binding.original else yielded
            if original in SESSION_TYPE_NAMES:
                # `make: Callable[[], Generator[Session, None, None]]`: `gen = make()` is a
                # generator of sessions (real-bug corpus: personio's advice task)
                facts.generator_params[name] = Factory(FactoryKind.SESSION, original.startswith("Async"), Origin.GENERATOR, name)
        if types & SESSION_TYPE_NAMES:
            facts.session_names.add(name)
        if types & ASYNC_TYPE_NAMES:
            facts.async_names.add(name)
        default = param.default
        dependency = _depends_target(default) if default is not None else None
        if dependency is None and annotation is not None:
            for sub in walk(annotation):
                if isinstance(sub, cst.Call):
                    dependency = _depends_target(sub) or dependency
        if dependency is not None and _is_session_dependency(name, dependency, types):
            if dependency in async_dependencies:
                facts.async_names.add(name)
            facts.session_names.add(name)
            facts.injected[name] = (default is not None and _function_scoped(default)) or any(
                _function_scoped(sub) for sub in (walk(annotation) if annotation is not None else ())
            )
