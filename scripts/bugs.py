"""Recall on real bugs: `python scripts/corpus.py bugs`.

Each row of corpus/bugs.toml names a site of a tree of a public repository. The trees are
extracted (Python files and project markers only) from local bare snapshots of the
repositories, `<mirrors>/<owner>+<name>/repo` (what the snapshot tool of this workplace
fetches; any `git clone --bare` works), into the corpus cache, never into this repository.
Each tree is linted as a project, and each row is scored:

- a `tp` row is found when a finding of one of its family's codes covers its line;
- a `clean` row is a false positive when such a finding covers its line.

Prints recall per family and per repository and precision on the clean rows; `--write`
puts the tables into corpus/RESULTS.md; `--misses FILE` lists every missed row with what
sessionlint did report in that file (the start of each investigation).
"""

import io
import os
import subprocess
import sys
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

if sys.version_info < (3, 11):  # pragma: no cover
    sys.exit("scripts/bugs.py needs Python 3.11+ (tomllib)")
import tomllib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MANIFEST = os.path.join(ROOT, "corpus", "bugs.toml")
RESULTS = os.path.join(ROOT, "corpus", "RESULTS.md")
BEGIN, END = "<!-- bugs:start -->", "<!-- bugs:end -->"

FAMILY_CODES: Dict[str, Tuple[str, ...]] = {
    "leak": ("SL001", "SL002"),
    "leak-generator": ("SL001", "SL002"),
    "connection-leak": ("SL010",),
    "use-after-close": ("SL003",),
    "per-request": ("SL004", "SL005"),
    "not-awaited": ("SL006",),
    "missing-rollback": ("SL007",),
    "escape": ("SL008", "SL009"),
}
# Files a tree keeps besides Python sources: they mark project roots.
MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")

Row = Dict[str, object]
Finding = Tuple[str, int, int]  # code, first line, last line


def load_rows() -> List[Row]:
    with open(MANIFEST, "rb") as handle:
        rows = tomllib.load(handle)["bug"]
    for row in rows:
        assert row["family"] in FAMILY_CODES, row
        assert row["verdict"] in ("tp", "clean"), row
    return rows


def default_mirrors() -> str:
    return os.environ.get("SESSIONLINT_MIRRORS", os.path.join(os.path.dirname(ROOT), ".mirror"))


def snapshot(repo: str, mirrors: str) -> Optional[str]:
    """The git directory of the repository's snapshot: a bare one, or a clone's `.git`."""
    path = os.path.join(mirrors, repo.replace("/", "+"), "repo")
    for candidate in (os.path.join(path, ".git"), path):
        if os.path.isfile(os.path.join(candidate, "HEAD")):
            return candidate
    return None


def extract(repo: str, commit: str, mirrors: str, cache: str) -> Optional[str]:
    """The tree of `repo` at `commit` (Python files and project markers), extracted once into
    the corpus cache; None without a snapshot or when the commit is missing from it. Blobs
    are read one by one, so that a snapshot without its largest files still gives its code."""
    target = os.path.join(cache, "bugs", repo.replace("/", "+"), commit)
    done = os.path.join(target, ".extracted")
    if os.path.exists(done):
        return target
    git_dir = snapshot(repo, mirrors)
    if git_dir is None:
        return None
    listing = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "-z", commit], capture_output=True)
    if listing.returncode != 0:
        return None
    wanted: List[Tuple[str, str]] = []  # (blob, path)
    for entry in listing.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        mode, kind, blob = meta.split()
        path = name.decode("utf-8", "surrogateescape")
        base = path.rsplit("/", 1)[-1]
        if kind == b"blob" and mode != b"120000" and ".." not in path.split("/") and (base.endswith(".py") or base in MARKERS):
            wanted.append((blob.decode(), path))
    batch = subprocess.run(
        ["git", "--git-dir", git_dir, "cat-file", "--batch"], input="".join(f"{blob}\n" for blob, _ in wanted).encode(), capture_output=True
    )
    stream = io.BytesIO(batch.stdout)
    os.makedirs(target, exist_ok=True)
    for blob, path in wanted:
        header = stream.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            continue  # missing from the snapshot (a file over its size limit)
        data = stream.read(int(header[2]))
        stream.read(1)  # the newline after each object
        destination = os.path.join(target, *path.split("/"))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, "wb") as handle:
            handle.write(data)
    with open(done, "w") as handle:
        handle.write(commit + "\n")
    return target


def lint_tree(tree: str) -> Tuple[Dict[str, List[Finding]], float]:
    """Findings per path relative to the tree, and the seconds the lint took."""
    from sessionlint.api import lint_paths
    from sessionlint.config import Settings

    started = time.perf_counter()
    result = lint_paths([tree], Settings(cache=False))
    seconds = time.perf_counter() - started
    found: Dict[str, List[Finding]] = defaultdict(list)
    for diagnostic in result.diagnostics:
        relative = os.path.relpath(diagnostic.path, tree).replace(os.sep, "/")
        found[relative].append((diagnostic.code, diagnostic.start.line, diagnostic.end.line))
    return found, seconds


