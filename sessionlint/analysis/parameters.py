"""Parameters that hold sessions: annotations (`Session`, `Annotated[AsyncSession, ...]`)
and FastAPI `Depends(...)` / `Security(...)` injections."""

from typing import Optional, Set

import libcst as cst

from sessionlint.analysis.tree import terminal_name
from sessionlint.knowledge import CONVENTIONAL_SESSION_NAMES, SESSION_TYPE_NAMES


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
