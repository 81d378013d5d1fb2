"""`--statistics`: counts per rule, most frequent first, instead of the findings."""

from collections import Counter
from typing import TextIO

from sessionlint.diagnostics import ErrorKind, RunResult


def render(run: RunResult, stream: TextIO, **options: object) -> None:
    counts = Counter((d.code, d.name) for d in run.diagnostics)
    syntax = sum(1 for e in run.errors if e.kind in (ErrorKind.SYNTAX, ErrorKind.ENCODING))
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
    if syntax:
        rows.append((("", "syntax-error"), syntax))
    width = max((len(str(n)) for _, n in rows), default=1)
    fixable = Counter(d.code for d in run.diagnostics if d.fix is not None)
    for (code, name), count in rows:
        mark = "[*]" if fixable.get(code) else "   "
        stream.write(f"{count:>{width}}\t{code or '-':<6}\t{mark} {name}\n")
