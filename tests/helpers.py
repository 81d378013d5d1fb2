"""Shared test helpers: lint files or sources through the real engine."""

import ast
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Set, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older Pythons only
    tomllib = None

from sessionlint.config import Settings
from sessionlint.diagnostics import Diagnostic, FileResult
from sessionlint.engine import build_project, lint_source
from sessionlint.registry import rule_classes, select_rules

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
EXPECT_RE = re.compile(r"#\s*expect:\s*(.+?)\s*$")
CODE_RE = re.compile(r"^(SL\d{3})(?::(\d+))?$")

Expectation = Tuple[str, int, Optional[int]]  # code, line, column or None


def parse_expectations(text: str) -> List[Expectation]:
    expected: List[Expectation] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = EXPECT_RE.search(line)
        if not match:
            continue
        for item in match.group(1).split(","):
            item = item.strip()
            code = CODE_RE.match(item)
            assert code, f"line {number}: bad expectation {item!r}"
            column = int(code.group(2)) if code.group(2) else None
            expected.append((code.group(1), number, column))
    return expected


def fixture_settings(text: str) -> Settings:
    first = text.splitlines()[0] if text else ""
    if first.startswith("# fixture-config:"):
        body = first[len("# fixture-config:"):]
        if tomllib is not None:
            config = tomllib.loads(body)
        else:  # Python < 3.11: the one-line form `key = [...]` is a Python literal too
            key, _, value = body.partition("=")
            config = {key.strip(): ast.literal_eval(value.strip())}
        return Settings(select=tuple(config.get("select", ())) or ("ALL",), ignore=tuple(config.get("ignore", ())))
    return Settings(select=("ALL",))


def lint_files(paths: Sequence[str], settings: Settings, prefilter: bool = True) -> Dict[str, FileResult]:
    sources = {}
    for path in paths:
        with open(path, "rb") as handle:
            sources[os.path.normpath(path)] = handle.read()
    project = build_project(sources, settings)
    classes = rule_classes(select_rules(settings.select, settings.ignore))
    return {path: lint_source(data, path, project, classes, prefilter) for path, data in sources.items()}


def lint_text(text: str, path: str = "example.py", select: Sequence[str] = ("ALL",)) -> List[Diagnostic]:
    settings = Settings(select=tuple(select))
    data = text.encode()
    project = build_project({path: data}, settings)
    classes = rule_classes(select_rules(settings.select, settings.ignore))
    result = lint_source(data, path, project, classes)
    assert result.error is None, result.error
    return list(result.diagnostics)


def compare(expected: List[Expectation], found: Sequence[Diagnostic]) -> Tuple[Set, Set]:
    """(missing, unexpected): columns are compared where the expectation gives one."""
    want = {(c, line) for c, line, _ in expected}
    got = {(d.code, d.start.line) for d in found}
    missing = {e for e in want if e not in got}
    unexpected = {g for g in got if g not in want}
    for code, line, column in expected:
        if column is None:
            continue
        columns = {d.start.column for d in found if d.code == code and d.start.line == line}
        if columns and column not in columns:
            missing.add((code, line, column))
            unexpected |= {(code, line, c) for c in columns}
    return missing, unexpected
