"""Text positions and edits as the language server protocol has them, without pygls: lines
split at LSP's line ends only, 0-based (line, code point) positions, the one replacement
that turns a text into a fixed text, and the edit that adds `# noqa: SLxxx` to a line."""

import io
import re
import tokenize
from typing import List, Optional, Set, Tuple

# (line, code point), 0-based
Point = Tuple[int, int]
# (start, end, new text)
TextEdit = Tuple[Point, Point, str]

# LSP ends lines at \n, \r\n and \r only (str.splitlines also splits at \x0c, \u2028...).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_NOQA_CODES = re.compile(r"#\s*noqa\s*:\s*[A-Za-z]+[0-9]+(?:\s*,\s*[A-Za-z]+[0-9]+)*", re.I)


def split_lines(text: str) -> List[str]:
    """The lines of `text`, each with its line end."""
    return _LINE.findall(text)


def _content(line: str) -> str:
    return line.rstrip("\r\n")


def replacement(old: str, new: str) -> Optional[TextEdit]:
    """One edit of whole lines that turns `old` into `new` (None when they are equal): the
    lines both share at the start and at the end are left alone, so an editor keeps its
    cursor, folds and marks there."""
    if old == new:
        return None
    before, after = split_lines(old), split_lines(new)
    head = 0
    while head < min(len(before), len(after)) and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < min(len(before), len(after)) - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    end_line = len(before) - tail
    text = "".join(after[head : len(after) - tail])
    if end_line == len(before) and before and not before[-1].endswith(("\n", "\r")):
        # the last line has no line end: the range ends at its last character
        return (head, 0), (end_line - 1, len(before[-1])), text
    return (head, 0), (end_line, 0), text


def noqa_edit(text: str, line: int, code: str) -> Optional[TextEdit]:
    """The edit that suppresses `code` on the 0-based `line` (a finding's start line):
    `  # noqa: SL001` at the line's end, or the code added to a `# noqa: ...` comment
    already there. None when no comment can end that line (it ends inside a string or after
    a backslash) or the code is already there."""
    lines = split_lines(text)
    closed = _lines_ending_in_code(text)
    if line >= len(lines) or (closed is not None and line not in closed):
        return None
    content = _content(lines[line])
    if content.rstrip().endswith("\\"):
        return None
    existing = _NOQA_CODES.search(content)
    if existing is not None:
        if code.upper() in (c.upper() for c in re.findall(r"[A-Za-z]+[0-9]+", existing.group(0)[1:])):
            return None
        return (line, existing.end()), (line, existing.end()), f", {code}"
    stripped = content.rstrip(" \t")
    return (line, len(stripped)), (line, len(content)), f"  # noqa: {code}"


def _lines_ending_in_code(text: str) -> Optional[Set[int]]:
    """The 0-based lines whose end is not inside a string (where a comment may go), or None
    when the text does not tokenize (then every line is taken to be such a line)."""
    inside: Set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            start_row, end_row = token.start[0], token.end[0]
            if end_row > start_row and token.type != tokenize.NL and token.type != tokenize.NEWLINE:
                inside.update(range(start_row - 1, end_row - 1))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return set(range(len(split_lines(text)) + 1)) - inside
