"""A/B of two revisions of sessionlint on a pre-commit-sized run, in one invocation.

    python benchmarks/ab.py HEAD~1              # HEAD~1 against this working tree
    python benchmarks/ab.py HEAD~2 HEAD --runs 30
    python benchmarks/ab.py HEAD~1 --kind random --no-cache

A change worth 0.01 s to a hook run hides in this machine's drift (`import libcst` takes 0.2 s
in one minute and 0.35 s in the next), so each revision is installed as users get it (`pip
install` of that revision, not editable, into its own virtualenv under the corpus cache) and
the two run in alternation, A then B then `python -c "import libcst"`, the five files edited
(a comment appended) before every run, as a commit edits them. Each revision lints its own
copy of apache-airflow-core: the cache of the last run is keyed by the tool's own code, so
two revisions sharing one would spoil each other's. Printed: the medians, the median of the
paired differences B - A (one per round) and in how many rounds B was faster.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from typing import Dict, List, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402

import corpus  # noqa: E402  (scripts/, on the path bench.py sets)

WORKING_TREE = "."


def install(revision: str, label: str) -> str:
    """`revision` (a git revision, or "." for the working tree) installed into the virtualenv
    `bench-ab-<label>` under the corpus cache, with the running virtualenv's libcst, click
    and rich; returns its `sessionlint`."""
    from importlib.metadata import version

    venv = os.path.join(corpus.cache_dir(), f"bench-ab-{label}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    pins = [f"{name}=={version(name)}" for name in ("libcst", "click", "rich")]
    subprocess.run([python, "-m", "pip", "install", "-q", *pins], check=True)
    with tempfile.TemporaryDirectory(prefix="sessionlint-ab-") as temporary:
        source = bench.ROOT
        if revision != WORKING_TREE:
            archive = os.path.join(temporary, "source.tar")
            subprocess.run(["git", "-C", bench.ROOT, "archive", "-o", archive, revision], check=True)
            source = os.path.join(temporary, "source")
            with tarfile.open(archive) as handle:
                handle.extractall(source, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", source], check=True)
    return os.path.join(venv, "bin", "sessionlint")


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="revision A (git)")
    parser.add_argument("new", nargs="?", default=WORKING_TREE, help="revision B (git; default: this working tree)")
    parser.add_argument("--runs", type=int, default=30, help="rounds (default 30)")
    parser.add_argument("--kind", choices=("parsed", "prefiltered", "any"), default="parsed", help="which five files (bench.py's sets)")
    parser.add_argument("--no-cache", action="store_true", help="time runs without the cache of the last run")
    args = parser.parse_args(list(argv) or None)
    airflow = [p for p in corpus.load_projects() if p["name"] == "apache-airflow-core"]
    corpus.fetch(airflow)
    target = corpus.source_dir(airflow[0])
    chosen = bench.precommit_samples(target)[args.kind][0]
    tools = {"A": install(args.base, "a"), "B": install(args.new, "b")}
    python = os.path.join(os.path.dirname(tools["A"]), "python")
    times: Dict[str, List[float]] = {"A": [], "B": [], "import libcst": []}
    with tempfile.TemporaryDirectory(prefix="sessionlint-ab-") as temporary:
        projects = {}
        for label, tool in tools.items():
            project = projects[label] = os.path.join(temporary, label)
            bench.hook_project(target, project)
            bench.timed([tool, ".", "-q", "--exit-zero"], cwd=project)  # the cache of a previous run
        edit = 0
        for _ in range(args.runs):
            for label in times:
                if label == "import libcst":
                    times[label].append(bench.timed([python, "-c", "import libcst"])[0])
                    continue
                edit += 1
                for path in chosen:
                    with open(os.path.join(projects[label], path), "a") as handle:
                        handle.write(f"\n# a/b edit {edit}\n")
                command = [tools[label], *chosen, "-q", "--exit-zero"] + (["--no-cache"] if args.no_cache else [])
                times[label].append(bench.timed(command, cwd=projects[label])[0])
    floor = statistics.median(times["import libcst"])
    print(f"five files ({args.kind}), {'no cache' if args.no_cache else 'cache of the last run'}, {args.runs} rounds")
    print(f"A = {args.base}, B = {'working tree' if args.new == WORKING_TREE else args.new}\n")
    print("| run | median (s) | / import libcst |")
    print("| --- | ---: | ---: |")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.3f} | {median / floor:.2f}x |")
    differences = [b - a for a, b in zip(times["A"], times["B"])]
    faster = sum(d < 0 for d in differences)
    print(f"\npaired B - A: median {statistics.median(differences) * 1000:+.1f} ms; B faster in {faster} of {len(differences)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
