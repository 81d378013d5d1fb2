"""SARIF 2.1.0 (the format GitHub code scanning ingests): one run, the rules' metadata and
documentation, one result per finding with its fix as SARIF `fixes`, parse failures as tool
notifications. Artifact locations are percent-encoded URIs relative to `%SRCROOT%`, the
directory the run started in (`originalUriBaseIds` gives its absolute URI); a file outside it
gets an absolute `file:` URI.
https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
"""

import difflib
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple
from urllib.parse import quote

from sessionlint import __version__
from sessionlint.diagnostics import Diagnostic, ErrorKind, RunResult, is_fixable
from sessionlint.registry import RULES, rule_url

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
ROOT_ID = "%SRCROOT%"


def _encoded(path: str) -> str:
    """`path` percent-encoded, with the bytes of a file name that is not UTF-8 kept."""
    return quote(path.replace(os.sep, "/").encode("utf-8", "surrogateescape"), safe="/")


def _file_uri(path: str) -> str:
    absolute = _encoded(os.path.abspath(path))
    return "file://" + (absolute if absolute.startswith("/") else "/" + absolute)


def artifact(path: str, root: str) -> Dict[str, str]:
    """The artifactLocation of `path`: relative to `%SRCROOT%` (= `root`) when inside it."""
    relative = os.path.relpath(os.path.abspath(path), root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return {"uri": _file_uri(path)}
    return {"uri": _encoded(relative), "uriBaseId": ROOT_ID}


def _rule(code: str, name: str, summary: str, fixable: str, page: Optional[str]) -> Dict[str, Any]:
    url = rule_url(code)
    record: Dict[str, Any] = {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": summary},
        "help": {"text": page, "markdown": page} if page else {"text": f"{summary}. `sessionlint --explain {code}` prints the rule's documentation."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"fixable": fixable},
    }
    if "://" in url:  # SARIF wants an absolute URI; a relative page link stays out
        record["helpUri"] = url
    return record


def _hunks(original: bytes, fixed: bytes) -> List[Tuple[int, int, str]]:
    """(first line, line after the last, new text) of each changed run of lines, 1-based."""
    before = original.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    after = fixed.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return [(i1 + 1, i2 + 1, "".join(after[j1:j2])) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def fixes_by_diagnostic(
    diagnostics: Sequence[Diagnostic], fixed: Mapping[str, Tuple[bytes, bytes]], unsafe: bool
) -> Dict[int, List[Tuple[int, int, str]]]:
    """id(diagnostic) -> the line replacements of its fix. `fixed` holds each fixed file's
    original and fixed bytes; a changed run of lines belongs to the fixable finding that
    starts inside it, else to the last one that starts before it, else to the first."""
    found: Dict[int, List[Tuple[int, int, str]]] = {}
    for path, (original, new) in fixed.items():
        owners = [d for d in diagnostics if d.path == path and is_fixable(d, unsafe)]
        if not owners:
            continue
        for hunk in _hunks(original, new):
            first, end = hunk[0], max(hunk[1], hunk[0] + 1)
            inside = [d for d in owners if first <= d.start.line < end]
            before = [d for d in owners if d.start.line < first]
            owner = inside[0] if inside else (before[-1] if before else owners[0])
            found.setdefault(id(owner), []).append(hunk)
    return found


def _sarif_fix(diagnostic: Diagnostic, hunks: List[Tuple[int, int, str]], root: str) -> Dict[str, Any]:
    assert diagnostic.fix is not None
    replacements = [
        {
            # Whole lines: from column 1 of `first` to column 1 of `end` (its newline included).
            "deletedRegion": {"startLine": first, "startColumn": 1, "endLine": end, "endColumn": 1},
            "insertedContent": {"text": text},
        }
        for first, end, text in hunks
    ]
    return {
        "description": {"text": diagnostic.fix.title + ("" if diagnostic.fix.applicability.value == "safe" else " (unsafe)")},
        "artifactChanges": [{"artifactLocation": artifact(diagnostic.path, root), "replacements": replacements}],
    }


def document(
    run: RunResult,
    rule_pages: Optional[Mapping[str, str]] = None,
    fixed: Optional[Mapping[str, Tuple[bytes, bytes]]] = None,
    unsafe: bool = False,
    root: Optional[str] = None,
) -> Dict[str, Any]:
    root = os.path.abspath(root or os.getcwd())
    pages = rule_pages or {}
    index = {rule.code: i for i, rule in enumerate(RULES)}
    rules = [_rule(rule.code, rule.name, rule.summary, rule.fix_availability, pages.get(rule.code)) for rule in RULES]
    fixes = fixes_by_diagnostic(run.diagnostics, fixed or {}, unsafe)
    results: List[Dict[str, Any]] = []
    for d in run.diagnostics:
        result: Dict[str, Any] = {
            "ruleId": d.code,
            "level": "error",
            "message": {"text": d.message + (f"\nhelp: {d.help}" if d.help else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact(d.path, root),
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
        if id(d) in fixes:
            result["fixes"] = [_sarif_fix(d, fixes[id(d)], root)]
        results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "descriptor": {"id": e.kind.value},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact(e.path, root),
                        **({"region": {"startLine": e.line, "startColumn": max(e.column, 1)}} if e.line else {}),
                    }
                }
            ],
        }
        for e in run.errors
    ]
    failed = bool(run.usage_errors) or any(e.kind in (ErrorKind.IO, ErrorKind.INTERNAL) for e in run.errors)
    driver: Dict[str, Any] = {"name": "sessionlint", "version": __version__, "rules": rules}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {ROOT_ID: {"uri": _file_uri(root).rstrip("/") + "/"}},
                "invocations": [{"executionSuccessful": not failed, "toolExecutionNotifications": notifications}],
                "results": results,
            }
        ],
    }


def render(run: RunResult, stream: TextIO, **options: Any) -> None:
    document_ = document(run, options.get("rule_pages"), options.get("fixed"), bool(options.get("unsafe")))
    json.dump(document_, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
