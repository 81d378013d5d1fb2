"""Findings on projects the analysis was never tuned on: `python scripts/corpus.py fresh`.

corpus/fresh.toml pins each project (a public repository and a commit) and keeps a verdict
for every finding sessionlint reported there, reached by reading the code: `tp` (a real
bug), `defensible` (worth reading: the code works only because of something the linter
cannot see, and a reviewer would ask for a change), `fp`. The trees are extracted from
local snapshots like the real-bug corpus (scripts/bugs.py), into the corpus cache, never
into this repository.

Prints per project the findings and their verdicts and the share that is real or
defensible; `--write` puts the table into corpus/RESULTS.md; `--unreviewed FILE` lists the
findings without a verdict, with their messages, for review.
"""

import os
import sys
from collections import Counter
from typing import Dict, List, Optional, Tuple

if sys.version_info < (3, 11):  # pragma: no cover
    sys.exit("scripts/fresh.py needs Python 3.11+ (tomllib)")
import bugs  # noqa: E402
import tomllib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MANIFEST = os.path.join(ROOT, "corpus", "fresh.toml")
BEGIN, END = "<!-- fresh:start -->", "<!-- fresh:end -->"
VERDICTS = ("tp", "defensible", "fp")

Key = Tuple[str, str, int, str]  # repo, path, line, code


def load() -> Tuple[List[Dict[str, str]], Dict[Key, Dict[str, object]]]:
    with open(MANIFEST, "rb") as handle:
        data = tomllib.load(handle)
    reviews: Dict[Key, Dict[str, object]] = {}
    for review in data.get("review", []):
        assert review["verdict"] in VERDICTS, review
        reviews[(review["repo"], review["path"], int(review["line"]), review["code"])] = review
    return data["project"], reviews


def lint(tree: str) -> List[Tuple[str, int, int, str, str]]:
    """(path relative to the tree, line, column, code, message) of every finding."""
    from sessionlint.api import lint_paths
    from sessionlint.config import Settings

    result = lint_paths([tree], Settings(cache=False))
    return sorted(
        (os.path.relpath(d.path, tree).replace(os.sep, "/"), d.start.line, d.start.column, d.code, d.message)
        for d in result.diagnostics
        if d.code.startswith("SL0")
    )


def run(cache: str, mirrors: Optional[str] = None, write: bool = False, unreviewed_path: Optional[str] = None) -> int:
    projects, reviews = load()
    mirrors = mirrors or bugs.default_mirrors()
    rows: List[str] = []
    totals: Counter = Counter()
    unreviewed: List[str] = []
    for project in projects:
        repo, commit = project["repo"], project["commit"]
        tree = bugs.extract(repo, commit, mirrors, cache)
        if tree is None:
            print(f"{repo}: no snapshot with {commit[:10]} (fetch it first)", file=sys.stderr)
            return 2
        counts: Counter = Counter()
        seen = set()
        for path, line, column, code, message in lint(tree):
            seen.add((repo, path, line, code))
            review = reviews.get((repo, path, line, code))
            verdict = str(review["verdict"]) if review else "unreviewed"
            counts[verdict] += 1
            if review is None:
                unreviewed.append(f"{repo}@{commit[:10]} {path}:{line}:{column}: {code} {message}")
        for key, review in reviews.items():
            if key[0] == repo and key not in seen:
                # a false positive the analysis was fixed for stays on record with its fixture
                counts["fixed" if review.get("fixed") else "disappeared"] += 1
                if not review.get("fixed"):
                    print(f"disappeared: {repo} {key[1]}:{key[2]}: {key[3]} (was {review['verdict']})", file=sys.stderr)
        fixed = counts.pop("fixed", 0)
        gone = counts.pop("disappeared", 0)
        totals.update(counts)
        totals["fixed"] += fixed
        totals["disappeared"] += gone
        found = sum(counts.values())
        real = counts["tp"] + counts["defensible"]
        share = f"{real / (found - counts['unreviewed']):.0%}" if found > counts["unreviewed"] else "-"
        rows.append(f"| {repo} | `{commit[:10]}` | {found} | {counts['tp']} | {counts['defensible']} | {counts['fp']} | {fixed} | {share} |")
    fixed_total, gone_total = totals.pop("fixed", 0), totals.pop("disappeared", 0)
    found = sum(totals.values())
    reviewed = found - totals["unreviewed"]
    real = totals["tp"] + totals["defensible"]
    table = "\n".join(
        [
            "| project | commit | findings | tp | defensible | fp | fp fixed since review | real or defensible |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            f"| **all** | | {found} | {totals['tp']} | {totals['defensible']} | {totals['fp']} | {fixed_total} | "
            f"{(f'{real / reviewed:.1%}' if reviewed else '-')} |",
        ]
    )
    print(table)
    if totals["unreviewed"]:
        print(f"\n{totals['unreviewed']} findings without a verdict")
    if unreviewed_path:
        with open(unreviewed_path, "w") as handle:
            handle.write("\n".join(unreviewed) + ("\n" if unreviewed else ""))
    if write:
        with open(bugs.RESULTS) as handle:
            text = handle.read()
        block = f"{BEGIN}\n{table}\n{END}"
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n## Fresh projects\n\n" + block + "\n"
        with open(bugs.RESULTS, "w") as handle:
            handle.write(text)
    return 1 if totals["unreviewed"] or gone_total else 0
