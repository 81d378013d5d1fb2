"""One file in, one `FileResult` out: the prefilter, the parse, the one traversal that runs
the analysis collectors and every enabled rule, and the diagnostics with their fix plans.
Never raises for bad input: a parse failure or a rule crash is recorded on the result."""

import ast
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type

from sessionlint.diagnostics import (
    Diagnostic,
    ErrorKind,
    FileError,
    FileResult,
    Location,
)
from sessionlint.parsing import check_with_cpython, parse_module
from sessionlint.prefilter import Project
from sessionlint.project.builder import content_key
from sessionlint.registry import RuleInfo

if TYPE_CHECKING:  # libcst and the rules are imported when a file is parsed, not before
    import ast

    import libcst as cst

    from sessionlint.fixes.plan import FixPlan
    from sessionlint.rules.base import FileContext, Rule

_LOG = logging.getLogger(__name__)
RuleClasses = Sequence[Type["Rule"]]


def rule_classes(infos: Iterable[Optional[RuleInfo]]) -> List[Type["Rule"]]:
    """The rule classes for `infos`, in the order of the registry (imports libcst)."""
    from sessionlint.rules import ALL_RULES

    wanted = {info.code for info in infos if info is not None}
    return [cls for cls in ALL_RULES if cls.code in wanted]


def lint_file(data: bytes, path: str, project: Project, rules: "RuleClasses", prefilter: bool = True, tree: Optional[ast.Module] = None) -> FileResult:
    """Lint one file's bytes: settled by the text prefilter when it cannot hold a finding,
    parsed and traversed otherwise (`tree`: see `parse_and_lint`)."""
    refine: Tuple[str, ...] = ()
    if prefilter:
        triage = project.triage(data, {t for rule in rules for t in rule.TRIGGERS})
        if triage is None:
            return FileResult(path)
        refine = triage
    return parse_and_lint(data, path, project, rules, refine, tree)


def parse_and_lint(
    data: bytes, path: str, project: Project, rules: "RuleClasses", refine: Tuple[str, ...] = (), tree: Optional[ast.Module] = None
) -> FileResult:
    """The part of linting that needs libcst: parse, one traversal, diagnostics. With
    `refine` (triggers of astfilter.REFINED_TRIGGERS), CPython's tree decides first whether
    libcst is needed at all. `tree`: what `parsing.check_with_cpython` returned for `data`,
    when the caller has it already (the language server)."""
    if sys.version_info < (3, 11):
        tree = None  # the check also measures the AST's depth there: it runs
    # CPython's parser accepted the file in the project pass already, or the caller's tree
    # is the check's answer: the check cannot fail.
    if tree is None and (refine or sys.version_info < (3, 11) or (path, content_key(data)) not in project.index.parsed):
        checked = check_with_cpython(data, path)
        if isinstance(checked, FileError):
            return FileResult(path, error=checked)
        tree = checked
    if refine and tree is not None and not any(_refined_keeps(tree, trigger, project) for trigger in refine):
        return FileResult(path)
    del tree
    module = parse_module(data, path)
    if isinstance(module, FileError):
        return FileResult(path, error=module)
    try:
        mentions = b"sqlalchemy" in data or b"sqlmodel" in data
        return _lint_module(module, path, project, rules, mentions)
    except Exception as error:  # a bug in sessionlint: one file's internal error, not a crash
        if os.environ.get("SESSIONLINT_STRICT") == "1":
            raise
        _LOG.debug("internal error in %s", path, exc_info=True)
        return FileResult(
            path,
            error=FileError(ErrorKind.INTERNAL, path, f"internal error: {type(error).__name__}: {error} (please report it with this file)"),
            parsed=True,
        )


def _refined_keeps(tree: "ast.Module", trigger: str, project: Project) -> bool:
    """Whether the `ast` check of a refined trigger says libcst is needed."""
    from sessionlint.analysis.astfilter import REFINED_TRIGGERS, calls_a_runner, may_leave_failed_transaction

    if trigger == "commit":
        return may_leave_failed_transaction(tree, project.committer_names)
    if trigger == "lazy_query" and calls_a_runner(tree, project.runner_names):
        return True
    return REFINED_TRIGGERS[trigger](tree)


def _lint_module(module: "cst.Module", path: str, project: Project, rules: "RuleClasses", mentions_sqlalchemy: bool) -> FileResult:
    context = run_rules(module, path, project, rules, mentions_sqlalchemy)
    diagnostics = tuple(d for d, _ in diagnostics_with_plans(context))
    crashes = context.crashes
    if crashes:
        codes = ", ".join(code for code, _ in crashes)
        details = "; ".join(f"{code}: {problem}" for code, problem in crashes)
        error = FileError(
            ErrorKind.INTERNAL,
            path,
            f"internal error in rule {codes} ({details}); the other rules ran. Please report it with this file",
        )
        return FileResult(path, diagnostics, error=error, parsed=True)
    return FileResult(path, diagnostics, parsed=True)


