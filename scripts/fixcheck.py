"""Real-code check of the autofix: copy each downloaded corpus project (see corpus.py fetch)
into a scratch directory, run `sessionlint --fix --unsafe-fixes` on the copy, and check that
every changed file compiles and that a second run changes nothing.

    python scripts/fixcheck.py [--only NAME ...]

Prints, per project, the files changed, the findings before and after, the fixes applied, and
any file that does not compile or changes again. Exit 1 when any check fails. The copies live
under the corpus cache (`fixcheck/`), never in the repository.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus  # noqa: E402


def snapshot(root: str) -> Dict[str, str]:
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def count(tool: str, root: str) -> int:
    completed = subprocess.run(
        [tool, root, "--isolated", "--no-cache", "--select", "ALL", "--output-format", "concise", "--exit-zero"],
        capture_output=True, text=True,
    )
    return sum(1 for line in completed.stdout.splitlines() if ": SL" in line)


def check(project: dict, tool: str) -> bool:
    source = corpus.source_dir(project)
    if not os.path.isdir(source):
        print(f"{project['name']}: not fetched")
        return True
    copy = os.path.join(corpus.cache_dir(), "fixcheck", project["name"])
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    before_files = snapshot(copy)
    before = count(tool, copy)
    fix = [tool, copy, "--isolated", "--no-cache", "--select", "ALL", "--fix", "--unsafe-fixes", "--exit-zero", "-q"]
    first = subprocess.run(fix, capture_output=True, text=True)
    after_files = snapshot(copy)
    changed = sorted(p for p in after_files if after_files[p] != before_files.get(p))
    broken: List[str] = []
    for relative in changed:
        path = os.path.join(copy, relative)
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            compile(data, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as error:
            broken.append(f"{relative}: {error}")
    subprocess.run(fix, capture_output=True, text=True)
    again = sorted(p for p, h in snapshot(copy).items() if h != after_files.get(p))
    after = count(tool, copy)
    errors = [line for line in first.stderr.splitlines() if "error" in line]
    ok = not broken and not again and not errors
    print(
        f"{project['name']:<28} {len(changed):>3} files changed, findings {before:>3} -> {after:>3} "
        f"({before - after} removed); not compiling: {len(broken)}; changed again: {len(again)}; errors: {len(errors)}"
    )
    for line in broken + [f"changed again: {p}" for p in again] + errors:
        print(f"    {line}")
    return ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args(argv)
    tool = os.path.join(os.path.dirname(sys.executable), "sessionlint")
    if not os.path.exists(tool):
        sys.exit("run this with the Python of a virtualenv where sessionlint is installed")
    results = [check(project, tool) for project in corpus.load_projects(args.only)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
