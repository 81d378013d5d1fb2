"""GitHub Actions workflow commands: one `::error` annotation per finding, shown on the pull
request's diff. https://docs.github.com/actions/reference/workflow-commands-for-github-actions
"""

from typing import TextIO

from sessionlint.diagnostics import ErrorKind, RunResult, display_path


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(run: RunResult, stream: TextIO, **options: object) -> None:
    for d in run.diagnostics:
        properties = (
            f"file={_escape_property(display_path(d.path))},line={d.start.line},col={d.start.column},"
            f"endLine={d.end.line},endColumn={d.end.column},title={_escape_property(f'{d.code} ({d.name})')}"
        )
        stream.write(f"::error {properties}::{_escape_data(f'{d.code} {d.message}')}\n")
    for error in run.errors:
        if error.kind in (ErrorKind.SYNTAX, ErrorKind.ENCODING):
            location = f",line={error.line},col={error.column}" if error.line else ""
            stream.write(
                f"::error file={_escape_property(display_path(error.path))}{location},title={error.kind.value}::"
                f"{_escape_data(error.message)}\n"
            )
