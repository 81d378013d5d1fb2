"""Inline suppressions, applied by the engine after the rules ran (rules never read comments).

Forms, on the finding's start line or on the first line of the statement it belongs to:
- `# noqa: SL001` or `# noqa: SL001, SL003` (codes of other tools in the list are ignored);
- `# sessionlint: ignore[SL001,SL003]`;
- a bare `# noqa` or `# sessionlint: ignore`: every code;
- on a line of its own, anywhere in the file, `# sessionlint: noqa` (every finding of the
  file) or `# sessionlint: noqa: SL001, SL003` (those codes in the whole file), as Ruff's
  `# ruff: noqa`.

Suppressions that suppress nothing are reported as SL100 (unused-suppression) when SL100 is
selected. A bare `# noqa` is never reported: it is as likely to be there for another tool.
"""

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from sessionlint.diagnostics import Applicability, Diagnostic, Fix, Location

UNUSED_CODE = "SL100"
UNUSED_NAME = "unused-suppression"

NOQA = re.compile(r"#\s*noqa(?P<sep>\s*:\s*(?P<codes>[A-Za-z]+[0-9]+(?:\s*[,\s]\s*[A-Za-z]+[0-9]+)*))?", re.I)
IGNORE = re.compile(r"#\s*sessionlint\s*:\s*ignore(?:\s*\[(?P<codes>[^\]]*)\])?", re.I)
_CODE = re.compile(r"[A-Za-z]+[0-9]+")
FILE_NOQA = re.compile(r"^#\s*sessionlint\s*:\s*noqa(?P<sep>\s*:\s*(?P<codes>[A-Za-z]+[0-9]+(?:\s*[,\s]\s*[A-Za-z]+[0-9]+)*))?\s*$", re.I)
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
    whole_file: List[Suppression] = field(default_factory=list)  # `# sessionlint: noqa[: codes]`
    # A line inside a multi-line string -> the string's last line, the first that can end
    # with a comment (as in Ruff).
    string_end: Dict[int, int] = field(default_factory=dict)

    def lines_for(self, line: int) -> Tuple[int, ...]:
        first = self.statement_start.get(line, line)
        found = (line,) if first == line else (line, first)
        end = self.string_end.get(line)
        return found if end is None else found + (end,)


def has_markers(data: bytes) -> bool:
    return any(marker in data for marker in _MARKERS)


_SL_NOQA = re.compile(rb"(?i)noqa\s*:[^\n]*\bsl[0-9]")


def may_report_unused(data: bytes) -> bool:
    """Whether a file can hold a suppression SL100 would report when no rule reports
    anything in it: a `sessionlint: ignore`, or a `noqa:` naming an SL code (`# noqa:
    E501` belongs to another tool, a bare `# noqa` is never reported)."""
    if b"sessionlint" in data:
        return has_markers(data)
    # (has_markers without `sessionlint`, one scan fewer for the many files with neither)
    return (b"noqa" in data or b"NOQA" in data) and bool(_SL_NOQA.search(data))


def parse(data: bytes) -> Optional[FileSuppressions]:
    """The suppression comments of a file and its logical-line starts; None when the file
    has no suppression comment at all."""
    if not has_markers(data):
        return None
    by_line: Dict[int, List[Suppression]] = {}
    starts: Dict[int, int] = {}
    comments: List[Tuple[int, int, str]] = []
    code_lines: Set[int] = set()  # lines with a token that is not a comment
    string_end: Dict[int, int] = {}
    try:
        logical_start: Optional[int] = None
        for token in tokenize.tokenize(io.BytesIO(data).readline):
            kind, line = token.type, token.start[0]
            if kind == tokenize.COMMENT:
                comments.append((line, token.start[1], token.string))
            elif kind not in (tokenize.ENCODING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
                code_lines.update(range(token.start[0], token.end[0] + 1))
                for number in range(token.start[0], token.end[0]):
                    string_end[number] = token.end[0]
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
        comments, code_lines = _comments_by_regex(data)
    whole_file: List[Suppression] = []
    for line, column, text in comments:
        if line not in code_lines:
            match = FILE_NOQA.match(text)
            if match is not None:
                codes = frozenset(c.upper() for c in _CODE.findall(match.group("codes") or "")) if match.group("sep") else None
                whole_file.append(Suppression(line, column + 1, codes, True))
                continue
        found = _directive(text)
        if found is not None:
            offset, codes, explicit = found
            by_line.setdefault(line, []).append(Suppression(line, column + offset + 1, codes, explicit))
    if not by_line and not whole_file:
        return None
    return FileSuppressions(by_line, starts, whole_file, string_end)


def _comments_by_regex(data: bytes) -> Tuple[List[Tuple[int, int, str]], Set[int]]:
    """For files the tokenizer rejects: `#` comments found line by line (good enough: such
    files have a syntax error and no rule findings), and the lines with code before one."""
    text = data.decode("utf-8", errors="replace")
    found = []
    code_lines = set()
    for number, line in enumerate(text.splitlines(), start=1):
        index = line.find("#")
        if index >= 0:
            found.append((number, index, line[index:]))
        if line[: index if index >= 0 else len(line)].strip():
            code_lines.add(number)
    return found, code_lines


def _directive(comment: str) -> Optional[Tuple[int, Optional[FrozenSet[str]], bool]]:
    """(offset in the comment, codes or None for all, explicit?) of the first directive."""
    best = None
    for pattern in (NOQA, IGNORE):
        for match in pattern.finditer(comment):
            if best is None or match.start() < best.start():
                best = match
            break
    if best is None:
        return None
    codes_text = best.group("codes")
    if best.re is NOQA:
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
        for suppression in suppressions.whole_file:
            if suppression.codes is None or diagnostic.code in suppression.codes:
                match = suppression
                break
        for line in suppressions.lines_for(diagnostic.start.line) if match is None else ():
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
        for suppression in suppressions.whole_file:
            kept.extend(_unused(path, suppression, used.get(id(suppression), set()), enabled, whole_file=True))
    return tuple(kept), suppressed


def _unused(path: str, suppression: Suppression, matched: Set[str], enabled: FrozenSet[str], whole_file: bool = False) -> List[Diagnostic]:
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
    where = "in this file" if whole_file else "on this line"
    message = (
        f"unused suppression: nothing is reported {where}"
        if unused == ["all"]
        else f"unused suppression of {listed}: no such finding {where}"
    )
    start = Location(suppression.line, suppression.column)
    title = "Remove the unused suppression" if unused == ["all"] or unused == sorted(suppression.codes or ()) else f"Remove {listed} from the comment"
    return [
        Diagnostic(
            code=UNUSED_CODE,
            name=UNUSED_NAME,
            message=message,
            path=path,
            start=start,
            end=start,
            help="Remove the unused code from the comment, or the comment",
            fix=Fix(Applicability.SAFE, title),
        )
    ]


def unused_codes(diagnostic: Diagnostic) -> Optional[List[str]]:
    """The codes an SL100 finding says are unused (read back from its message, which
    `_unused` writes); None when the whole directive suppresses nothing."""
    head = diagnostic.message.split(":", 1)[0]
    return re.findall(r"`([A-Z]+[0-9]+)`", head) if "`" in head else None
