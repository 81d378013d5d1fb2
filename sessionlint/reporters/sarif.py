"""SARIF 2.1.0 (the format GitHub code scanning ingests): one run, the rules' metadata from
the registry, one result per finding, parse failures as tool notifications.
https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
"""

import json
import os
from typing import Any, Dict, List, TextIO

from sessionlint import __version__
from sessionlint.diagnostics import ErrorKind, RunResult, display_path
from sessionlint.registry import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://example.invalid/sessionlint"


def _uri(path: str) -> str:
    return display_path(path).replace(os.sep, "/")


def document(run: RunResult) -> Dict[str, Any]:
    index = {rule.code: i for i, rule in enumerate(RULES)}
    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.summary},
            "helpUri": f"{INFORMATION_URI}/rules/{rule.code}",
            "help": {"text": f"Run `sessionlint --explain {rule.code}` for the rule's documentation."},
            "defaultConfiguration": {"level": "error"},
            "properties": {"fixable": rule.fix_availability},
        }
        for rule in RULES
    ]
    results: List[Dict[str, Any]] = []
    for d in run.diagnostics:
        result: Dict[str, Any] = {
            "ruleId": d.code,
            "level": "error",
            "message": {"text": d.message + (f"\nhelp: {d.help}" if d.help else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(d.path)},
                        "region": {
                            "startLine": d.start.line,
                            "startColumn": d.start.column,
                            "endLine": max(d.end.line, d.start.line),
                            "endColumn": max(d.end.column, 1),
                        },
                    }
                }
            ],
        }
        if d.code in index:
            result["ruleIndex"] = index[d.code]
        results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "descriptor": {"id": e.kind.value},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(e.path)},
                        **({"region": {"startLine": e.line, "startColumn": max(e.column, 1)}} if e.line else {}),
                    }
                }
            ],
        }
        for e in run.errors
    ]
    failed = bool(run.usage_errors) or any(e.kind in (ErrorKind.IO, ErrorKind.INTERNAL) for e in run.errors)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sessionlint",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": not failed, "toolExecutionNotifications": notifications}],
                "results": results,
            }
        ],
    }


def render(run: RunResult, stream: TextIO, **options: object) -> None:
    json.dump(document(run), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
