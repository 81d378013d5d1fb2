"""One line per finding (`path:line:col: CODE message`), parse failures included; no frame,
no summary. Same as `--quiet` of the text format."""

from typing import TextIO

from sessionlint.diagnostics import RunResult


def render(run: RunResult, stream: TextIO, **options: object) -> None:
    from sessionlint.reporters.text import render as render_text

    render_text(run, stream, color=bool(options.get("color")), quiet=True, sources=run.sources, unsafe=bool(options.get("unsafe")))
