"""Cut a release: one command.

    python scripts/release.py 0.2.0            # bump, changelog, build, check, commit, tag
    python scripts/release.py 0.2.0 --upload   # ... and upload dist/ with twine

It refuses a dirty work tree, a version that is not newer, or a CHANGELOG without an
"Unreleased" section. Steps: the version goes into `sessionlint/__init__.py` (the one place
it is written; pyproject.toml reads it from there), the "Unreleased" section of CHANGELOG.md
becomes "<version> (<date>)" under a new empty "Unreleased", the sdist and wheel are built
into dist/ (`python -m build`) and checked (`twine check`), and the change is committed and
tagged `v<version>`. Pushing the commit and tag is left to you (`git push --follow-tags`).
"""

import argparse
import datetime
import glob
import os
import re
import shutil
import subprocess
import sys
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INIT = os.path.join(ROOT, "sessionlint", "__init__.py")
CHANGELOG = os.path.join(ROOT, "CHANGELOG.md")
VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.M)


def _key(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _run(command: List[str]) -> None:
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Cut a sessionlint release.")
    parser.add_argument("version", help="the new version, MAJOR.MINOR.PATCH")
    parser.add_argument("--upload", action="store_true", help="upload dist/ with `twine upload` after tagging")
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not re.fullmatch(r"\d+\.\d+\.\d+", args.version):
        return _error(f"`{args.version}` is not MAJOR.MINOR.PATCH")
    if subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip():
        return _error("the work tree has uncommitted changes")
    with open(INIT, encoding="utf-8") as handle:
        init = handle.read()
    match = VERSION.search(init)
    if match is None:
        return _error("no __version__ in sessionlint/__init__.py")
    if _key(args.version) <= _key(match.group(1)):
        return _error(f"{args.version} is not newer than {match.group(1)}")
    with open(CHANGELOG, encoding="utf-8") as handle:
        changelog = handle.read()
    if "\n## Unreleased\n" not in changelog:
        return _error("CHANGELOG.md has no `## Unreleased` section")
    changelog = changelog.replace("\n## Unreleased\n", f"\n## Unreleased\n\n## {args.version} ({args.date})\n", 1)
    with open(INIT, "w", encoding="utf-8") as handle:
        handle.write(VERSION.sub(f'__version__ = "{args.version}"', init, count=1))
    with open(CHANGELOG, "w", encoding="utf-8") as handle:
        handle.write(changelog)
    shutil.rmtree(os.path.join(ROOT, "dist"), ignore_errors=True)
    _run([sys.executable, "-m", "build", "--outdir", "dist", "."])
    _run([sys.executable, "-m", "twine", "check", "--strict", *sorted(glob.glob(os.path.join(ROOT, "dist", "*")))])
    _run(["git", "commit", "-q", "-m", f"release: {args.version}", "--", "sessionlint/__init__.py", "CHANGELOG.md"])
    _run(["git", "tag", "-a", f"v{args.version}", "-m", f"sessionlint {args.version}"])
    if args.upload:
        _run([sys.executable, "-m", "twine", "upload", *sorted(glob.glob(os.path.join(ROOT, "dist", "*")))])
    print(f"Released {args.version}: push with `git push --follow-tags`.")
    return 0


def _error(message: str) -> int:
    print(f"release: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
