"""Inline suppressions, applied by the engine after the rules ran (rules never read comments).

Forms, on the finding's start line or on the first line of the statement it belongs to:
- `# noqa: SL001` or `# noqa: SL001, SL003` (codes of other tools in the list are ignored);
- `# sessionlint: ignore[SL001,SL003]`;
- a bare `# noqa` or `# sessionlint: ignore`: every code.

Suppressions that suppress nothing are reported as SL100 (unused-suppression) when SL100 is
selected. A bare `# noqa` is never reported: it is as likely to be there for another tool.
"""

import io
import re
import tokenize
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from sessionlint.diagnostics import Diagnostic, Location

UNUSED_CODE = "SL100"
UNUSED_NAME = "unused-suppression"

_NOQA = re.compile(r"#\s*noqa(?P<sep>\s*:\s*(?P<codes>[A-Za-z]+[0-9]+(?:\s*[,\s]\s*[A-Za-z]+[0-9]+)*))?", re.I)
_IGNORE = re.compile(r"#\s*sessionlint\s*:\s*ignore(?:\s*\[(?P<codes>[^\]]*)\])?", re.I)
_CODE = re.compile(r"[A-Za-z]+[0-9]+")
# Cheap test on the bytes before any tokenizing.
_MARKERS = (b"noqa", b"NOQA", b"sessionlint:", b"sessionlint :")


@dataclass(frozen=True)
class Suppression:
    line: int
    column: int  # 1-based, where the comment's directive starts
    codes: Optional[FrozenSet[str]]  # None: every code
    explicit: bool  # `sessionlint: ignore[...]` or `noqa: SL...` (not a bare noqa)


@dataclass
class FileSuppressions:
    by_line: Dict[int, List[Suppression]]
    statement_start: Dict[int, int]  # physical line -> first line of its logical line

    def lines_for(self, line: int) -> Tuple[int, ...]:
        first = self.statement_start.get(line, line)
        return (line,) if first == line else (line, first)


def has_markers(data: bytes) -> bool:
    return any(marker in data for marker in _MARKERS)


_SL_NOQA = re.compile(rb"(?i)noqa\s*:[^\n]*\bsl[0-9]")


def may_report_unused(data: bytes) -> bool:
    """Whether a file can hold a suppression SL100 would report when no rule reports
    anything in it: a `sessionlint: ignore`, or a `noqa:` naming an SL code (`# noqa:
    E501` belongs to another tool, a bare `# noqa` is never reported)."""
    return has_markers(data) and (b"sessionlint" in data or bool(_SL_NOQA.search(data)))


def parse(data: bytes) -> Optional[FileSuppressions]:
    """The suppression comments of a file and its logical-line starts; None when the file
    has no suppression comment at all."""
    if not has_markers(data):
        return None
    by_line: Dict[int, List[Suppression]] = {}
    starts: Dict[int, int] = {}
    comments: List[Tuple[int, int, str]] = []
    try:
        logical_start: Optional[int] = None
        for token in tokenize.tokenize(io.BytesIO(data).readline):
            kind, line = token.type, token.start[0]
            if kind == tokenize.COMMENT:
                comments.append((line, token.start[1], token.string))
            if kind in (tokenize.ENCODING, tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
                if kind == tokenize.NL and logical_start is not None:
                    starts.setdefault(line, logical_start)
                continue
            if kind in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if logical_start is not None:
                    for number in range(logical_start, token.end[0] + 1):
                        starts.setdefault(number, logical_start)
                logical_start = None
                continue
            if logical_start is None:
                logical_start = line
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError, ValueError):
        comments = _comments_by_regex(data)
    for line, column, text in comments:
        found = _directive(text)
        if found is not None:
            offset, codes, explicit = found
            by_line.setdefault(line, []).append(Suppression(line, column + offset + 1, codes, explicit))
    if not by_line:
        return None
    return FileSuppressions(by_line, starts)


def _comments_by_regex(data: bytes) -> List[Tuple[int, int, str]]:
    """For files the tokenizer rejects: `#` comments found line by line (good enough: such
    files have a syntax error and no rule findings)."""
    text = data.decode("utf-8", errors="replace")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        index = line.find("#")
        if index >= 0:
            found.append((number, index, line[index:]))
    return found


def _directive(comment: str) -> Optional[Tuple[int, Optional[FrozenSet[str]], bool]]:
    """(offset in the comment, codes or None for all, explicit?) of the first directive."""
    best = None
    for pattern in (_NOQA, _IGNORE):
        for match in pattern.finditer(comment):
            if best is None or match.start() < best.start():
                best = match
            break
    if best is None:
        return None
    codes_text = best.group("codes")
    if best.re is _NOQA:
        if best.group("sep") is None:
            return best.start(), None, False
        codes = frozenset(code.upper() for code in _CODE.findall(codes_text or ""))
        return best.start(), codes, True
    if codes_text is None or not codes_text.strip():
        return best.start(), None, True
    return best.start(), frozenset(code.upper() for code in _CODE.findall(codes_text)), True


def apply(
    path: str,
    diagnostics: Sequence[Diagnostic],
    suppressions: Optional[FileSuppressions],
    enabled: FrozenSet[str],
    report_unused: bool,
) -> Tuple[Tuple[Diagnostic, ...], int]:
    """The diagnostics that no suppression covers, plus SL100 findings when asked; and how
    many were suppressed."""
    if suppressions is None:
        return tuple(diagnostics), 0
    kept: List[Diagnostic] = []
    used: Dict[int, Set[str]] = {}  # id(suppression) -> codes it matched
    suppressed = 0
    for diagnostic in diagnostics:
        match = None
        for line in suppressions.lines_for(diagnostic.start.line):
            for suppression in suppressions.by_line.get(line, ()):
                if suppression.codes is None or diagnostic.code in suppression.codes:
                    match = suppression
                    break
            if match is not None:
                break
        if match is None:
            kept.append(diagnostic)
        else:
            suppressed += 1
            used.setdefault(id(match), set()).add(diagnostic.code)
    if report_unused:
        for suppressions_on_line in suppressions.by_line.values():
            for suppression in suppressions_on_line:
                kept.extend(_unused(path, suppression, used.get(id(suppression), set()), enabled))
    return tuple(kept), suppressed


def _unused(path: str, suppression: Suppression, matched: Set[str], enabled: FrozenSet[str]) -> List[Diagnostic]:
    if not suppression.explicit:
        return []
    if suppression.codes is None:
        unused = [] if matched else ["all"]
    else:
        # Only our own codes that are enabled: `# noqa: E501` belongs to another tool.
        unused = sorted(c for c in suppression.codes if c in enabled and c not in matched)
    if not unused:
        return []
    listed = ", ".join(f"`{c}`" for c in unused)
    message = (
        "unused suppression: nothing is reported on this line"
        if unused == ["all"]
        else f"unused suppression of {listed}: no such finding on this line"
    )
    start = Location(suppression.line, suppression.column)
    return [
        Diagnostic(
            code=UNUSED_CODE,
            name=UNUSED_NAME,
            message=message,
            path=path,
            start=start,
            end=start,
            help="Remove the unused code from the comment, or the comment",
        )
    ]
