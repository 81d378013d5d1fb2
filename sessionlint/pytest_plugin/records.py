"""What the runtime leak check records, as plain data: where a resource was opened (the
first frames in the user's code), the leaks found after a test, and the JSON report that
`sessionlint --runtime-report` reads. No SQLAlchemy here, so `--runtime-report` runs without it.
"""

import json
import os
import site
import sys
import sysconfig
from dataclasses import dataclass, field
from types import FrameType
from typing import Dict, Iterable, List, Optional, Tuple

REPORT_VERSION = 1
# How many frames of the user's code a site keeps: the cross-check matches a static finding
# at any of them (a helper that returns a new session is opened in the helper, reported by
# sessionlint at its caller).
STACK_DEPTH = 4

# kind -> the rule that describes a leak of it
RULES = {"connection": ("SL010", "connection-not-closed"), "session": ("SL001", "session-not-closed"), "async session": ("SL001", "session-not-closed")}

Frame = Tuple[str, int]  # absolute path, 1-based line


@dataclass(frozen=True)
class Site:
    """Where a session or connection was opened: the user's frames, innermost first."""

    stack: Tuple[Frame, ...]

    @property
    def path(self) -> str:
        return self.stack[0][0] if self.stack else "<unknown>"

    @property
    def line(self) -> int:
        return self.stack[0][1] if self.stack else 0


@dataclass(frozen=True)
class Leak:
    kind: str  # "connection", "session" or "async session"
    site: Site
    owner: str  # "" for the test itself, else "session-scoped fixture `db`"

    def describe(self, rootdir: str) -> str:
        """One line: the kind, the file:line that opened it, the rule."""
        code, name = RULES[self.kind]
        where = f"{display(self.site.path, rootdir)}:{self.site.line}"
        owner = f" by {self.owner}" if self.owner else ""
        return f"{self.kind} opened at {where}{owner} was not closed ({code} {name})"


def display(path: str, rootdir: str) -> str:
    """`path` relative to the pytest rootdir when it lies inside it."""
    try:
        relative = os.path.relpath(path, rootdir)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith(os.pardir) else relative


class Attribution:
    """Finds the first frame of the user's code: not SQLAlchemy, sessionlint, pytest, pluggy,
    the standard library or anything installed in site-packages. Decisions are cached per
    file name, so walking a stack costs a few dictionary look-ups per frame."""

    def __init__(self, library_roots: Iterable[str], runner_roots: Iterable[str] = ()) -> None:
        # Frames of the test runner (pytest, pluggy) end the user's stack: what calls them
        # is the runner's own caller (a shell, or pytester in pytest's own tests).
        self.runner_roots = tuple(os.path.join(os.path.realpath(root), "") for root in runner_roots)
        self.is_runner: Dict[str, bool] = {}
        roots = set(library_roots) | set(runner_roots)
        paths = sysconfig.get_paths()
        roots.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts") if key in paths)
        roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
        roots.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else "")
        roots.update(os.path.join(prefix, "lib") for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix})
        self.roots = tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)
        self.is_user: Dict[str, bool] = {}

    def is_user_file(self, filename: str) -> bool:
        known = self.is_user.get(filename)
        if known is None:
            # "<frozen ...>", "<string>" (generated __init__ methods) are never the user's code
            known = not filename.startswith("<") and not os.path.realpath(filename).startswith(self.roots)
            self.is_user[filename] = known
        return known

    def is_runner_file(self, filename: str) -> bool:
        known = self.is_runner.get(filename)
        if known is None:
            known = self.is_runner[filename] = os.path.realpath(filename).startswith(self.runner_roots)
        return known

    def site_of(self, frame: Optional[FrameType]) -> Site:
        stack: List[Frame] = []
        # SQLAlchemy's asyncio layer runs the sync code in a greenlet whose stack ends in
        # `greenlet_spawn`; the awaiting user code is on the parent greenlet's stack.
        greenlet = sys.modules.get("greenlet")
        current = greenlet.getcurrent() if greenlet is not None else None
        while len(stack) < STACK_DEPTH:
            if frame is None:
                current = current.parent if current is not None else None
                if current is None:
                    break
                frame = current.gr_frame
                continue
            filename = frame.f_code.co_filename
            if self.is_user_file(filename):
                stack.append((os.path.abspath(filename), frame.f_lineno))
            elif stack and self.is_runner_file(filename):
                break
            frame = frame.f_back
        return Site(tuple(stack))


@dataclass
class SiteCount:
    """How often a site opened a resource during the run, and how often it leaked."""

    kind: str
    stack: Tuple[Frame, ...]
    opened: int = 0
    leaked: int = 0
    tests: List[str] = field(default_factory=list)  # the first tests that leaked it


class Recorder:
    """Counts per site for the JSON report (`--sessionlint-leaks-report`)."""

    def __init__(self) -> None:
        self.sites: Dict[Tuple[str, Frame], SiteCount] = {}

    def opened(self, kind: str, site: Site) -> None:
        if not site.stack:
            return
        key = (kind, site.stack[0])
        count = self.sites.get(key)
        if count is None:
            count = self.sites[key] = SiteCount(kind, site.stack)
        count.opened += 1

    def leaked(self, leak: Leak, nodeid: str) -> None:
        if not leak.site.stack:
            return
        count = self.sites.get((leak.kind, leak.site.stack[0]))
        if count is None:
            count = self.sites[(leak.kind, leak.site.stack[0])] = SiteCount(leak.kind, leak.site.stack, opened=1)
        count.leaked += 1
        if len(count.tests) < 5:
            count.tests.append(nodeid)

    def write(self, path: str, rootdir: str) -> None:
        sites = [
            {
                "kind": count.kind,
                "rule": RULES[count.kind][0],
                "path": count.stack[0][0],
                "line": count.stack[0][1],
                "stack": [{"path": frame_path, "line": line} for frame_path, line in count.stack],
                "opened": count.opened,
                "leaked": count.leaked,
                "tests": count.tests,
            }
            for _, count in sorted(self.sites.items())
        ]
        data = {"version": REPORT_VERSION, "tool": "sessionlint", "rootdir": rootdir, "sites": sites}
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")


@dataclass(frozen=True)
class RecordedSite:
    kind: str
    rule: str
    stack: Tuple[Frame, ...]
    opened: int
    leaked: int
    tests: Tuple[str, ...]


@dataclass(frozen=True)
class RecordedRun:
    rootdir: str
    sites: Tuple[RecordedSite, ...]


class ReportError(ValueError):
    pass


def read_report(path: str) -> RecordedRun:
    """The report a run with `--sessionlint-leaks-report` wrote; ReportError if it is not one."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise ReportError(f"{path}: cannot read: {error.strerror or error}") from None
    except ValueError as error:
        raise ReportError(f"{path}: not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("tool") != "sessionlint" or data.get("version") != REPORT_VERSION:
        raise ReportError(f"{path}: not a sessionlint runtime report (version {REPORT_VERSION})")
    try:
        sites = tuple(
            RecordedSite(
                str(item["kind"]),
                str(item["rule"]),
                tuple((str(frame["path"]), int(frame["line"])) for frame in item["stack"]),
                int(item["opened"]),
                int(item["leaked"]),
                tuple(str(test) for test in item["tests"]),
            )
            for item in data["sites"]
        )
        return RecordedRun(str(data["rootdir"]), sites)
    except (KeyError, TypeError, ValueError) as error:
        raise ReportError(f"{path}: malformed site: {error!r}") from None
