"""Where the bulk steps of a run execute: in this process, or on a pool of worker processes.
Both run the very same functions on the very same items and give the results in the order of
the items, so a run's findings never depend on which one it used (tests compare them).

The pool is the standard library's `ProcessPoolExecutor`, started with a method that is safe
on the platform: `forkserver` where it exists (the server imports libcst and the rules once,
and every worker is forked from that single-threaded process), `spawn` elsewhere; never a
plain `fork` of this process, which may be running the parser thread. Workers end on SIGINT
(the run's process handles one Ctrl-C for all of them), never hold the run's standard output
(so `sessionlint . | cat` ends when the run ends), and exit on their own when the run's
process is gone, however it ended (SIGKILL, the OOM killer).
"""

import itertools
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, Iterator, Optional, Sequence, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

# multiprocessing, concurrent.futures and logging are imported when a pool is made: a run
# in this process (a warm cache, a few files) never needs them

Item = TypeVar("Item")
Result = TypeVar("Result")

# libcst's parser makes millions of short-lived objects, none in reference cycles: at CPython's
# default thresholds (700, 10, 10) the cyclic collector runs all the time for nothing.
# Only where it is CPython's collector (benchmarks/RESULTS.md has the measurement).
GC_THRESHOLDS = (50_000, 20, 20)
# How often a worker checks that the run's process is still there.
_WATCHDOG_SECONDS = 0.25


class Shared(Generic[Item]):
    """A value many tasks carry to the workers (a project's index, with every batch of its
    files): pickled once in this process however many tasks carry it, and unpickled once in
    each worker, which keeps the last few by key. Pickling a large index again for each
    batch cost more than the lint itself when one project had thousands of files. In this
    process the value is used as it is."""

    _numbers = itertools.count()

    def __init__(self, value: Item) -> None:
        self.value = value
        self.key = f"{os.getpid()}:{next(Shared._numbers)}"
        self._pickled: Optional[bytes] = None

    def __reduce__(self) -> Any:
        if self._pickled is None:
            import pickle

            self._pickled = pickle.dumps(self.value, pickle.HIGHEST_PROTOCOL)
        return (_received, (self.key, self._pickled))


_RECEIVED: Dict[str, Any] = {}  # key -> what a worker unpickled, the newest last
_KEPT = 4


def _received(key: str, pickled: bytes) -> "Shared[Any]":
    value = _RECEIVED.pop(key, _RECEIVED)
    if value is _RECEIVED:
        import pickle

        value = pickle.loads(pickled)
    _RECEIVED[key] = value
    while len(_RECEIVED) > _KEPT:
        del _RECEIVED[next(iter(_RECEIVED))]
    shared: Shared[Any] = Shared.__new__(Shared)
    shared.value, shared.key, shared._pickled = value, key, None
    return shared


def tune_gc() -> Optional[tuple]:
    """Raise the cyclic collector's thresholds for a run; the old ones (None elsewhere than
    CPython, where nothing is changed)."""
    if sys.implementation.name != "cpython":
        return None
    import gc

    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    return previous


def restore_gc(previous: Optional[tuple]) -> None:
    if previous is not None:
        import gc

        gc.set_threshold(*previous)


class Handle:
    """The result of one submitted item, when asked."""

    def __init__(self, function: Callable[[Any], Any], item: Any, future: "Optional[Future[Any]]" = None, pool: Optional["ProcessPool"] = None) -> None:
        self.function = function
        self.item = item
        self.future = future
        self.pool = pool

    def result(self) -> Any:
        if self.future is not None:
            from concurrent.futures.process import BrokenProcessPool

            try:
                return self.future.result()
            except BrokenProcessPool:
                import logging

                logging.getLogger(__name__).debug("a worker process died; its items are done in this process", exc_info=True)
                if self.pool is not None:
                    self.pool.abandon()
        return self.function(self.item)


