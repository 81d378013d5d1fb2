"""Editing suppression comments: `--add-noqa` and the fix of SL100 (unused suppression).

`--add-noqa`: a `# noqa: SLxxx` comment on every line with a finding, merged with the
comment already there, so that the next run reports nothing. For adopting sessionlint on a
code base whose findings are to be fixed later (a baseline does the same without touching
the files).

The comment goes on the finding's start line, or, when that line cannot end with a comment
(it ends inside a multi-line string), on the first line of the statement or the string's
last line, which suppressions also cover. The text is edited in the file's own encoding
and newline style; a file whose edited text would not parse, or whose directives would not
cover its findings, is left as it was.
"""

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from sessionlint.diagnostics import Diagnostic
from sessionlint.suppression import FILE_NOQA, IGNORE, NOQA, UNUSED_CODE, parse, unused_codes

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass
class Placement:
    """The lines of a file that can end with a comment, their comments and statement starts."""

    blocked: Set[int] = field(default_factory=set)
    comments: Dict[int, Tuple[int, str]] = field(default_factory=dict)  # line -> (column, text)
    starts: Dict[int, int] = field(default_factory=dict)  # line -> first line of its statement
    string_end: Dict[int, int] = field(default_factory=dict)  # line -> last line of a token spanning it


def _placement(data: bytes) -> Optional[Placement]:
    found = Placement()
    logical_start: Optional[int] = None
    try:
        for token in tokenize.tokenize(io.BytesIO(data).readline):
            kind, (first, column), last = token.type, token.start, token.end[0]
            if kind == tokenize.COMMENT:
                found.comments[first] = (column, token.string)
                continue
            if kind in (tokenize.ENCODING, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
                continue
            if kind in (tokenize.NEWLINE, tokenize.ENDMARKER):
                for number in range(logical_start or first, last + 1):
                    found.starts.setdefault(number, logical_start or number)
                logical_start = None
                continue
            if logical_start is None:
                logical_start = first
            for number in range(first, last):  # a token that runs past the end of a line
                found.blocked.add(number)
                found.string_end[number] = last
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    return found


def _with_codes(comment: str, codes: Sequence[str]) -> str:
    """`comment` with `codes` added to its noqa or ignore directive, or a noqa appended."""
    noqa = NOQA.search(comment)
    if noqa is not None and noqa.group("sep") is None:
        return comment  # a bare `# noqa` covers every code already
    if noqa is not None:
        present = {c.upper() for c in re.findall(r"[A-Za-z]+[0-9]+", noqa.group("codes"))}
        added = [c for c in codes if c not in present]
        end = noqa.end("codes")
        return comment[:end] + "".join(f", {c}" for c in added) + comment[end:]
    ignore = IGNORE.search(comment)
    if ignore is not None and ignore.group("codes") is not None:
        present = {c.strip().upper() for c in ignore.group("codes").split(",") if c.strip()}
        added = [c for c in codes if c not in present]
        end = ignore.end("codes")
        return comment[:end] + "".join(f",{c}" for c in added) + comment[end:]
    if ignore is not None:
        return comment
    return f"{comment.rstrip()}  # noqa: {', '.join(codes)}"


def add_noqa(data: bytes, diagnostics: Sequence[Diagnostic]) -> Tuple[bytes, int, List[int]]:
    """The text with the directives added, how many lines got one, and the start lines of the
    findings no comment could be placed for."""
    wanted: Dict[int, List[str]] = {}
    placed: List[Diagnostic] = []
    unplaced: List[int] = []
    found = _placement(data)
    if found is None:
        return data, 0, sorted({d.start.line for d in diagnostics if d.code != UNUSED_CODE})
    for d in diagnostics:
        if d.code == UNUSED_CODE:  # a directive for the directive's own finding: never
            continue
        line = d.start.line
        candidates = (line, found.starts.get(line, line), found.string_end.get(line, line))
        target = next((n for n in candidates if n not in found.blocked), None)
        if target is None:
            unplaced.append(line)
            continue
        placed.append(d)
        if d.code not in wanted.setdefault(target, []):
            wanted[target].append(d.code)
    if not wanted:
        return data, 0, unplaced
    encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    text = data.decode(encoding)
    lines = _LINE.findall(text)
    for number, codes in wanted.items():
        raw = lines[number - 1]
        body = raw.rstrip("\r\n")
        ending = raw[len(body):]
        if number in found.comments:
            column, comment = found.comments[number]
            # The tokenizer's column counts characters of the decoded line, as `body` does.
            body = body[:column] + _with_codes(comment, sorted(codes))
        else:
            body = f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}"
        lines[number - 1] = body + ending
    fixed = "".join(lines).encode(encoding)
    if not _covers(fixed, placed):
        return data, 0, sorted({d.start.line for d in diagnostics if d.code != UNUSED_CODE})
    return fixed, len(wanted), unplaced


def _covers(data: bytes, diagnostics: Sequence[Diagnostic]) -> bool:
    """Whether `data` still parses and its directives cover every placed finding."""
    try:
        ast.parse(data)
    except (SyntaxError, ValueError):
        return False
    suppressions = parse(data)
    if suppressions is None:
        return False
    for d in diagnostics:
        lines = suppressions.lines_for(d.start.line)
        if not any(s.codes is None or d.code in s.codes for n in lines for s in suppressions.by_line.get(n, ())):
            return False
    return True


def remove_unused(data: bytes, diagnostics: Sequence[Diagnostic]) -> bytes:
    """SL100's fix: the unused codes of each reported directive removed from it, the whole
    directive when none is left (and its line when it stood alone). Only comment text
    changes; the original is returned when the result would not parse."""
    encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    lines = _LINE.findall(data.decode(encoding))
    for d in sorted((d for d in diagnostics if d.code == UNUSED_CODE), key=lambda d: (d.start.line, -d.start.column)):
        if not 1 <= d.start.line <= len(lines):
            continue
        raw = lines[d.start.line - 1]
        body = raw.rstrip("\r\n")
        column = d.start.column - 1
        found = _without(body[column:], unused_codes(d))
        if found is None:
            continue
        edited, whole = found
        prefix, ending = body[:column], raw[len(body) :]
        if not whole:
            lines[d.start.line - 1] = prefix + edited + ending
        elif edited:  # the directive goes, a comment that followed it stays
            lines[d.start.line - 1] = (prefix.rstrip() + "  " if prefix.strip() else prefix) + edited + ending
        elif prefix.strip():
            lines[d.start.line - 1] = prefix.rstrip() + ending
        else:
            lines[d.start.line - 1] = ""  # a directive on a line of its own
    fixed = "".join(lines).encode(encoding)
    try:
        ast.parse(fixed)
    except (SyntaxError, ValueError):
        return data
    return fixed


def _without(comment: str, unused: Optional[List[str]]) -> Optional[Tuple[str, bool]]:
    """`comment` (starting at a directive) without the `unused` codes (None: all of them),
    and whether the whole directive went."""
    for pattern, separator in ((FILE_NOQA, ", "), (NOQA, ", "), (IGNORE, ",")):
        match = pattern.match(comment)
        if match is None:
            continue
        codes = match.group("codes")
        kept = [] if codes is None or unused is None else [c for c in re.split(r"[\s,]+", codes.strip()) if c and c.upper() not in unused]
        if kept:
            return comment[: match.start("codes")] + separator.join(kept) + comment[match.end("codes") :], False
        return comment[match.end() :].lstrip(), True
    return None
