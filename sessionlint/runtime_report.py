"""`sessionlint --runtime-report FILE.json`: the static findings against what a test run
recorded with `pytest --sessionlint-leaks --sessionlint-leaks-report FILE.json`.

Two lists come out:
- leaks at run time where sessionlint was silent: missed findings, each a fixture to write;
- findings whose code ran during the tests and never leaked: candidate false positives.

A recorded site keeps the first frames of the user's code (innermost first); a finding matches
a site when one of those frames lies in the finding's span. A session opened in a helper that
returns it is recorded in the helper and reported by sessionlint at its caller, one frame out.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sessionlint.api import lint_paths
from sessionlint.diagnostics import Diagnostic, display_path
from sessionlint.pytest_plugin.records import Frame, RecordedRun, RecordedSite, read_report

# The rules whose findings say "this leaks": a runtime leak at their site is expected.
# SL002 (closed on the normal path only) and SL009 (a module-level session) describe leaks
# too, but a test that never raises there, or a session made at import time, shows none.
LEAK_RULES = ("SL001", "SL002", "SL009", "SL010")
# The rules whose findings a run argues against, and the kinds opened at their site that
# do: a session or connection that never leaked there, or, for SL006 (a synchronous factory
# entered with `async with`), an AsyncSession opened there.
JUDGED_RULES = {"SL001": ("session", "async session"), "SL006": ("async session",), "SL010": ("connection",)}


@dataclass(frozen=True)
class Unconfirmed:
    """A static finding whose code opened `opened` resources during the tests, none leaked."""

    diagnostic: Diagnostic
    opened: int


@dataclass(frozen=True)
class CrossCheck:
    run: RecordedRun
    missed: Tuple[RecordedSite, ...]
    unconfirmed: Tuple[Unconfirmed, ...]
    findings: int  # static findings of LEAK_RULES and JUDGED_RULES in the linted files


def _matches(diagnostic: Diagnostic, real_path: str, frames: Sequence[Frame]) -> bool:
    return any(path == real_path and diagnostic.start.line <= line <= diagnostic.end.line for path, line in frames)


def cross_check(report_path: str, paths: Sequence[str] = ()) -> CrossCheck:
    """Lint `paths` (default: the run's rootdir) and compare; ReportError for a bad report."""
    run = read_report(report_path)
    result = lint_paths(list(paths) or [run.rootdir])
    findings = [d for d in result.diagnostics if d.code in LEAK_RULES or d.code in JUDGED_RULES]
    real: Dict[str, str] = {}
    for diagnostic in findings:
        real.setdefault(diagnostic.path, os.path.realpath(diagnostic.path))
    sites = [(site, tuple((os.path.realpath(path), line) for path, line in site.stack)) for site in run.sites]
    missed = tuple(
        site for site, frames in sites if site.leaked and not any(d.code in LEAK_RULES and _matches(d, real[d.path], frames) for d in findings)
    )
    unconfirmed: List[Unconfirmed] = []
    for diagnostic in findings:
        kinds = JUDGED_RULES.get(diagnostic.code)
        if kinds is None:
            continue
        ran = [site for site, frames in sites if site.kind in kinds and _matches(diagnostic, real[diagnostic.path], frames)]
        if ran and not any(site.leaked for site in ran):
            unconfirmed.append(Unconfirmed(diagnostic, sum(site.opened for site in ran)))
    return CrossCheck(run, missed, tuple(unconfirmed), len(findings))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _shown(path: str, base: Optional[str] = None) -> str:
    relative = os.path.relpath(path, base or os.getcwd())
    return display_path(path if relative.startswith(os.pardir) else relative)


def describe(check: CrossCheck) -> List[str]:
    """The report as lines of text."""
    opened = sum(site.opened for site in check.run.sites)
    leaked = sum(1 for site in check.run.sites if site.leaked)
    lines = [
        f"Runtime report of {display_path(check.run.rootdir)}: {_count(len(check.run.sites), 'site')} opened {opened} sessions and connections, "
        f"{leaked} leaked; {_count(check.findings, 'static finding')} of {', '.join(sorted(set(LEAK_RULES) | set(JUDGED_RULES)))}.",
        "",
        f"Leaks sessionlint did not find ({len(check.missed)}; each should become a fixture):",
    ]
    for site in check.missed:
        example = f", e.g. {site.tests[0]}" if site.tests else ""
        callers = ", ".join(f"{_shown(path)}:{line}" for path, line in site.stack[1:])
        lines.append(f"  {_shown(site.stack[0][0])}:{site.stack[0][1]}: {site.kind} leaked {site.leaked} of {_count(site.opened, 'time')} ({site.rule}){example}")
        if callers:
            lines.append(f"    called from {callers}")
    if not check.missed:
        lines.append("  none")
    lines.append("")
    lines.append(f"Findings whose code ran and never leaked ({len(check.unconfirmed)}; candidate false positives to review):")
    for item in check.unconfirmed:
        diagnostic = item.diagnostic
        lines.append(
            f"  {_shown(diagnostic.path)}:{diagnostic.start.line}:{diagnostic.start.column}: {diagnostic.code} {diagnostic.message} "
            f"(opened {_count(item.opened, 'time')}, never leaked)"
        )
    if not check.unconfirmed:
        lines.append("  none")
    return lines