class Executor:
    """Runs `function` on items: `submit` now, `Handle.result()` when needed."""

    jobs = 1

    def submit(self, function: Callable[[Item], Result], item: Item) -> Handle:
        return Handle(function, item)

    def map(self, function: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
        """The results of `function` over `items`, in the order of the items."""
        handles = [self.submit(function, item) for item in items]
        for handle in handles:
            yield handle.result()

    def warm_up(self) -> None:
        """Start what the work will need (worker processes), without waiting for it."""

    def close(self, interrupted: bool = False) -> None:
        """Release the workers; `interrupted`: do not wait for work in progress."""


class InProcess(Executor):
    """This process: an item is done when its result is asked for."""


class ProcessPool(Executor):
    """Worker processes. An item whose worker died (BrokenProcessPool) is done again in this
    process, so a crash of a worker costs time, never a result."""

    def __init__(self, jobs: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.jobs = jobs
        context = multiprocessing.get_context(start_method())
        if context.get_start_method() == "forkserver":
            multiprocessing.set_forkserver_preload(["sessionlint.lint", "sessionlint.rules"])
        self.pool: Optional[ProcessPoolExecutor] = ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
        )
        self.starting: Optional[threading.Thread] = None

    def warm_up(self) -> None:
        """Start the workers on a thread of this process: the forkserver imports libcst and
        the rules before it forks them, while this process goes on."""
        pool = self.pool
        if pool is not None and self.starting is None:
            self.starting = threading.Thread(target=_start_workers, args=(pool, self.jobs), name="sessionlint-pool-start", daemon=True)
            self.starting.start()

    def _started(self) -> None:
        starting, self.starting = self.starting, None
        if starting is not None:
            starting.join()

    def submit(self, function: Callable[[Item], Result], item: Item) -> Handle:
        from concurrent.futures.process import BrokenProcessPool

        self._started()
        if self.pool is not None:
            try:
                return Handle(function, item, self.pool.submit(function, item), self)
            except (BrokenProcessPool, RuntimeError, OSError):
                self.abandon()
        return Handle(function, item)

    def abandon(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self, interrupted: bool = False) -> None:
        if not interrupted:
            self._started()
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=not interrupted, cancel_futures=True)


def _start_workers(pool: "ProcessPoolExecutor", count: int) -> None:
    from concurrent.futures.process import BrokenProcessPool

    try:
        for _ in range(count):
            pool.submit(int)
    # shut down meanwhile, or broken (a worker died, its queue closed: OSError while the next
    # one is started): the work is done in this process
    except (BrokenProcessPool, RuntimeError, OSError):
        pass


def start_method() -> str:
    """`forkserver` where the platform has it (Linux, macOS and the BSDs), else `spawn`."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def make_executor(jobs: int) -> Executor:
    """A pool of `jobs` workers, or this process for one job."""
    if jobs <= 1:
        return InProcess()
    return ProcessPool(jobs)


def _start_worker(parent: int) -> None:
    """A worker's start: SIGINT ends it at once (a terminal's Ctrl-C reaches the whole
    process group; the run's process reports the interrupt), no standard output (it writes
    none, and a pipe it holds would not end when the run does), a watchdog that ends it when
    the run's process is gone, and the collector's thresholds for parsing."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
    first_parent = os.getppid() if hasattr(os, "getppid") else parent
    watchdog = threading.Thread(target=_watch, args=(parent, first_parent), name="sessionlint-watchdog", daemon=True)
    watchdog.start()
    tune_gc()
    if sys.implementation.name == "cpython":
        import gc

        gc.freeze()  # what the worker holds now (libcst, the rules) stays: out of the collector's sight


def _watch(run_process: int, first_parent: int) -> None:
    """End this worker once the run's process has gone (its parent changed: the forkserver
    ends with the run; or the run's process no longer exists)."""
    while True:
        time.sleep(_WATCHDOG_SECONDS)
        if os.getppid() != first_parent or not _alive(run_process):
            os._exit(3)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # the parent check above is what counts there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True

