"""What kind of function this is, as far as the frameworks that call it are concerned:
a FastAPI dependency, a pytest fixture, a context-manager helper, a generator."""

from dataclasses import dataclass
from typing import FrozenSet, Union

import libcst as cst

from sessionlint.analysis.tree import SCOPE_TYPES, dotted_name, walk


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
        return any(d in ("pytest.fixture", "fixture", "pytest_asyncio.fixture") for d in self.decorators)

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


def describe_function(node: Union[cst.FunctionDef, cst.Module], depends_targets: FrozenSet[str]) -> FunctionInfo:
    if isinstance(node, cst.Module):
        return FunctionInfo(node, "<module>", False, False, frozenset(), False)
    return FunctionInfo(
        node=node,
        name=node.name.value,
        is_async=node.asynchronous is not None,
        is_generator=is_generator(node),
        decorators=decorator_names(node),
        is_dependency=node.name.value in depends_targets,
    )


__all__ = ["FunctionInfo", "describe_function", "decorator_names", "is_generator", "SCOPE_TYPES"]
