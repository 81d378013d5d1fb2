"""The small public API: what scripts, tests, benchmarks and the language server use instead
of the runner's internals.

    from sessionlint.api import lint_paths, lint_source, fix_source

    result = lint_paths(["app/"])                      # as the command line: a RunResult
    found = lint_source("db = SessionLocal()\\n")      # one text: its FileResult
    fixed = fix_source(text, "app/users.py")           # the safe fixes applied: a FixResult
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from sessionlint.config import Configuration, Settings
from sessionlint.diagnostics import Diagnostic, FileResult, RunResult

if TYPE_CHECKING:
    from sessionlint.prefilter import Project

Source = Union[str, bytes]


def _bytes(source: Source) -> bytes:
    return source.encode("utf-8") if isinstance(source, str) else source


def lint_paths(
    paths: Sequence[str],
    settings: Optional[Settings] = None,
    *,
    stdin: Optional[Tuple[str, bytes]] = None,
    fix: Optional[str] = None,
) -> RunResult:
    """Lint files and directories as the command line does: each file under its nearest
    configuration (or under `settings` for every file), inside its project, suppressions
    applied. `fix` ("safe" or "unsafe") computes the fixed bytes (in `result.fixes`) without
    writing them."""
    from sessionlint.runner import run

    configuration = Configuration() if settings is None else Configuration.fixed(settings)
    return run(paths, configuration, stdin=stdin, fix=fix)


def python_files(paths: Sequence[str], settings: Optional[Settings] = None) -> List[str]:
    """The files a run over `paths` would lint (excludes, .gitignore)."""
    from sessionlint.discovery import discover

    return list(discover(paths, Configuration() if settings is None else Configuration.fixed(settings)).files)


def read_sources(paths: Sequence[str]) -> Dict[str, bytes]:
    """The bytes of every readable file of `paths` (the others are left out)."""
    from sessionlint.sources import read_source

    found = {}
    for path in paths:
        data = read_source(path)[0]
        if data is not None:
            found[path] = data
    return found


def build_project(sources: Mapping[str, Source], settings: Optional[Settings] = None) -> "Project":
    """The project pass over texts held in memory (path -> text): what `lint_source` needs
    to lint any of them, or a changed version of one, as part of that project."""
    from sessionlint.prefilter import build_project as build

    return build({path: _bytes(text) for path, text in sources.items()}, settings or Settings())


def lint_sources(sources: Mapping[str, Source], settings: Optional[Settings] = None) -> Dict[str, FileResult]:
    """Lint texts held in memory as one project (path -> text): each file's result, before
    suppressions."""
    from sessionlint.lint import lint_file, rule_classes
    from sessionlint.prefilter import build_project
    from sessionlint.registry import select_rules

    settings = settings or Settings()
    data = {path: _bytes(text) for path, text in sources.items()}
    project = build_project(data, settings)
    rules = rule_classes(info for info in select_rules(settings.effective_select, settings.ignore) if info.class_name)
    return {path: lint_file(text, path, project, rules, settings.prefilter) for path, text in data.items()}


def lint_source(
    source: Source,
    path: str = "example.py",
    settings: Optional[Settings] = None,
    project: Union[None, Mapping[str, Source], "Project"] = None,
) -> FileResult:
    """The result of one text (its findings before suppressions, or the error that stopped
    its lint), linted inside `project`: the other files of its project (path -> text), or a
    project built once with `build_project`."""
    from sessionlint.lint import lint_file, rule_classes
    from sessionlint.prefilter import Project
    from sessionlint.registry import select_rules

    settings = settings or Settings()
    if not isinstance(project, Project):
        sources: Dict[str, Source] = dict(project or {})
        sources[path] = source
        project = build_project(sources, settings)
    rules = rule_classes(info for info in select_rules(settings.effective_select, settings.ignore) if info.class_name)
    return lint_file(_bytes(source), path, project, rules, settings.prefilter)


@dataclass
class FixResult:
    source: bytes  # the fixed text (the input when no fix applied)
    diagnostics: List[Diagnostic]  # what remains in it
    fixed: Dict[str, int] = field(default_factory=dict)  # code -> fixes applied
    problem: Optional[str] = None  # a round that produced invalid code, kept at the last good one


def fix_source(
    source: Source,
    path: str = "example.py",
    settings: Optional[Settings] = None,
    *,
    unsafe: bool = False,
    project: Optional[Mapping[str, Source]] = None,
) -> FixResult:
    """Apply the safe fixes (and the unsafe ones with `unsafe`) to one text."""
    from sessionlint.fixes.apply import fix_source as apply_fixes
    from sessionlint.lint import rule_classes
    from sessionlint.prefilter import build_project
    from sessionlint.registry import select_rules

    settings = settings or Settings()
    data = _bytes(source)
    sources = {p: _bytes(text) for p, text in (project or {}).items()}
    sources[path] = data
    built = build_project(sources, settings)
    rules = rule_classes(info for info in select_rules(settings.effective_select, settings.ignore) if info.class_name)
    outcome = apply_fixes(data, path, built, rules, unsafe=unsafe)
    return FixResult(outcome.data, list(outcome.result.diagnostics), dict(outcome.fixed), outcome.problem)
