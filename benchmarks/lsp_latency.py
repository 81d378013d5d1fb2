"""Latency of the language server: time from a `didChange` to the `publishDiagnostics` of that
version, for a large file inside a large project, and the server's memory.

    python benchmarks/lsp_latency.py                          # airflow/models/dagrun.py
    python benchmarks/lsp_latency.py --file airflow/models/taskinstance.py --rounds 30

The project is apache-airflow-core from the corpus cache (`scripts/corpus.py fetch`). The
server is started as an editor starts it (`python -m sessionlint server` over stdio, the
client of tests/lsp_client.py), with the workspace folder at the project's root. It opens the
file (the cold project pass and first lint), then sends `--rounds` changes, each waiting for
the diagnostics of its version before the next, alternating two kinds of keystroke:

- body: a comment typed at the end of a statement inside a function (the project's facts
  do not change: the index is kept);
- import: a `from ... import` added at the top (the file's facts change: the project pass is finished
  again from the facts kept in memory).

It does this with `--debounce-ms 0` (the work the server does for a change) and with the
default debounce (what a user waits). Figures are medians; memory is the server's resident
set (VmRSS) and peak (VmHWM) from /proc after the rounds.
"""

import argparse
import os
import statistics
import sys
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from lsp_client import Client  # noqa: E402

CORPUS = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "sessionlint-corpus", "src")


def find_project(name: str) -> str:
    for entry in sorted(os.listdir(CORPUS)):
        if entry.startswith(name + "-") and entry[len(name) + 1 : len(name) + 2].isdigit():
            return os.path.join(CORPUS, entry)
    raise SystemExit(f"{name} is not in {CORPUS}: run `python scripts/corpus.py fetch` first")


def memory(pid: int) -> Dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) // 1024  # MiB
    return found


def body_line(lines: List[str]) -> int:
    """A line inside a function body, near the file's middle: `x = 1`-like statements."""
    middle = len(lines) // 2
    for offset in range(len(lines)):
        for index in (middle + offset, middle - offset):
            if 0 <= index < len(lines):
                line = lines[index]
                stripped = line.strip()
                if line.startswith("        ") and " = " in stripped and not stripped.startswith(("#", "@")) and stripped.endswith(")"):
                    return index
    raise SystemExit("no statement to edit")


def session(path: str, root: str, debounce: int, rounds: int) -> Tuple[float, Dict[str, List[float]], Dict[str, int]]:
    text = open(path, encoding="utf-8").read()
    lines = text.splitlines(True)
    target = body_line(lines)
    client = Client(["--debounce-ms", str(debounce)])
    try:
        client.initialize(root)
        started = time.perf_counter()
        uri = client.open(path, text)
        client.diagnostics(uri, timeout=300, version=1)
        cold = time.perf_counter() - started
        times: Dict[str, List[float]] = {"body": [], "import": []}
        version = 1
        for round_number in range(rounds):
            version += 1
            kind = "body" if round_number % 2 == 0 else "import"
            if kind == "body":
                # a comment typed at the end of the statement
                line = lines[target].rstrip("\n")
                span = ((target, len(line)), (target, len(line)))
                inserted = f"  # {version}"
            else:
                span = ((0, 0), (0, 0))
                inserted = f"from json import dumps as dumps_{version}\n"
            sent = time.perf_counter()
            client.change(uri, version, inserted, span)
            client.diagnostics(uri, timeout=120, version=version)
            times[kind].append(time.perf_counter() - sent)
            # undo, so that every round edits the same text (not timed)
            version += 1
            if kind == "body":
                undo = ((target, len(line)), (target, len(line) + len(inserted)))
            else:
                undo = ((0, 0), (1, 0))
            client.change(uri, version, "", undo)
            client.diagnostics(uri, timeout=120, version=version)
        used = memory(client.process.pid)
    finally:
        client.close()
    return cold, times, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="apache-airflow-core")
    parser.add_argument("--file", default="airflow/models/dagrun.py")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--debounce", type=int, nargs="*", default=[0, 100], help="debounce values (ms) to run with")
    arguments = parser.parse_args()
    root = find_project(arguments.project)
    path = os.path.join(root, arguments.file)
    count = sum(1 for _ in open(path, encoding="utf-8"))
    print(f"{os.path.basename(root)}: {arguments.file} ({count} lines), {arguments.rounds} changes per run\n")
    print("| debounce | cold open | body change (median, min-max) | import change (median, min-max) | RSS | peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for debounce in arguments.debounce:
        cold, times, used = session(path, root, debounce, arguments.rounds)

        def cell(values: List[float]) -> str:
            return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"

        print(f"| {debounce} ms | {cold:.2f} s | {cell(times['body'])} | {cell(times['import'])} | {used['VmRSS']} MiB | {used['VmHWM']} MiB |")


if __name__ == "__main__":
    main()
