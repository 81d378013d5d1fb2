"""Baselines for adopting sessionlint on legacy code: `--write-baseline FILE` records today's
findings, `--baseline FILE` reports only the others.

A finding's fingerprint does not contain its line number, so edits above it keep it matched:
it hashes the path (relative to the project root), the code, the reported line's text with
whitespace collapsed, and the finding's rank among equal (path, code, text) triples.
"""

import hashlib
import json
from collections import Counter
from typing import Dict, List, Sequence, Tuple

from sessionlint.diagnostics import Diagnostic
from sessionlint.fixes.files import write_atomically

FORMAT = 1


class BaselineError(Exception):
    """An unreadable or malformed baseline file: one line on stderr, exit code 2."""


def _line_text(data: bytes, line: int) -> str:
    lines = data.decode("utf-8", errors="replace").splitlines()
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    return " ".join(text.split())


def fingerprints(diagnostics: Sequence[Diagnostic], sources: Dict[str, bytes], relative) -> List[str]:
    """One fingerprint per diagnostic, in order. `relative(path)` makes paths project-relative."""
    seen: Counter = Counter()
    found = []
    for d in diagnostics:
        key = (relative(d.path), d.code, _line_text(sources.get(d.path, b""), d.start.line))
        rank = seen[key]
        seen[key] += 1
        digest = hashlib.sha256("\0".join((*key, str(rank))).encode()).hexdigest()[:20]
        found.append(digest)
    return found


def write(path: str, diagnostics: Sequence[Diagnostic], sources: Dict[str, bytes], relative) -> int:
    records = [
        {"path": relative(d.path), "code": d.code, "fingerprint": f}
        for d, f in zip(diagnostics, fingerprints(diagnostics, sources, relative))
    ]
    text = json.dumps({"format": FORMAT, "findings": records}, indent=1) + "\n"
    write_atomically(path, text.encode("utf-8"))
    return len(records)


def read(path: str) -> Counter:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise BaselineError(f"{path}: cannot read baseline: {error.strerror or error}") from None
    except ValueError as error:
        raise BaselineError(f"{path}: not a sessionlint baseline (invalid JSON: {error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("findings"), list):
        raise BaselineError(f"{path}: not a sessionlint baseline (format {FORMAT} expected)")
    try:
        return Counter(record["fingerprint"] for record in data["findings"])
    except (TypeError, KeyError):
        raise BaselineError(f"{path}: not a sessionlint baseline (a finding without a fingerprint)") from None


def filter_new(
    diagnostics: Sequence[Diagnostic], sources: Dict[str, bytes], relative, known: Counter
) -> Tuple[List[Diagnostic], int]:
    """The diagnostics the baseline does not cover, and how many it did."""
    remaining = Counter(known)
    kept = []
    covered = 0
    for d, f in zip(diagnostics, fingerprints(diagnostics, sources, relative)):
        if remaining[f] > 0:
            remaining[f] -= 1
            covered += 1
        else:
            kept.append(d)
    return kept, covered


def apply_to_run(run, known: Counter, relative) -> int:
    """Drop the findings the baseline covers from `run` (a RunResult); return how many."""
    from dataclasses import replace

    kept, covered = filter_new(run.diagnostics, run.sources, relative, known)
    keep = {id(d) for d in kept}
    run.files = [replace(f, diagnostics=tuple(d for d in f.diagnostics if id(d) in keep)) for f in run.files]
    return covered
