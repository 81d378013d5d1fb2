"""Real-world evaluation: run sessionlint over pinned real projects, compare with reviews,
and plant known bugs to measure recall.

    python scripts/corpus.py fetch            # pip download --no-deps, unpack the .py files
    python scripts/corpus.py run              # lint every project, write findings + timings
    python scripts/corpus.py check            # compare with corpus/reviews.toml, precision
    python scripts/corpus.py mutate           # plant bugs in copies, recall per rule
    python scripts/corpus.py fuzz             # token-level edits of real files: no crash
    python scripts/corpus.py report           # write corpus/RESULTS.md from the last run
    python scripts/corpus.py bugs             # recall on corpus/bugs.toml (real, fixed bugs)
    python scripts/corpus.py fresh            # findings on projects never tuned on (corpus/fresh.toml)

The cache lives outside the repository: $SESSIONLINT_CORPUS_CACHE or ~/.cache/sessionlint-corpus.
Nothing downloaded is committed; reviews keep only project, path, line, code and a reason.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# SESSIONLINT_SOURCE: evaluate another copy of the package (a snapshot taken before editing)
sys.path.insert(0, os.environ.get("SESSIONLINT_SOURCE", ROOT))

if sys.version_info < (3, 11):  # pragma: no cover
    sys.exit("scripts/corpus.py needs Python 3.11+ (tomllib)")
import tomllib  # noqa: E402

MANIFEST = os.path.join(ROOT, "corpus", "projects.toml")
REVIEWS = os.path.join(ROOT, "corpus", "reviews.toml")
RESULTS = os.path.join(ROOT, "corpus", "RESULTS.md")


def cache_dir() -> str:
    return os.environ.get("SESSIONLINT_CORPUS_CACHE", os.path.expanduser("~/.cache/sessionlint-corpus"))


def load_projects(only: Optional[Sequence[str]] = None) -> List[dict]:
    with open(MANIFEST, "rb") as handle:
        projects = tomllib.load(handle)["project"]
    if only:
        projects = [p for p in projects if p["name"] in only]
    return projects


def source_dir(project: dict) -> str:
    return os.path.join(cache_dir(), "src", f"{project['name']}-{project['version']}")


# --- fetch ---------------------------------------------------------------------------------


def fetch(projects: List[dict]) -> None:
    for project in projects:
        target = source_dir(project)
        if os.path.isdir(target) and os.listdir(target):
            print(f"{project['name']}: cached")
            continue
        download = os.path.join(cache_dir(), "dl", project["name"])
        os.makedirs(download, exist_ok=True)
        spec = f"{project['name']}=={project['version']}"
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", download, spec]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            print(f"{project['name']}: download failed: {completed.stderr.strip().splitlines()[-1:]}")
            continue
        archives = [os.path.join(download, f) for f in os.listdir(download)]
        os.makedirs(target, exist_ok=True)
        count = 0
        for archive in archives:
            count += _unpack_python(archive, target)
        print(f"{project['name']}: {count} Python files ({time.perf_counter() - started:.1f} s)")


def _unpack_python(archive: str, target: str) -> int:
    count = 0
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if member.endswith(".py") and ".." not in member.split("/"):
                    bundle.extract(member, target)
                    count += 1
    elif archive.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as bundle:
            for member in bundle.getmembers():
                if member.isfile() and member.name.endswith(".py") and ".." not in member.name.split("/"):
                    bundle.extract(member, target, filter="data")
                    count += 1
    return count


# --- run -----------------------------------------------------------------------------------


def lint_project(project: dict) -> Tuple[List[dict], float, int, int]:
    from sessionlint.api import lint_paths
    from sessionlint.config import Settings

    root = source_dir(project)
    started = time.perf_counter()
    result = lint_paths([root], Settings(select=("ALL",), cache=False))
    seconds = time.perf_counter() - started
    records = []
    for diagnostic in result.diagnostics:
        records.append(
            {
                "project": project["name"],
                "path": os.path.relpath(diagnostic.path, root),
                "line": diagnostic.start.line,
                "column": diagnostic.start.column,
                "code": diagnostic.code,
                "message": diagnostic.message,
            }
        )
    for error in result.errors:
        records.append(
            {
                "project": project["name"],
                "path": os.path.relpath(error.path, root),
                "line": error.line,
                "column": error.column,
                "code": error.kind.value,
                "message": error.message,
            }
        )
    parsed = sum(1 for f in result.files if f.parsed)
    return records, seconds, len(result.files), parsed


def run(projects: List[dict]) -> None:
    findings: List[dict] = []
    timings = {}
    for project in projects:
        if not os.path.isdir(source_dir(project)):
            print(f"{project['name']}: not fetched")
            continue
        records, seconds, files, parsed = lint_project(project)
        findings.extend(records)
        timings[project["name"]] = {"seconds": round(seconds, 3), "files": files, "parsed": parsed, "findings": len(records)}
        print(f"{project['name']:<30} {files:>5} files {parsed:>4} parsed {len(records):>4} findings {seconds:6.2f} s")
    with open(os.path.join(cache_dir(), "findings.json"), "w") as handle:
        json.dump({"findings": findings, "timings": timings}, handle, indent=1)
    per_rule = Counter(f["code"] for f in findings)
    print("per rule:", dict(sorted(per_rule.items())))


# --- check ---------------------------------------------------------------------------------


def load_reviews() -> Tuple[Dict[Tuple[str, str, int, str], dict], Dict[str, float]]:
    if not os.path.exists(REVIEWS):
        return {}, {}
    with open(REVIEWS, "rb") as handle:
        data = tomllib.load(handle)
    reviews = {(r["project"], r["path"], r["line"], r["code"]): r for r in data.get("review", [])}
    return reviews, data.get("floors", {})


def check() -> int:
    with open(os.path.join(cache_dir(), "findings.json")) as handle:
        findings = json.load(handle)["findings"]
    # Python 2 files in old releases (pyspider, ringo) do not parse: reported, not findings.
    # Any other error (an internal error above all) stays unreviewed and fails the check.
    unparsable = [f for f in findings if f["code"] == "syntax-error"]
    findings = [f for f in findings if f["code"] != "syntax-error"]
    for finding in unparsable:
        print(f"not Python 3: {finding['project']} {finding['path']}:{finding['line']}: {finding['message']}")
    reviews, floors = load_reviews()
    seen = set()
    unreviewed = []
    verdicts: Dict[str, Counter] = defaultdict(Counter)
    for finding in findings:
        key = (finding["project"], finding["path"], finding["line"], finding["code"])
        seen.add(key)
        review = reviews.get(key)
        if review is None:
            unreviewed.append(finding)
        else:
            verdicts[finding["code"]][review["verdict"]] += 1
    # A false positive the analysis was fixed for stays on record with its fixture.
    # A true positive given up for precision says so (`lost`, with the fixture that shows why).
    disappeared = [key for key in reviews if key not in seen and not reviews[key].get("fixed") and not reviews[key].get("lost")]
    fixed = [key for key in reviews if key not in seen and reviews[key].get("fixed")]
    lost = [key for key in reviews if key not in seen and reviews[key].get("lost")]
    status = 0
    for finding in unreviewed:
        print(f"unreviewed: {finding['project']} {finding['path']}:{finding['line']}: {finding['code']} {finding['message']}")
    for key in disappeared:
        print(f"disappeared: {key[0]} {key[1]}:{key[2]}: {key[3]} (was {reviews[key]['verdict']})")
    print(f"{len(findings)} findings, {len(findings) - len(unreviewed)} reviewed; "
          f"{len(fixed)} earlier false positives fixed (each with a fixture); "
          f"{len(lost)} true positives given up for precision")
    total_tp = sum(v["tp"] for v in verdicts.values())
    total_fp = sum(v["fp"] for v in verdicts.values())
    print(f"{'rule':<8} {'tp':>4} {'fp':>4} precision floor")
    for code in sorted(set(verdicts) | set(floors)):
        tp, fp = verdicts[code]["tp"], verdicts[code]["fp"]
        precision = tp / (tp + fp) if tp + fp else 1.0
        floor = floors.get(code, 0.0)
        mark = "  BELOW FLOOR" if precision < floor else ""
        print(f"{code:<8} {tp:>4} {fp:>4} {precision:9.1%} {floor:5.0%}{mark}")
        if precision < floor:
            status = 1
    overall = total_tp / (total_tp + total_fp) if total_tp + total_fp else 1.0
    print(f"{'all':<8} {total_tp:>4} {total_fp:>4} {overall:9.1%}")
    if unreviewed:
        status = 1
    return status


# --- mutate --------------------------------------------------------------------------------


def _linted_projects(projects: List[dict], settings: object):
    """(project, root, sources, project pass) for each fetched project."""
    from sessionlint.api import build_project, python_files, read_sources

    for project in projects:
        root = source_dir(project)
        if os.path.isdir(root):
            sources = read_sources(python_files([root]))
            yield project, root, sources, build_project(sources, settings)  # type: ignore[arg-type]


def mutate(projects: List[dict], per_project: int, seed: int, operators: Sequence[str] = ()) -> Dict[str, Tuple[int, int]]:
    """Plant one bug per mutant in copies of real files; a plant is found when the expected
    rule reports more findings on the mutant than on the original."""
    from dataclasses import replace

    from mutations import OPERATORS, expected_codes, find_sites, make_mutant

    from sessionlint.api import lint_source
    from sessionlint.config import Settings

    rng = random.Random(seed)
    settings = Settings(select=("ALL",))
    unfiltered = replace(settings, prefilter=False)
    totals: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    misses: List[str] = []
    mutant_root = os.path.join(cache_dir(), "mutants")
    shutil.rmtree(mutant_root, ignore_errors=True)
    for project, root, sources, linted in _linted_projects(projects, settings):
        factories = {name for facts in linted.index.modules.values() for name in facts.factories}  # type: ignore
        candidates: Dict[str, List[Tuple[str, int]]] = defaultdict(list)
        originals: Dict[str, object] = {}
        in_file: Dict[str, set] = {}
        for path, data in sources.items():
            # Project factories count in the file that defines them or imports them by name
            # (calibreweb's requests-based `Session` class is not the project's sessionmaker).
            own = set(linted.index.modules[path].factories) if path in linted.index.modules else set()  # type: ignore
            # `import ... Session as X` brings no `Session`, and a class or function of that
            # name defined in the file is the file's own (calibreweb's requests-based one).
            imported = {
                n
                for n in factories
                if re.search(rb"\bimport\b[^\n]*\b" + re.escape(n.encode()) + rb"\b(?!\s+as\b)", data)
                and not re.search(rb"(?m)^\s*(?:class|def)\s+" + re.escape(n.encode()) + rb"\b", data)
            }
            in_file[path] = own | imported
            for operator, index in find_sites(data, in_file[path]):
                if operators and operator.split()[0] not in operators:
                    continue
                candidates[operator].append((path, index))
        for operator, sites in sorted(candidates.items()):
            rng.shuffle(sites)
            for path, index in sites[:per_project]:
                mutated = make_mutant(sources[path], operator, index, in_file[path])
                if mutated is None:
                    continue
                try:
                    compile(mutated, path, "exec", dont_inherit=True)
                except SyntaxError:
                    continue  # e.g. a `with` whose body cannot stand alone: not a plant
                codes = expected_codes(operator)
                if path not in originals:
                    originals[path] = lint_source(sources[path], path, unfiltered, linted)
                original = originals[path]
                result = lint_source(mutated, path, settings, linted)
                before = sum(1 for d in original.diagnostics if d.code in codes)
                if before:
                    continue  # not correct code to begin with: no clean plant in this file
                after = sum(1 for d in result.diagnostics if d.code in codes)
                totals[operator][1] += 1
                if after > before:
                    totals[operator][0] += 1
                else:
                    flat = os.path.relpath(path, root).replace(os.sep, "__")
                    copy = os.path.join(mutant_root, project["name"], operator.split()[0], f"{index}_{flat}")
                    os.makedirs(os.path.dirname(copy), exist_ok=True)
                    with open(copy, "wb") as handle:
                        handle.write(mutated)
                    misses.append(f"{operator}: {project['name']} {os.path.relpath(path, root)} site {index} -> {copy}")
    print(f"{'operator':<34} {'found':>6} {'planted':>7} recall")
    for operator in sorted(OPERATORS):
        found, planted = totals.get(operator, [0, 0])
        share = f"{found / planted:6.1%}" if planted else "     -"
        print(f"{operator:<34} {found:>6} {planted:>7} {share}")
    with open(os.path.join(cache_dir(), "mutations.json"), "w") as handle:
        json.dump({"totals": {k: v for k, v in totals.items()}, "misses": misses}, handle, indent=1)
    return {k: (v[0], v[1]) for k, v in totals.items()}


# --- fuzz ----------------------------------------------------------------------------------


def fuzz(projects: List[dict], per_project: int, edits: int, seed: int) -> int:
    """Random token-level edits of real files (delete, duplicate or move a token, or put a
    keyword or bracket in its place), each linted and fixed with SESSIONLINT_STRICT=1: any
    exception is a crash. Prints the counts; returns the number of crashes."""
    import io
    import tokenize
    import traceback

    os.environ["SESSIONLINT_STRICT"] = "1"
    from dataclasses import replace

    from sessionlint.api import fix_source, lint_source
    from sessionlint.config import Settings
    from sessionlint.registry import RULES

    rng = random.Random(seed)
    settings = Settings(select=("ALL",))
    unfiltered = replace(settings, prefilter=False)
    triggers = {t for rule in RULES for t in rule.triggers}
    noise = [b"(", b")", b"[", b":", b"with ", b"await ", b"yield ", b"return ", b"try:", b"finally:", b"\n", b"    ", b"lambda: ", b"async "]
    mutants = crashes = parsed = 0
    for project, root, sources, linted in _linted_projects(projects, settings):
        candidates = sorted(p for p, data in sources.items() if linted.may_have_findings(data, triggers))
        for path in rng.sample(candidates, min(per_project, len(candidates))):
            data = sources[path]
            try:
                tokens = [t for t in tokenize.tokenize(io.BytesIO(data).readline) if t.type not in (tokenize.ENCODING, tokenize.ENDMARKER)]
            except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
                continue
            lines = data.splitlines(keepends=True)
            offsets = [0]
            for line in lines:
                offsets.append(offsets[-1] + len(line))

            def span(token):
                (sl, sc), (el, ec) = token.start, token.end
                return offsets[sl - 1] + sc, offsets[el - 1] + ec if el - 1 < len(offsets) else len(data)

            for _ in range(edits):
                token = rng.choice(tokens)
                start, end = span(token)
                kind = rng.randrange(4)
                if kind == 0:
                    mutated = data[:start] + data[end:]
                elif kind == 1:
                    mutated = data[:end] + data[start:end] + data[end:]
                elif kind == 2:
                    other_start, other_end = span(rng.choice(tokens))
                    mutated = data[:start] + data[other_start:other_end] + data[end:]
                else:
                    mutated = data[:start] + rng.choice(noise) + data[end:]
                mutants += 1
                try:
                    result = lint_source(mutated, path, unfiltered, linted)
                    parsed += result.error is None
                    if result.error is None and any(d.fix is not None for d in result.diagnostics):
                        fix_source(mutated, path, settings, unsafe=True, project=sources)
                except Exception:
                    crashes += 1
                    copy = os.path.join(cache_dir(), "fuzz-crashes", f"{project['name']}-{crashes}.py")
                    os.makedirs(os.path.dirname(copy), exist_ok=True)
                    with open(copy, "wb") as handle:
                        handle.write(mutated)
                    print(f"crash: {project['name']} {os.path.relpath(path, root)} -> {copy}")
                    traceback.print_exc(limit=3)
    print(f"{mutants} mutants of {len(projects)} projects, {parsed} still parse; {crashes} crashes")
    return crashes


# --- report --------------------------------------------------------------------------------


def report() -> None:
    """corpus/RESULTS.md from the last `run`, the reviews and the last `mutate`."""
    with open(os.path.join(cache_dir(), "findings.json")) as handle:
        data = json.load(handle)
    findings, timings = data["findings"], data["timings"]
    unparsable = [f for f in findings if f["code"] == "syntax-error"]
    findings = [f for f in findings if f["code"] != "syntax-error"]
    reviews, _ = load_reviews()
    verdicts: Dict[str, Counter] = defaultdict(Counter)
    for finding in findings:
        review = reviews.get((finding["project"], finding["path"], finding["line"], finding["code"]))
        verdicts[finding["code"]][review["verdict"] if review else "unreviewed"] += 1
    fixed = [r for key, r in reviews.items() if r.get("fixed")]
    lost = [r for key, r in reviews.items() if r.get("lost")]
    lines = [
        "# Real-world evaluation",
        "",
        "Generated by `python scripts/corpus.py report` after `fetch`, `run`, `check` and `mutate`;",
        "verdicts are in `corpus/reviews.toml`.",
        "",
        f"{len(timings)} projects, {sum(t['files'] for t in timings.values())} Python files, "
        f"{sum(t['parsed'] for t in timings.values())} parsed after the prefilter, "
        f"{len(findings)} findings, {sum(t['seconds'] for t in timings.values()):.1f} s in one process.",
        f"{len(fixed)} false positives found in earlier runs were fixed, each with a fixture; "
        f"{len(lost)} true positives were given up for precision (`lost` in the reviews). "
        f"{len(unparsable)} files are Python 2 and do not parse (reported as syntax errors, not counted).",
        "",
        "| rule | findings | tp | fp | unreviewed | precision |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = Counter()
    for code in sorted(verdicts):
        counts = verdicts[code]
        total.update(counts)
        judged = counts["tp"] + counts["fp"]
        precision = f"{counts['tp'] / judged:.1%}" if judged else "-"
        lines.append(f"| {code} | {sum(counts.values())} | {counts['tp']} | {counts['fp']} | {counts['unreviewed']} | {precision} |")
    judged = total["tp"] + total["fp"]
    lines.append(f"| all | {sum(total.values())} | {total['tp']} | {total['fp']} | {total['unreviewed']} | {total['tp'] / judged:.1%} |" if judged else "| all | 0 | | | | |")
    lines += ["", "| project | files | parsed | findings | seconds |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, t in timings.items():
        lines.append(f"| {name} | {t['files']} | {t['parsed']} | {t['findings']} | {t['seconds']:.2f} |")
    mutations = os.path.join(cache_dir(), "mutations.json")
    if os.path.exists(mutations):
        with open(mutations) as handle:
            stored = json.load(handle)
        totals = stored["totals"]
        lines += ["", "Mutation recall (bugs planted in copies of correct real files):", "",
                  "| operator | found | planted | recall |", "| --- | ---: | ---: | ---: |"]
        for operator, (found, planted) in sorted(totals.items()):
            lines.append(f"| {operator} | {found} | {planted} | {found / planted:.1%} |" if planted else f"| {operator} | 0 | 0 | - |")
        misses = sorted(m.split(" -> ")[0] for m in stored.get("misses", ()))
        if misses:
            lines += ["", "Plants not found (the mutants stay in the cache under `mutants/`):", ""]
            lines += [f"- {m}" for m in misses]
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.relpath(RESULTS, ROOT)}")



def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["fetch", "run", "check", "mutate", "fuzz", "report", "bugs", "fresh", "all"])
    parser.add_argument("--mirrors", help="bugs: the folder of bare repository snapshots (<owner>+<name>/repo); default $SESSIONLINT_MIRRORS or ../.mirror")
    parser.add_argument("--repos", nargs="*", default=(), help="bugs: only these repositories (owner/name)")
    parser.add_argument("--write", action="store_true", help="bugs, fresh: put the tables into corpus/RESULTS.md")
    parser.add_argument("--misses", help="bugs: write every missed or flagged row to this file")
    parser.add_argument("--unreviewed", help="fresh: write the findings without a verdict to this file")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--edits", type=int, default=20, help="fuzz: mutants per file")
    parser.add_argument("--only", nargs="*", help="project names")
    parser.add_argument("--rules", nargs="*", help="mutate: only the operators of these rules (e.g. SL002 SL003)")
    parser.add_argument("--per-project", type=int, default=15, help="mutants per operator and project")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    projects = load_projects(args.only)
    if args.command in ("fetch", "all"):
        fetch(projects)
    if args.command in ("run", "all"):
        run(projects)
    if args.command in ("check", "all"):
        status = check()
        if args.command == "check":
            return status
    if args.command in ("mutate", "all"):
        mutate(projects, args.per_project, args.seed, args.rules or ())
    if args.command == "fuzz":
        return 1 if fuzz(projects, args.per_project, args.edits, args.seed) else 0
    if args.command in ("report", "all"):
        report()
    if args.command == "bugs":
        import bugs

        return bugs.run(cache_dir(), args.mirrors, args.repos, args.write, args.misses, args.verbose)
    if args.command == "fresh":
        import fresh

        return fresh.run(cache_dir(), args.mirrors, args.write, args.unreviewed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