def run_rules(module: "cst.Module", path: str, project: Project, rules: "RuleClasses", mentions_sqlalchemy: bool) -> "FileContext":
    """The one traversal of `module` with the analysis collectors and every rule; returns
    the file context holding the rules' reports (with their fix plans)."""
    import libcst as cst

    from sessionlint.analysis.tree import SCOPE_TYPES, traverse
    from sessionlint.rules.base import FileContext

    collectors = {collector for rule in rules for collector in rule.METADATA_DEPENDENCIES}
    context = FileContext(module, path, project.index, mentions_sqlalchemy, collectors)
    instances = [cls(context) for cls in rules]
    visit_table: Dict[type, List[Callable[[Any], None]]] = {}
    leave_table: Dict[type, List[Callable[[Any], None]]] = {}
    for instance in instances:
        for class_name, methods in type(instance).callbacks().items():
            node_type = getattr(cst, class_name, None)
            if node_type is None:
                continue
            for method in methods:
                table = visit_table if method.startswith("visit_") else leave_table
                table.setdefault(node_type, []).append(getattr(instance, method))

    lifecycle = context.lifecycle
    frameworks: Any = context.frameworks if context.frameworks is not None else _NO_FRAMEWORKS
    ancestors: List[cst.CSTNode] = []
    scope_types = SCOPE_TYPES + (cst.Module,)
    try_types = (cst.Try, cst.TryStar)
    call_type = cst.Call
    with_type = cst.With

    function_type = cst.FunctionDef
    class_type = cst.ClassDef
    global_type = cst.Global
    yield_type = cst.Yield
    assign_type = cst.Assign
    ann_assign_type = cst.AnnAssign
    import_from_type = cst.ImportFrom
    resolver = context.resolver

    def visit(node: Any) -> None:
        node_type = type(node)
        if node_type is call_type:
            lifecycle.on_call(node, ancestors)
            frameworks.on_call(node)
        elif node_type in scope_types:
            lifecycle.enter_scope(node)
            if node_type is function_type:
                frameworks.enter_function(node)
                resolver.enter_function()
            elif node_type is class_type:
                frameworks.enter_class(node)
        elif node_type is assign_type:
            lifecycle.on_assign(node)
        elif node_type is ann_assign_type:
            lifecycle.on_ann_assign(node)
        elif node_type is import_from_type:
            resolver.on_import_from(node)
        elif node_type is yield_type:
            lifecycle.on_yield()
        elif node_type is global_type:
            frameworks.on_global(node)
            lifecycle.on_global(node)
        elif node_type in try_types:
            lifecycle.enter_try()
        elif node_type is with_type:
            lifecycle.on_with(node)
        callbacks = visit_table.get(node_type)
        if callbacks:
            for callback in callbacks:
                _call_rule(callback, node, context)
        ancestors.append(node)

    def leave(node: Any) -> None:
        ancestors.pop()
        node_type = type(node)
        if node_type in scope_types:
            lifecycle.leave_scope(node)
            if node_type is function_type:
                frameworks.leave_function()
                resolver.leave_function()
            elif node_type is class_type:
                frameworks.leave_class()
        elif node_type in try_types:
            lifecycle.leave_try()
        callbacks = leave_table.get(node_type)
        if callbacks:
            for callback in callbacks:
                _call_rule(callback, node, context)

    traverse(module, visit, leave)
    return context


class _NoFrameworks:
    """The framework collector's hooks, doing nothing: no enabled rule reads its facts."""

    def on_call(self, node: Any) -> None: ...

    def enter_function(self, node: Any) -> None: ...

    def enter_class(self, node: Any) -> None: ...

    def on_global(self, node: Any) -> None: ...

    def leave_function(self) -> None: ...

    def leave_class(self) -> None: ...


_NO_FRAMEWORKS = _NoFrameworks()


def _call_rule(callback: Callable[[Any], None], node: "cst.CSTNode", context: "FileContext") -> None:
    """One rule's callback. A crash in it (a bug in sessionlint) disables that rule for the
    rest of this file and is recorded with the rule's code; the other rules go on."""
    rule: Rule = getattr(callback, "__self__")
    if rule.crashed is not None:
        return
    try:
        callback(node)
    except Exception as error:
        if os.environ.get("SESSIONLINT_STRICT") == "1":
            raise
        _LOG.debug("rule %s crashed on %s", rule.code, context.path, exc_info=True)
        rule.crashed = f"{type(error).__name__}: {error}"
        context.crashes.append((rule.code, rule.crashed))


def diagnostics_with_plans(context: "FileContext") -> List[Tuple[Diagnostic, Optional["FixPlan"]]]:
    """The context's reports as diagnostics (positions resolved once, for reported nodes
    only), each with its fix plan (or None), in source order."""
    reports = context.reports
    if not reports:
        return []
    positions = context.positions
    wanted: List[cst.CSTNode] = [r.node for r in reports]
    for report in reports:
        for ref in report.refs.values():
            wanted.append(ref[1] if isinstance(ref, tuple) else ref)
    positions.resolve(wanted)
    found = []
    for report in reports:
        (start_line, start_column), (end_line, end_column) = positions.span(report.node)
        lines: Dict[str, int] = {}
        for key, ref in report.refs.items():
            if isinstance(ref, tuple):
                lines[key] = positions.span(ref[1])[1][0]
            else:
                lines[key] = positions.line(ref)
        message = report.message.format(**lines) if lines else report.message
        diagnostic = Diagnostic(
            code=report.code,
            name=report.name,
            message=message,
            path=context.path,
            start=Location(start_line, start_column + 1),
            end=Location(end_line, end_column + 1),
            help=report.help,
            fix=report.fix.as_fix() if report.fix is not None else None,
            confidence=report.confidence,
        )
        found.append((diagnostic, report.fix))
    found.sort(key=lambda pair: pair[0].sort_key)
    return found


