"""Human output: `path:line:col: CODE message`, a source frame with the span underlined, a
help line, and a summary. Paths, messages and source are rich `Text`, never markup."""

import io
import tokenize
from typing import Any, Dict, List, Optional, TextIO

from sessionlint.diagnostics import (
    Diagnostic,
    ErrorKind,
    FileError,
    RunResult,
    display_path,
    is_fixable,
)


def _source_lines(data: Optional[bytes]) -> List[str]:
    if data is None:
        return []
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except (SyntaxError, LookupError):
        encoding = "utf-8"
    try:
        text = data.decode(encoding, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.splitlines()


def _console(stream: TextIO, color: bool):
    from rich.console import Console

    return Console(
        file=stream,
        no_color=not color,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
        soft_wrap=True,
        emoji=False,
        markup=False,
    )


# The control characters rich's Text removes (BEL, BS, VT, FF, CR).
_STRIPPED = {code: None for code in (7, 8, 11, 12, 13)}


class _PlainText:
    """What rich's `Text` prints without color, for output that is not a terminal: the
    text, less the control characters rich removes (tests compare the two)."""

    def __init__(self, text: str = "", style: str = "") -> None:
        self.parts = [text.translate(_STRIPPED)]

    def append(self, text: str, style: str = "") -> "_PlainText":
        self.parts.append(text.translate(_STRIPPED))
        return self

    @property
    def plain(self) -> str:
        return "".join(self.parts)


class _PlainConsole:
    """rich's Console for `_PlainText`, without importing rich (the largest import of a
    warm run). rich expands a tab by the cells its line takes before it: such a line goes
    to rich."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.rich: Any = None

    def print(self, text: Optional[_PlainText] = None) -> None:
        line = text.plain if text is not None else ""
        if "\t" not in line:
            self.stream.write(line + "\n")
            return
        from rich.text import Text

        if self.rich is None:
            self.rich = _console(self.stream, False)
        self.rich.print(Text(line))


def _text_class(color: bool) -> Any:
    if not color:
        return _PlainText
    from rich.text import Text

    return Text


def _header(diagnostic: Diagnostic, unsafe: bool = False, color: bool = True):
    text = _text_class(color)()
    text.append(display_path(diagnostic.path), style="bold")
    text.append(f":{diagnostic.start.line}:{diagnostic.start.column}: ")
    text.append(diagnostic.code, style="bold red")
    if is_fixable(diagnostic, unsafe):
        text.append(" [*]", style="cyan")
    text.append(" ")
    text.append(diagnostic.message)
    return text


def _frame(diagnostic: Diagnostic, lines: List[str], color: bool = True):
    """Up to one line of context either side of the start line, the span underlined."""
    Text = _text_class(color)
    line_number = diagnostic.start.line
    if not (1 <= line_number <= len(lines)):
        return None
    first = max(1, line_number - 1)
    last = min(len(lines), line_number + 1)
    width = len(str(last))
    gutter = " " * width
    frame = Text()
    frame.append(f"{gutter} |\n", style="blue")
    for number in range(first, last + 1):
        raw = lines[number - 1]
        shown = raw.expandtabs(4)
        frame.append(f"{number:>{width}} | ", style="blue")
        frame.append(shown + "\n")
        if number == line_number:
            start = len(raw[: diagnostic.start.column - 1].expandtabs(4))
            if diagnostic.end.line == line_number:
                end = len(raw[: max(diagnostic.end.column - 1, diagnostic.start.column)].expandtabs(4))
            else:
                end = len(shown)
            marks = "^" * max(1, end - start)
            frame.append(f"{gutter} | ", style="blue")
            frame.append(" " * start + marks + " " + diagnostic.code, style="bold red")
            frame.append("\n")
    frame.append(f"{gutter} |", style="blue")
    return frame


def _error_line(error: FileError, color: bool = True):
    text = _text_class(color)()
    text.append(display_path(error.path), style="bold")
    if error.kind is ErrorKind.SYNTAX and error.line:
        text.append(f":{error.line}:{error.column}: ")
    else:
        text.append(": ")
    text.append(error.message, style="red" if error.kind is not ErrorKind.SYNTAX else "")
    return text


def _clean_summary(run: RunResult) -> Optional[str]:
    """The summary of a run that leaves no finding: what was fixed, or that all checks
    passed (not said when a file could not be read or linted)."""
    fixed = run.fixed_count
    if fixed:
        return f"Found {fixed} {'problem' if fixed == 1 else 'problems'} ({fixed} fixed, 0 remaining)."
    if not run.usage_errors and not any(e.kind in (ErrorKind.IO, ErrorKind.INTERNAL) for e in run.errors):
        return "All checks passed!"
    return None


def render(
    run: RunResult,
    stream: TextIO,
    *,
    color: bool = False,
    quiet: bool = False,
    sources: Optional[Dict[str, bytes]] = None,
    unsafe: bool = False,
    **options: object,
) -> None:
    """Write findings and parse failures to `stream` (stdout); the CLI sends I/O and internal
    errors to stderr itself."""
    diagnostics = run.diagnostics
    syntax_errors = [e for e in run.errors if e.kind in (ErrorKind.SYNTAX, ErrorKind.ENCODING)]
    if not diagnostics and not syntax_errors and not color:
        # Nothing but a summary line, in plain text: a clean hook run does not import rich.
        line = None if quiet else _clean_summary(run)
        if line is not None:
            stream.write(line + "\n")
        return
    Text = _text_class(color)
    console = _console(stream, color) if color else _PlainConsole(stream)
    items: list = sorted(
        list(diagnostics) + syntax_errors,
        key=lambda item: (item.path, item.start.line, item.start.column)
        if isinstance(item, Diagnostic)
        else (item.path, item.line, item.column),
    )
    cache: Dict[str, List[str]] = {}
    for item in items:
        if isinstance(item, FileError):
            console.print(_error_line(item, color))
            continue
        console.print(_header(item, unsafe, color))
        if quiet:
            continue
        if item.path not in cache:
            cache[item.path] = _source_lines((sources or {}).get(item.path))
        frame = _frame(item, cache[item.path], color)
        if frame is not None:
            console.print(frame)
        if item.help:
            help_line = Text("  = help: ", style="bold cyan")
            help_line.append(item.help, style="")
            console.print(help_line)
        console.print()
    if quiet:
        return
    problems = len(diagnostics) + len(syntax_errors)
    fixed = run.fixed_count
    if problems == 0:
        line = _clean_summary(run)
        if line is not None:
            console.print(Text(line, style="bold" if fixed else "bold green"))
        return
    files = len({d.path for d in diagnostics} | {e.path for e in syntax_errors})
    noun = "problem" if problems == 1 else "problems"
    file_noun = "file" if files == 1 else "files"
    if fixed:
        total = problems + fixed
        console.print(Text(f"Found {total} problems in {files} {file_noun} ({fixed} fixed, {problems} remaining).", style="bold"))
    else:
        console.print(Text(f"Found {problems} {noun} in {files} {file_noun}", style="bold"))
    fixable = sum(1 for d in diagnostics if is_fixable(d, unsafe))
    hidden = sum(1 for d in diagnostics if d.fix is not None and not is_fixable(d, unsafe))
    if fixable or hidden:
        line = f"[*] {fixable} fixable with the `--fix` option" if fixable else "No fixes available"
        if hidden:
            line += f" ({hidden} hidden {'fix' if hidden == 1 else 'fixes'} can be enabled with the `--unsafe-fixes` option)"
        console.print(Text(line + "."))
