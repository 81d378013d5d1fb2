"""The shape of the package: no import circle (lazy imports inside functions count), every
import points down the layers of docs/ARCHITECTURE.md, reporters read diagnostics only, and
no module is over 650 lines."""

import ast
import os
from typing import Dict, List, Set

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sessionlint")

# A module may import modules of its own layer or of a lower one (docs/ARCHITECTURE.md).
LAYERS = [
    # 1: data and leaves that know nothing of the analysis
    {"sessionlint", "sessionlint.knowledge", "sessionlint.diagnostics", "sessionlint.config", "sessionlint.registry", "sessionlint.fixes.files"},
    # 2: the project model and the project pass (stdlib ast)
    {
        "sessionlint.project", "sessionlint.project.model", "sessionlint.project.text", "sessionlint.project.scan",
        "sessionlint.project.builder", "sessionlint.project.calls", "sessionlint.project.live", "sessionlint.project.versions", "sessionlint.project.summaries",
        "sessionlint.project.callables",
    },
    # 3: the per-file analysis (libcst) and the fix builders the rules use
    {"sessionlint.analysis", "sessionlint.fixes", "sessionlint.fixes.plan", "sessionlint.fixes.builders"},
    # 4: the rules
    {"sessionlint.rules"},
    # 5: one file in, one result out
    {"sessionlint.lint", "sessionlint.prefilter", "sessionlint.parsing", "sessionlint.sources", "sessionlint.suppression", "sessionlint.noqa"},
    # 6: what the run uses
    {"sessionlint.fixes.apply", "sessionlint.workers", "sessionlint.cache", "sessionlint.cache_codecs", "sessionlint.baseline", "sessionlint.discovery"},
    # 7: the pipeline
    {"sessionlint.runner", "sessionlint.workspace"},
    # 8: the public API
    {"sessionlint.api"},
    # 9: the command line, the language server (pygls, imported only for `sessionlint server`),
    # the pytest plugin and its cross-check
    {"sessionlint.cli", "sessionlint.__main__", "sessionlint.server", "sessionlint.pytest_plugin", "sessionlint.runtime_report"},
]
REPORTER_IMPORTS = {"sessionlint", "sessionlint.diagnostics", "sessionlint.registry"}
MAX_LINES = 650


def modules() -> Dict[str, str]:
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                found[dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return found


def imports(path: str, known: Set[str]) -> Set[str]:
    """Every sessionlint module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sessionlint" and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "sessionlint")
    return found


def layer_of(module: str) -> int:
    for index, layer in enumerate(LAYERS):
        if module in layer:
            return index
    for index, layer in enumerate(LAYERS):  # a package's layer holds its modules
        if any(module.startswith(member + ".") for member in layer if member != "sessionlint"):
            return index
    raise AssertionError(f"{module} has no layer: add it to LAYERS and docs/ARCHITECTURE.md")


GRAPH = {name: imports(path, set(modules())) - {name} for name, path in modules().items()}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not m.startswith("sessionlint.reporters")))
def test_imports_point_down_the_layers(module):
    upward = [target for target in GRAPH[module] if not target.startswith("sessionlint.reporters") and layer_of(target) > layer_of(module)]
    assert not upward, f"{module} (layer {layer_of(module) + 1}) imports from a higher layer: {upward}"


def test_reporters_read_diagnostics_only():
    for module, targets in GRAPH.items():
        if module.startswith("sessionlint.reporters"):
            assert targets <= REPORTER_IMPORTS | {m for m in GRAPH if m.startswith("sessionlint.reporters")}, (module, targets)


def test_no_import_circle():
    state: Dict[str, int] = {}
    path: List[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target) :] + [target]))
            if target in GRAPH and state.get(target) is None:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if state.get(module) is None:
            visit(module)


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_over_650_lines(module):
    with open(modules()[module], encoding="utf-8") as handle:
        count = sum(1 for _ in handle)
    assert count <= MAX_LINES, f"{module}: {count} lines"
