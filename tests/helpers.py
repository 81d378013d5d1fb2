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

from sessionlint.api import lint_sources
from sessionlint.config import Settings, parse_target_version
from sessionlint.diagnostics import Diagnostic, FileResult

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
        target = config.get("target-sqlalchemy")
        return Settings(
            select=tuple(config.get("select", ())) or ("ALL",),
            ignore=tuple(config.get("ignore", ())),
            target_sqlalchemy=parse_target_version("target-sqlalchemy", target, "fixture") if target is not None else None,
        )
    return Settings(select=("ALL",))


def lint_files(paths: Sequence[str], settings: Settings, prefilter: bool = True) -> Dict[str, FileResult]:
    sources = {}
    for path in paths:
        with open(path, "rb") as handle:
            sources[os.path.normpath(path)] = handle.read()
    from dataclasses import replace

    return lint_sources(sources, replace(settings, prefilter=prefilter))


def lint_text(text: str, path: str = "example.py", select: Sequence[str] = ("ALL",)) -> List[Diagnostic]:
    result = lint_sources({path: text}, Settings(select=tuple(select)))[path]
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


def fix_bytes(data: bytes, path: str = "example.py", unsafe: bool = False, settings: Optional[Settings] = None):
    """Run the fix rounds on `data` as the CLI does (all rules, unless `settings` say):
    (fixed bytes, remaining diagnostics, fixes applied per code)."""
    from sessionlint.api import fix_source

    return fix_source(data, path, settings or Settings(select=("ALL",)), unsafe=unsafe)


def verify_fix(original: bytes, fixed: bytes, path: str = "example.py", unsafe: bool = False, settings: Optional[Settings] = None) -> None:
    """A fix's result compiles, a second fix is a no-op, the re-lint finds none of the codes
    that were fixed, and comments, the encoding and the newline style survive."""
    import io
    import tokenize

    compile(fixed, path, "exec", dont_inherit=True)
    again = fix_bytes(fixed, path, unsafe, settings)
    assert again.source == fixed, "a second --fix changed the file again"
    first = fix_bytes(original, path, unsafe, settings)
    from sessionlint.fixes.apply import is_applied_fix

    remaining = {d.code for d in again.diagnostics if is_applied_fix(d, unsafe)}
    assert not (remaining & set(first.fixed)), f"fixed codes still reported: {remaining & set(first.fixed)}"

    def comments(data: bytes) -> List[str]:
        return sorted(t.string for t in tokenize.tokenize(io.BytesIO(data).readline) if t.type == tokenize.COMMENT)

    assert comments(original) == comments(fixed), "a comment was lost or changed"
    assert tokenize.detect_encoding(io.BytesIO(original).readline)[0] == tokenize.detect_encoding(io.BytesIO(fixed).readline)[0]
    assert original.startswith(b"\xef\xbb\xbf") == fixed.startswith(b"\xef\xbb\xbf"), "the BOM changed"
    assert (b"\r\n" in original) == (b"\r\n" in fixed), "the newline style changed"
    assert fixed.endswith(b"\n") == original.endswith(b"\n"), "the final newline changed"
