"""The SQLAlchemy side of the runtime leak check: who opened which pooled connection and
which session, and what is still open when its owner (a test, or a fixture wider than a test)
ends. Imported only when the check is enabled.

- Connections: `PoolEvents.checkout` / `checkin` on the `Pool` class, which every pool of
  the process dispatches to (https://docs.sqlalchemy.org/en/20/core/events.html#connection-pool-events).
  The watcher holds each checked-out `_ConnectionFairy` strongly. Without that, a connection
  the code dropped is returned by SQLAlchemy's garbage-collection hook, silently under 2.x,
  and the leak would depend on when the collector ran.
- Sessions: SQLAlchemy has no event for a session's creation or its close, so `Session.__init__`
  and `Session._close_impl` (behind `close`, `invalidate` and `reset`) are wrapped while the
  check is on; an `AsyncSession` creates its `Session` through the same `__init__`. Sessions are
  held weakly: a session that was never closed but is garbage once its owner ended holds
  nothing, and is not a leak. `SessionEvents.after_begin` ties a connection a session checked
  out to that session, so a session dropped in the middle of a transaction is reported as the
  session it is, at the line that created it.
"""

import asyncio
import gc
import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

import sessionlint
from sessionlint.pytest_plugin.records import Attribution, Leak, Recorder, Site

ASYNC_SESSION_FILE = os.path.join(os.sep, "sqlalchemy", "ext", "asyncio", "session.py")
ORM_SESSION_FILE = os.path.join(os.sep, "sqlalchemy", "orm", "session.py")


class Owner:
    """What a resource belongs to: the running test (label ""), or a fixture whose scope is
    wider than a test, judged at its own teardown."""

    def __init__(self, label: str = "") -> None:
        self.label = label


@dataclass
class Tracked:
    kind: str
    site: Site
    owner: Owner
    closed: bool = False
    fairy: Any = None  # a connection's _ConnectionFairy, held until it is checked in
    by_session: bool = False  # the checkout came from inside a Session
    session: Optional["Tracked"] = None  # the session that began a transaction on it


def _package_dir(module: Any) -> str:
    return os.path.dirname(os.path.abspath(module.__file__))