def covers(findings: Sequence[Finding], row: Row) -> bool:
    codes = FAMILY_CODES[str(row["family"])]
    line = int(row["line"])  # type: ignore[arg-type]
    return any(code in codes and first <= line <= last for code, first, last in findings)


def evaluate(rows: Sequence[Row], mirrors: str, cache: str, verbose: bool = False) -> Dict[str, object]:
    by_tree: Dict[Tuple[str, str], List[Row]] = defaultdict(list)
    for row in rows:
        by_tree[(str(row["repo"]), str(row["commit"]))].append(row)
    outcome: Dict[int, Optional[bool]] = {}  # id(row) -> found (tp) / flagged (clean); None: no tree
    reported: Dict[int, List[Finding]] = {}
    seconds = 0.0
    missing = set()
    for index, ((repo, commit), members) in enumerate(sorted(by_tree.items())):
        tree = extract(repo, commit, mirrors, cache)
        if tree is None:
            missing.add(repo)
            for row in members:
                outcome[id(row)] = None
            continue
        findings, spent = lint_tree(tree)
        seconds += spent
        for row in members:
            in_file = findings.get(str(row["path"]), [])
            reported[id(row)] = in_file
            outcome[id(row)] = covers(in_file, row)
        if verbose:
            print(f"[{index + 1}/{len(by_tree)}] {repo}@{commit[:8]}: {sum(len(v) for v in findings.values())} findings, {spent:.1f} s", file=sys.stderr)
    return {"outcome": outcome, "reported": reported, "seconds": seconds, "missing": sorted(missing)}


def tables(rows: Sequence[Row], evaluation: Dict[str, object]) -> str:
    outcome: Dict[int, Optional[bool]] = evaluation["outcome"]  # type: ignore[assignment]
    families: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0, 0])  # tp found, tp, clean flagged, clean
    repos: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in rows:
        result = outcome.get(id(row))
        if result is None:
            continue
        offset = 0 if row["verdict"] == "tp" else 2
        for table in (families[str(row["family"])], repos[str(row["repo"])]):
            table[offset] += int(result)
            table[offset + 1] += 1
    total = [sum(v[i] for v in families.values()) for i in range(4)]

    def pct(part: int, whole: int) -> str:
        return f"{100 * part / whole:.1f}%" if whole else "-"

    lines = ["| family | tp rows | found | recall | clean rows | flagged | precision on clean |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for family in sorted(families, key=lambda f: -families[f][1]):
        found, tp, flagged, clean = families[family]
        lines.append(f"| {family} | {tp} | {found} | {pct(found, tp)} | {clean} | {flagged} | {pct(clean - flagged, clean)} |")
    lines.append(f"| **all** | {total[1]} | {total[0]} | {pct(total[0], total[1])} | {total[3]} | {total[2]} | {pct(total[3] - total[2], total[3])} |")
    lines += ["", "| repository | tp found / rows | clean flagged / rows |", "| --- | ---: | ---: |"]
    for repo in sorted(repos, key=str.lower):
        found, tp, flagged, clean = repos[repo]
        lines.append(f"| {repo} | {found} / {tp} | {flagged} / {clean} |")
    missing: List[str] = evaluation["missing"]  # type: ignore[assignment]
    if missing:
        lines += ["", f"Not evaluated (no local snapshot): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def write_misses(path: str, rows: Sequence[Row], evaluation: Dict[str, object]) -> None:
    outcome: Dict[int, Optional[bool]] = evaluation["outcome"]  # type: ignore[assignment]
    reported: Dict[int, List[Finding]] = evaluation["reported"]  # type: ignore[assignment]
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            result = outcome.get(id(row))
            wrong = (row["verdict"] == "tp" and result is False) or (row["verdict"] == "clean" and result is True)
            if not wrong:
                continue
            kind = "MISS" if row["verdict"] == "tp" else "FLAGGED"
            handle.write(f"{kind} {row['family']} {row['repo']}@{str(row['commit'])[:10]} {row['path']}:{row['line']}\n")
            handle.write(f"    {row['reason']}\n")
            handle.write(f"    reported in the file: {sorted(reported.get(id(row), []))}\n")


def write_results(text: str) -> None:
    with open(RESULTS, encoding="utf-8") as handle:
        current = handle.read()
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in current:
        current = current[: current.index(BEGIN)] + block + current[current.index(END) + len(END) :]
    else:
        current = current.rstrip("\n") + "\n\n## Real bugs (corpus/bugs.toml)\n\n" + block + "\n"
    with open(RESULTS, "w", encoding="utf-8") as handle:
        handle.write(current)


def run(cache: str, mirrors: Optional[str] = None, repos: Sequence[str] = (), write: bool = False, misses: Optional[str] = None, verbose: bool = False) -> int:
    rows = [row for row in load_rows() if not repos or row["repo"] in repos]
    evaluation = evaluate(rows, mirrors or default_mirrors(), cache, verbose)
    text = tables(rows, evaluation)
    print(text)
    print(f"lint time over the trees: {evaluation['seconds']:.1f} s")
    if misses:
        write_misses(misses, rows, evaluation)
    if write:
        write_results(text)
    return 0
