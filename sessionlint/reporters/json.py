"""Machine-readable findings, one JSON document (schema version 1, documented in README):

    {"version": 1, "tool": {"name": "sessionlint", "version": "..."},
     "diagnostics": [{"code", "name", "message", "path", "location": {"line", "column"},
                      "end_location": {"line", "column"}, "help", "fix", "confidence",
                      "url"}],
     "errors": [{"kind", "path", "line", "column", "message"}],
     "summary": {"diagnostics", "errors", "files_with_diagnostics", "fixable", "suppressed"}}

Lines and columns are 1-based; `fix` is null or {"applicability", "title"}. New keys may be
added within version 1; existing keys keep their meaning.
"""

import json
from typing import Any, Dict, TextIO

from sessionlint import __version__
from sessionlint.diagnostics import (
    Diagnostic,
    FileError,
    RunResult,
    display_path,
    is_fixable,
)
from sessionlint.registry import rule_url

SCHEMA_VERSION = 1


def diagnostic_record(diagnostic: Diagnostic) -> Dict[str, Any]:
    return {
        "code": diagnostic.code,
        "name": diagnostic.name,
        "message": diagnostic.message,
        "path": display_path(diagnostic.path),
        "location": {"line": diagnostic.start.line, "column": diagnostic.start.column},
        "end_location": {"line": diagnostic.end.line, "column": diagnostic.end.column},
        "help": diagnostic.help,
        "fix": None
        if diagnostic.fix is None
        else {"applicability": diagnostic.fix.applicability.value, "title": diagnostic.fix.title},
        "confidence": diagnostic.confidence.value,
        "url": rule_url(diagnostic.code),
    }


def error_record(error: FileError) -> Dict[str, Any]:
    return {"kind": error.kind.value, "path": display_path(error.path), "line": error.line, "column": error.column, "message": error.message}


def document(run: RunResult, unsafe: bool = False) -> Dict[str, Any]:
    diagnostics = run.diagnostics
    return {
        "version": SCHEMA_VERSION,
        "tool": {"name": "sessionlint", "version": __version__},
        "diagnostics": [diagnostic_record(d) for d in diagnostics],
        "errors": [error_record(e) for e in run.errors] + [
            {"kind": "usage-error", "path": "", "line": 0, "column": 0, "message": m} for m in run.usage_errors
        ],
        "summary": {
            "diagnostics": len(diagnostics),
            "errors": len(run.errors) + len(run.usage_errors),
            "files_with_diagnostics": run.files_with_findings,
            "fixable": sum(1 for d in diagnostics if is_fixable(d, unsafe)),
            "suppressed": run.suppressed,
        },
    }


def render(run: RunResult, stream: TextIO, **options: object) -> None:
    json.dump(document(run, bool(options.get("unsafe"))), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