class Watcher:
    def __init__(self, runner_roots: List[str]) -> None:
        import pluggy

        self.attribution = Attribution([_package_dir(sqlalchemy), _package_dir(sessionlint)], [_package_dir(pluggy)] + runner_roots)
        self.recorder = Recorder()
        self.owner: Optional[Owner] = None
        self.connections: Dict[int, Tracked] = {}  # id(connection record) -> what checked it out
        self.sessions: Dict[int, Tracked] = {}  # id(session) -> its record, while it is alive
        self.session_refs: Dict[int, Any] = {}  # id(session) -> weak reference
        self.originals: Dict[str, Callable[..., Any]] = {}
        self.is_started = False

    # --- installing and removing the hooks ---------------------------------------------------

    def start(self) -> None:
        event.listen(Pool, "checkout", self.on_checkout)
        event.listen(Pool, "checkin", self.on_checkin)
        event.listen(Session, "after_begin", self.on_after_begin)
        watcher = self
        original_init = Session.__init__
        original_close = Session._close_impl
        self.originals = {"__init__": original_init, "_close_impl": original_close}

        def __init__(session: Session, *args: Any, **kwargs: Any) -> None:
            original_init(session, *args, **kwargs)
            watcher.on_session(session, sys._getframe(1))

        def _close_impl(session: Session, *args: Any, **kwargs: Any) -> Any:
            watcher.on_close(session)
            return original_close(session, *args, **kwargs)

        setattr(Session, "__init__", __init__)
        setattr(Session, "_close_impl", _close_impl)
        self.is_started = True

    def stop(self) -> None:
        if not self.is_started:
            return
        event.remove(Pool, "checkout", self.on_checkout)
        event.remove(Pool, "checkin", self.on_checkin)
        event.remove(Session, "after_begin", self.on_after_begin)
        for name, original in self.originals.items():
            setattr(Session, name, original)
        self.is_started = False

    # --- events -----------------------------------------------------------------------------

    def on_checkout(self, dbapi_connection: Any, record: Any, fairy: Any) -> None:
        if self.owner is None:
            return  # collection, or between tests: nobody to blame
        frame = sys._getframe(1)
        by_session = self.is_below_user_code(frame, ORM_SESSION_FILE)
        site = self.attribution.site_of(frame)
        self.connections[id(record)] = Tracked("connection", site, self.owner, fairy=fairy, by_session=by_session)
        if not by_session:  # a session's own connection is counted as the session
            self.recorder.opened("connection", site)

    def is_below_user_code(self, frame: Any, library_file: str) -> bool:
        """Whether `library_file` (a SQLAlchemy module) is on the stack between `frame` and
        the first frame of the user's code: a checkout made by a session, a session made by
        an AsyncSession. Inside SQLAlchemy's greenlet the stack ends before any user frame."""
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.endswith(library_file):
                return True
            if self.attribution.is_user_file(filename):
                return False
            frame = frame.f_back
        return False

    def on_checkin(self, dbapi_connection: Any, record: Any) -> None:
        self.connections.pop(id(record), None)

    def on_after_begin(self, session: Session, transaction: Any, connection: Any) -> None:
        tracked_session = self.sessions.get(id(session))
        fairy = getattr(connection, "_dbapi_connection", None)
        record = getattr(fairy, "_connection_record", None)
        tracked = self.connections.get(id(record)) if record is not None else None
        if tracked_session is None or tracked is None or not tracked.by_session:
            return  # a session joined a connection its caller opened: the caller's to close
        tracked.session = tracked_session
        # A session of a fixture wider than a test keeps its transaction across tests.
        tracked.owner = tracked_session.owner

    def on_session(self, session: Session, frame: Any) -> None:
        if self.owner is None:
            return
        kind = "async session" if self.is_below_user_code(frame, ASYNC_SESSION_FILE) else "session"
        site = self.attribution.site_of(frame)
        key = id(session)
        self.sessions[key] = Tracked(kind, site, self.owner)
        sessions, refs = self.sessions, self.session_refs

        def forget(_: Any) -> None:
            sessions.pop(key, None)
            refs.pop(key, None)

        self.session_refs[key] = weakref.ref(session, forget)
        self.recorder.opened(kind, site)

    def on_close(self, session: Session) -> None:
        tracked = self.sessions.get(id(session))
        if tracked is not None:
            tracked.closed = True

    # --- judging ----------------------------------------------------------------------------

    def open_sessions(self, owner: Owner) -> List[Tracked]:
        return [tracked for tracked in self.sessions.values() if tracked.owner is owner and not tracked.closed]

    def judge(self, owner: Owner) -> List[Leak]:
        """What `owner` left open, then forget it: connections still checked out are returned
        to their pool when nothing else holds them."""
        if self.open_sessions(owner):
            # A dropped session sits in a reference cycle with its transaction; only the
            # cyclic collector frees it. Collect only when an unclosed one is still alive.
            gc.collect(1)
            if self.open_sessions(owner):
                gc.collect()
        leaks: List[Leak] = []
        reported = set()
        for tracked in self.open_sessions(owner):
            leaks.append(Leak(tracked.kind, tracked.site, owner.label))
            reported.add(id(tracked))
            tracked.closed = True  # reported once; it stays the user's object
        for key, tracked in list(self.connections.items()):
            if tracked.owner is not owner:
                continue
            del self.connections[key]
            session = tracked.session
            if session is None:
                leaks.append(Leak("connection", tracked.site, owner.label))
            elif id(session) not in reported:
                leaks.append(Leak(session.kind, session.site, owner.label))
                reported.add(id(session))
            release(tracked)
        return leaks


def release(tracked: Tracked) -> None:
    """Return a leaked connection to its pool when only the watcher holds it. When the user's
    code still holds it (a live `Connection` or session), it stays theirs: checking it in
    under them would hand the same connection to two owners."""
    # Two references when only the watcher holds it: `tracked` and getrefcount's argument. A
    # dropped `Connection` may still sit in a reference cycle: collect once before deciding
    # (only a leak pays for it).
    if sys.getrefcount(tracked.fairy) > 2:
        gc.collect()
    fairy, tracked.fairy = tracked.fairy, None
    if sys.getrefcount(fairy) > 2:
        return
    is_async = bool(getattr(getattr(getattr(fairy, "_pool", None), "_dialect", None), "is_async", False))
    if not is_async:
        fairy._checkin()
        return
    # An async driver's rollback runs on the event loop, inside SQLAlchemy's greenlet bridge;
    # the test's loop is gone by now, so a fresh one does it.
    from sqlalchemy.util import greenlet_spawn

    async def checkin() -> None:
        await greenlet_spawn(fairy._checkin)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(checkin())
