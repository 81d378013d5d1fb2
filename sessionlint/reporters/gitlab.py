"""GitLab Code Quality report: a JSON array of issues, one per finding and one per file that
does not parse, shown on merge requests.
https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format

Paths are relative to `CI_PROJECT_DIR` (GitLab's checkout) when it is set, else to the
current directory, with `/` separators. A fingerprint does not hold the line number, so a
finding keeps its identity when lines above it move: it hashes the path, the code, the
reported line's text with whitespace collapsed and the finding's rank among equal triples.
"""

import hashlib
import json
import os
from collections import Counter
from typing import Any, Dict, List, Mapping, TextIO

from sessionlint.diagnostics import ErrorKind, RunResult, display_path
from sessionlint.registry import rule_url


def _path(path: str) -> str:
    if path == "-":
        return path
    base = os.environ.get("CI_PROJECT_DIR") or os.getcwd()
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    shown = path if relative.startswith(os.pardir) else relative
    return display_path(shown).replace(os.sep, "/")


def _line_text(sources: Mapping[str, bytes], path: str, line: int) -> str:
    lines = sources.get(path, b"").decode("utf-8", errors="replace").splitlines()
    return " ".join(lines[line - 1].split()) if 1 <= line <= len(lines) else ""


def document(run: RunResult, sources: Mapping[str, bytes]) -> List[Dict[str, Any]]:
    seen: Counter = Counter()
    issues = []
    for d in run.diagnostics:
        key = (_path(d.path), d.code, _line_text(sources, d.path, d.start.line))
        rank = seen[key]
        seen[key] += 1
        issues.append(
            {
                "type": "issue",
                "check_name": d.code,
                "description": f"{d.code} {d.message}",
                "content": {"body": f"{d.help}\n\n{rule_url(d.code)}" if d.help else rule_url(d.code)},
                "categories": ["Bug Risk"],
                "severity": "major",
                "fingerprint": hashlib.sha256("\0".join((*key, str(rank))).encode()).hexdigest(),
                "location": {"path": key[0], "lines": {"begin": d.start.line, "end": max(d.end.line, d.start.line)}},
            }
        )
    for error in run.errors:
        if error.kind in (ErrorKind.SYNTAX, ErrorKind.ENCODING):
            path = _path(error.path)
            issues.append(
                {
                    "type": "issue",
                    "check_name": error.kind.value,
                    "description": error.message,
                    "categories": ["Bug Risk"],
                    "severity": "blocker",
                    "fingerprint": hashlib.sha256("\0".join((path, error.kind.value, error.message)).encode()).hexdigest(),
                    "location": {"path": path, "lines": {"begin": max(error.line, 1)}},
                }
            )
    return issues


def render(run: RunResult, stream: TextIO, **options: Any) -> None:
    sources = options.get("sources")
    json.dump(document(run, sources if isinstance(sources, dict) else {}), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
