"""Benchmark sessionlint against its peers on pinned real projects, in one invocation.

    python benchmarks/bench.py                      # apache-airflow-core + whole corpus
    python benchmarks/bench.py --projects apache-airflow-core --runs 5
    python benchmarks/bench.py --no-peers           # sessionlint only

Real code comes from the corpus manifest (corpus/projects.toml), fetched by
`scripts/corpus.py fetch` into the corpus cache. Peers are installed at run time, pinned, into
a virtualenv under the cache: ruff, pylint, fixit. Runs of the tools alternate (round robin),
and every number is a median of whole-process wall times; ratios are sessionlint / peer from
the same invocation. Peak memory is the maximum resident set size of the run (getrusage of
the child). Results are printed as a Markdown table (paste into benchmarks/RESULTS.md).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import corpus  # noqa: E402

PEERS = {"ruff": "ruff==0.17.5", "pylint": "pylint==4.1.4", "fixit": "fixit==2.2.1"}


def peer_venv() -> str:
    return os.path.join(corpus.cache_dir(), "bench-peers")


def install_peers() -> Dict[str, str]:
    venv = peer_venv()
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    missing = [spec for name, spec in PEERS.items() if not os.path.exists(os.path.join(venv, "bin", name))]
    if missing:
        subprocess.run([python, "-m", "pip", "install", "-q", *missing], check=True)
    return {name: os.path.join(venv, "bin", name) for name in PEERS}


# Exit code recorded for a run stopped at --timeout: its wall time is a lower bound.
TIMED_OUT = -999


def timed(
    command: Sequence[str], cwd: Optional[str] = None, env: Optional[dict] = None, timeout: Optional[float] = None
) -> Tuple[float, int, int]:
    """(wall seconds, peak RSS in KiB, exit code) of one run of `command`; the peak comes
    from GNU time's %M for that process tree's largest process. A run still going after
    `timeout` seconds is killed with its whole process group: (timeout, 0, TIMED_OUT)."""
    import signal

    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        wrapped = ["/usr/bin/time", "-f", "%M", "-o", report.name, *command] if os.path.exists("/usr/bin/time") else list(command)
        started = time.perf_counter()
        process = subprocess.Popen(
            wrapped, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return time.perf_counter() - started, 0, TIMED_OUT
        wall = time.perf_counter() - started
        text = report.read().strip().splitlines()
        peak = int(text[-1]) if text and text[-1].isdigit() else 0
    return wall, peak, code


_INSTALLED: List[str] = []


def install_sessionlint() -> str:
    """This checkout installed as users get it, `pip install .` into a fresh virtualenv under
    the cache (not editable: an editable install adds an import hook, about 0.015 s per
    start; pip compiles the bytecode), with the versions of libcst, click and rich that the
    running virtualenv has. Returns its `sessionlint`."""
    from importlib.metadata import version

    venv = os.path.join(corpus.cache_dir(), "bench-sessionlint")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    pins = [f"{name}=={version(name)}" for name in ("libcst", "click", "rich")]
    subprocess.run([python, "-m", "pip", "install", "-q", *pins], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", ROOT], check=True)
    _INSTALLED.append(os.path.join(venv, "bin", "sessionlint"))
    return _INSTALLED[-1]


def sessionlint_binary() -> str:
    if _INSTALLED:
        return _INSTALLED[-1]
    candidate = os.path.join(os.path.dirname(sys.executable), "sessionlint")
    if not os.path.exists(candidate):
        sys.exit("run this with the Python of a virtualenv where sessionlint is installed")
    return candidate


def commands(target: str, peers: Dict[str, str], jobs: int, one_job: bool = True) -> Dict[str, List[str]]:
    tool = sessionlint_binary()
    found = {}
    if one_job:
        found["sessionlint cold, 1 job"] = [tool, target, "-q", "--no-cache", "-j", "1", "--exit-zero"]
    found.update({
        f"sessionlint cold, {jobs} jobs": [tool, target, "-q", "--no-cache", "-j", str(jobs), "--exit-zero"],
        "sessionlint warm cache": [tool, target, "-q", "-j", str(jobs), "--exit-zero"],
    })
    if "ruff" in peers:
        found["ruff check --select ALL --no-cache"] = [peers["ruff"], "check", "--select", "ALL", "--no-cache", "--exit-zero", "-q", target]
    if "pylint" in peers:
        found[f"pylint consider-using-with -j {jobs}"] = [
            peers["pylint"], "--disable=all", "--enable=consider-using-with", f"-j{jobs}", "--exit-zero", target,
        ]
    if "fixit" in peers:
        found["fixit lint (default rules)"] = [peers["fixit"], "lint", target]
    return found


def bench(
    name: str, target: str, peers: Dict[str, str], runs: int, jobs: int, one_job: bool = True,
    timeouts: Optional[Dict[str, float]] = None,
) -> List[Tuple[str, float, int, bool]]:
    cache_dir = tempfile.mkdtemp(prefix="sessionlint-bench-cache-")
    env = dict(os.environ, SESSIONLINT_CACHE_DIR=cache_dir, NO_COLOR="1")
    table = commands(target, peers, jobs, one_job)
    # Warm the cache once so "warm" measures a run over an unchanged tree.
    subprocess.run(table["sessionlint warm cache"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: Dict[str, List[float]] = {label: [] for label in table}
    peaks: Dict[str, int] = {label: 0 for label in table}
    stopped = set()
    for _ in range(runs):
        for label, command in table.items():  # round robin: machine noise hits every tool
            if label in stopped:
                continue  # a peer stopped at the timeout once is not run again
            limit = None
            if not label.startswith("sessionlint"):
                chosen = [t for peer, t in (timeouts or {}).items() if label.startswith(peer)]
                limit = chosen[0] if chosen else (timeouts or {}).get("*")
            wall, peak, code = timed(command, env=env, timeout=limit)
            samples[label].append(wall)
            peaks[label] = max(peaks[label], peak)
            if code == TIMED_OUT:
                stopped.add(label)
    shutil.rmtree(cache_dir, ignore_errors=True)
    return [(label, statistics.median(values), peaks[label], label in stopped) for label, values in samples.items()]


def precommit_samples(target: str, count: int = 5) -> Dict[str, List[List[str]]]:
    """Sets of five files of the target (paths relative to it), as a pre-commit hook passes
    the files of a commit:
    - "any": seeded random samples of the project's files (a typical commit);
    - "prefiltered": five files that pass the text prefilter;
    - "parsed": five files that are parsed with libcst (the worst case: `import libcst` and
      five parses)."""
    import random

    sys.path.insert(0, ROOT)
    from sessionlint.api import build_project, lint_paths, python_files, read_sources
    from sessionlint.config import Settings
    from sessionlint.registry import RULES

    files = sorted(python_files([target]))
    sources = read_sources(files)
    project = build_project(sources, Settings())
    triggers = {t for rule in RULES for t in rule.triggers}
    prefiltered = sorted(p for p, data in sources.items() if project.may_have_findings(data, triggers))
    parsed = sorted(r.path for r in lint_paths([target], Settings(cache=False)).files if r.parsed)
    rng = random.Random(20261130)
    chosen = {
        "any": [rng.sample(files, 5) for _ in range(count)],
        "prefiltered": [prefiltered[:5]],
        "parsed": [parsed[:5]],
    }
    return {kind: [[os.path.relpath(p, target) for p in sample] for sample in samples] for kind, samples in chosen.items()}


def hook_project(target: str, project: str) -> None:
    """A copy of `target` at `project` as a hook sees it: a pyproject.toml marks its root
    (the corpus keeps only the Python files), and it is a git checkout, so the run asks
    `git check-ignore` which files git ignores (about 0.02 s of a hook run, with the import
    of `subprocess`). Without git on the machine, no checkout."""
    shutil.copytree(target, project)
    with open(os.path.join(project, "pyproject.toml"), "w") as handle:
        handle.write('[project]\nname = "benchmark"\n')
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", project], check=True)


def precommit_runs(target: str, runs: int) -> Dict[Tuple[str, bool], Tuple[float, float]]:
    """Median wall time of `sessionlint FILES` as a pre-commit hook runs it, per kind of
    five-file set, with and without the cache, and the median of `python -c "import
    libcst"` timed just before each of those runs (this machine's speed drifts by a third
    from one minute to the next; the floor of a run that parses, timed beside it, tells a
    slow minute from a slow change). The project is copied to a temporary git checkout
    (`hook_project`), so the project pass reads the whole project as in a real hook. Before
    each timed run the five files are edited (a comment appended), as in a commit: their
    results are never cached; with the cache, the project pass reuses the scans of the
    unchanged files, which a first run over the project stored."""
    tool = sessionlint_binary()
    python = os.path.join(os.path.dirname(tool), "python")
    times: Dict[Tuple[str, bool], Tuple[float, float]] = {}
    samples = precommit_samples(target)
    with tempfile.TemporaryDirectory(prefix="sessionlint-precommit-") as temporary:
        project = os.path.join(temporary, "project")
        hook_project(target, project)
        # The files of a real checkout were written long before a hook runs: past the cache's
        # 2 s window in which a just-written file's status is not trusted (sessionlint.cache).
        time.sleep(2.5)
        timed([tool, ".", "-q", "--exit-zero"], cwd=project)  # the cache of a previous run
        edit = 0
        for kind, sets in samples.items():
            for cached in (True, False):
                walls = []
                floors = []
                for chosen in sets:
                    for _ in range(runs):
                        edit += 1
                        for path in chosen:
                            with open(os.path.join(project, path), "a") as handle:
                                handle.write(f"\n# pre-commit benchmark edit {edit}\n")
                        floors.append(timed([python, "-c", "import libcst"])[0])
                        command = [tool, *chosen, "-q", "--exit-zero"] + ([] if cached else ["--no-cache"])
                        walls.append(timed(command, cwd=project)[0])
                times[(kind, cached)] = (statistics.median(walls), statistics.median(floors))
    return times


def table_of(rows: Sequence[Tuple[str, float, int, bool]]) -> str:
    """The Markdown table of one target: a peer stopped at the timeout shows '> T' and the
    ratio against it '< R' (sessionlint is at least that much faster)."""
    bases = {}
    for peer in ("ruff", "pylint", "fixit"):
        bases[peer] = next(((wall, stopped) for name, wall, _, stopped in rows if name.startswith(peer)), None)
    lines = ["| tool | median wall (s) | peak RSS (MiB) | / ruff | / pylint | / fixit |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, wall, peak, stopped in rows:
        ratios = []
        for base in bases.values():
            if base is None or not name.startswith("sessionlint"):
                ratios.append("")
            else:
                ratios.append(f"{'< ' if base[1] else ''}{wall / base[0]:.2f}x")
        shown = f"> {wall:.0f}" if stopped else f"{wall:.3f}"
        memory = "" if stopped else f"{peak / 1024:.0f}"
        lines.append(f"| {name} | {shown} | {memory} | {' | '.join(ratios)} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", nargs="*", default=["apache-airflow-core", "ALL"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument(
        "--corpus-peers", nargs="*", default=None,
        help="peers to run on the whole corpus (default: all; pylint and fixit take many minutes there)",
    )
    parser.add_argument("--corpus-one-job", action="store_true", help="also time a 1-job cold run on the whole corpus")
    parser.add_argument("--precommit-only", action="store_true", help="time only --version and the pre-commit-sized runs")
    parser.add_argument(
        "--timeout", nargs="*", default=[], metavar="[PEER=]SECONDS",
        help="stop a peer's run after this many seconds (all peers, or one: pylint=2800); its time is then a lower bound, printed as '> T'",
    )
    args = parser.parse_args(argv)
    timeouts = {}
    for item in args.timeout:
        peer, _, seconds = item.rpartition("=")
        timeouts[peer or "*"] = float(seconds)
    projects = corpus.load_projects()
    corpus.fetch(projects)
    peers = {} if args.no_peers else install_peers()
    print(f"machine: {os.cpu_count()} cores; runs per tool: {args.runs}; medians of wall time\n")
    tool = install_sessionlint()
    print(f"sessionlint: this checkout, `pip install .` into {os.path.dirname(os.path.dirname(tool))}\n")
    version_time = statistics.median(timed([tool, "--version"])[0] for _ in range(max(args.runs, 5)))
    print(f"`sessionlint --version`: {version_time:.3f} s")
    airflow = [p for p in projects if p["name"] == "apache-airflow-core" and p["name"] in args.projects]
    if airflow:
        times = precommit_runs(corpus.source_dir(airflow[0]), args.runs)
        print("pre-commit-sized runs (5 edited files of apache-airflow-core, project pass over all of it;")
        print("beside each, the median of `python -c 'import libcst'` timed just before each run):\n")
        print("| five files | cache of the last run (s) | import libcst beside it (s) | no cache (s) | import libcst beside it (s) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        labels = {
            "any": "random (5 seeded samples)",
            "prefiltered": "passing the text prefilter",
            "parsed": "parsed with libcst (worst case)",
        }
        for kind, label in labels.items():
            (warm, warm_floor), (cold, cold_floor) = times[(kind, True)], times[(kind, False)]
            print(f"| {label} | {warm:.3f} | {warm_floor:.3f} | {cold:.3f} | {cold_floor:.3f} |")
        print()
    if args.precommit_only:
        return 0
    for selection in args.projects:
        if selection == "ALL":
            target = os.path.join(corpus.cache_dir(), "src")
            label = f"whole corpus ({len(projects)} projects)"
        else:
            chosen = [p for p in projects if p["name"] == selection]
            if not chosen:
                continue
            target = corpus.source_dir(chosen[0])
            label = selection
        chosen_peers = peers
        if selection == "ALL" and args.corpus_peers is not None:
            chosen_peers = {name: path for name, path in peers.items() if name in args.corpus_peers}
        one_job = selection != "ALL" or args.corpus_one_job
        rows = bench(label, target, chosen_peers, args.runs, args.jobs, one_job=one_job, timeouts=timeouts)
        print(f"### {label}\n")
        print(table_of(rows))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
