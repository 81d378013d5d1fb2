"""The `sessionlint` command's entry point: it forks the helper of a small run before
anything else is imported, then hands over to the click CLI.

A pre-commit hook names a few files. When one of them has to be parsed, the run's critical
path is `import libcst` (about 0.2 s), then the parses; the rest (click, the configuration,
the project pass) runs meanwhile on the other core. Forking the helper here, some 0.02 s
after the interpreter starts instead of after click and the configuration (0.05-0.08 s),
starts that import as early as it can start. The guess looks only at the command line and
at the named files' bytes; when the CLI later finds the run is not one for a helper (one
job configured, another command), the helper is stopped. It never changes a finding.

This module imports only the standard library: it runs before everything else.
"""

import os
import sys
from typing import Callable, List, Optional, Sequence, Tuple

# Words (lower case) one of which a file that needs libcst almost always holds: session,
# engine and connection names, `db`, sessionmakers, commit and flush calls, the library. A
# small run forks its helper only if one of its files holds one; the choice costs time, never
# a finding.
HELPER_WORDS = (b"session", b"engine", b"connect", b"db", b"maker", b".commit", b".flush", b"sqlalchemy", b"sqlmodel")
# A run of this many files or more starts a process pool instead (engine.EARLY_POOL_FILES).
MAX_HELPED_FILES = 200

# Options that take a value (the value is not a path to lint) and commands that lint nothing.
_VALUE_OPTIONS = frozenset(
    (
        "--select", "--extend-select", "--ignore", "--config", "--exclude", "--extend-exclude",
        "--output-format", "--format", "-o", "--output-file", "--stdin-filename", "--baseline",
        "--write-baseline", "--explain", "-j", "--jobs",
    )
)
_NO_LINT = frozenset(("--version", "--help", "-h", "--list-rules", "--explain", "--clean", "-"))

Child = Tuple[int, int, int]  # (pid, fd to write its input to or -1, fd to read its answer from)

_PREFORKED: List[Child] = []


def main() -> None:
    """`sessionlint ...`: a helper forked if the command line asks for a small lint run,
    then the click CLI, then a hard exit."""
    child = prefork(sys.argv[1:])
    if child is not None:
        _PREFORKED.append(child)
    from sessionlint.cli import main as cli_main

    try:
        cli_main()
    except SystemExit as stop:
        hard_exit(stop.code)
    hard_exit(0)


def hard_exit(code: object) -> None:
    """Exit as `sys.exit(code)` would, without the interpreter's teardown: freeing a
    project index object by object costs a pre-commit run about 0.02 s, and the run has
    written and closed everything it writes (its cache, its fixes, its report) by now. Like
    mypy's `hard_exit`. Only a normal end gets here: an exception still unwinds as usual."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        sys.stderr.write(f"{code}\n")
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`sessionlint | head`) or stream
            if stream is sys.stdout and status == 0:
                status = 120  # what Python itself exits with when stdout cannot be flushed
    os._exit(status)


def take() -> Optional[Child]:
    """The helper forked at start-up, if any (the caller owns it from now on)."""
    return _PREFORKED.pop() if _PREFORKED else None


def can_fork() -> bool:
    """Whether a helper can run here: `os.fork` (not on macOS, where forking a process that
    may have loaded system frameworks is unsafe), a second core, and libcst not imported
    yet (an API user or a test session parses at once: nothing to hide)."""
    return hasattr(os, "fork") and sys.platform != "darwin" and (os.cpu_count() or 1) > 1 and "libcst" not in sys.modules


def wants_helper(data: bytes) -> bool:
    lowered = data.lower()
    return any(word in lowered for word in HELPER_WORDS)


def linted_files(argv: Sequence[str]) -> Optional[List[str]]:
    """The files a command line names to lint, or None when it is not a small lint run of
    named files: another command, stdin, one job, a directory (a tree may be large)."""
    files: List[str] = []
    previous = ""
    expect_value = False
    positional_only = False
    for arg in argv:
        if expect_value:
            expect_value = False
            if arg == "1" and previous in ("-j", "--jobs"):
                return None
            continue
        if not positional_only and arg.startswith("-") and arg != "-":
            if arg == "--":
                positional_only = True
            elif arg in _NO_LINT or arg.split("=", 1)[0] in _NO_LINT:
                return None
            elif arg in ("-j1", "--jobs=1"):
                return None
            elif arg in _VALUE_OPTIONS:
                expect_value = True
                previous = arg
            continue
        if arg == "-" or os.path.isdir(arg):
            return None
        if os.path.isfile(arg):
            files.append(arg)
    return files if 0 < len(files) < MAX_HELPED_FILES else None


def prefork(argv: Sequence[str]) -> Optional[Child]:
    """Fork the helper now if `argv` asks for a small lint run and a named file may need
    libcst."""
    if not can_fork() or os.environ.get("SESSIONLINT_NO_PREFORK"):
        return None
    files = linted_files(argv)
    if not files:
        return None
    for path in files:
        try:
            with open(path, "rb") as handle:
                if wants_helper(handle.read()):
                    return spawn(lambda read_fd, write_fd: _run_helper(read_fd, write_fd, files), with_input=True)
        except OSError:
            continue
    return None


def _run_helper(read_fd: Optional[int], write_fd: int, files: Sequence[str] = ()) -> int:
    """The helper forked at start-up: it parses the named `files` while it waits."""
    import sessionlint.rules  # noqa: F401 - libcst and the rules first

    from sessionlint.engine import helper_main

    return helper_main(read_fd, write_fd, files)


def spawn(function: Callable[[Optional[int], int], int], with_input: bool = False) -> Optional[Child]:
    """Fork a child that runs `function(read_fd, write_fd)` and exits with its result (1 on
    any exception), or None if the fork fails. The child never returns into the caller."""
    child_in, to_child = os.pipe() if with_input else (-1, -1)  # (read end, write end)
    from_child, child_out = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        for fd in (child_in, to_child, from_child, child_out):
            if fd >= 0:
                os.close(fd)
        return None
    if pid == 0:
        code = 1
        try:
            if with_input:
                os.close(to_child)
            os.close(from_child)
            code = function(child_in if with_input else None, child_out)
        except BaseException:  # noqa: B036 - whatever happens, the child must exit here
            if os.environ.get("SESSIONLINT_STRICT") == "1":
                import traceback

                traceback.print_exc()
        finally:
            os._exit(code)
    if with_input:
        os.close(child_in)
    os.close(child_out)
    return pid, to_child, from_child


def stop(child: Child) -> None:
    """Kill a child that is not needed (a helper still importing, most likely) and reap it."""
    import signal

    pid, write_fd, read_fd = child
    for fd in (write_fd, read_fd):
        if fd >= 0:
            os.close(fd)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass


def write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # the reader is gone: its answer is missing and the work done again
        pass


def read_all(fd: int) -> bytes:
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        chunks = []
    finally:
        os.close(fd)
    return b"".join(chunks)


def collect(child: Child, count: int) -> Optional[list]:
    """A child's answer, a pickled list of `count` items, or None if it failed; the child
    reaped."""
    import pickle

    pid, _, read_fd = child
    answer = read_all(read_fd)
    try:
        _, status = os.waitpid(pid, 0)
    except OSError:
        status = 1
    if status != 0 or not answer:
        return None
    try:
        found = pickle.loads(answer)
    except Exception:  # a truncated or garbled answer: the work is done again
        return None
    return found if isinstance(found, list) and len(found) == count else None
