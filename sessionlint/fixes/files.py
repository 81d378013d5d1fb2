"""Writing files without ever losing one.

A fixed file: the new bytes go to a temporary file beside the real file (same file system),
which gets the original's permission bits, owner and extended attributes, is flushed to disk,
and replaces the original with one `os.replace`. Just before the replace, the file on disk
must still be the one that was read (same inode, same bytes); just after, the original's
inode, still open, must not have changed meanwhile (an editor that writes in place): if it
did, the edited bytes are put back and the file is reported as not written. A symbolic link
is written through (the link stays a link); a file with several hard links is rewritten in
place, so that every link sees the fix.

Temporary files are named `.<name>.<pid>.<random>.sessionlint-tmp`: a run that was killed
(SIGKILL, a full disk) leaves one at most per file, and the next run that writes there
removes those whose process is gone.
"""

import contextlib
import os
import signal
import stat
import tempfile
import threading
from hashlib import blake2b
from typing import Iterator, List, Optional

TEMPORARY_SUFFIX = ".sessionlint-tmp"


class WriteError(Exception):
    """The file was not written; the original is intact. The message says why."""


def digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def _temporary(directory: str, name: str) -> "tuple[int, str]":
    return tempfile.mkstemp(dir=directory, prefix=f".{name}.{os.getpid()}.", suffix=TEMPORARY_SUFFIX)


def write_fixed(path: str, data: bytes, original_digest: Optional[str] = None) -> None:
    """Replace the file at `path` by `data`, if its bytes still hash to `original_digest`
    (when given) for the whole time from the check to the replace. Interrupts wait until the
    file is whole."""
    with interrupts_held():
        _write_fixed(path, data, original_digest)


def _write_fixed(path: str, data: bytes, original_digest: Optional[str]) -> None:
    target = os.path.realpath(path)  # a symbolic link is written through
    try:
        held = os.open(target, os.O_RDONLY)
    except OSError as error:
        raise WriteError(f"cannot read file: {error.strerror or error}") from None
    try:
        status = os.fstat(held)
        if not stat.S_ISREG(status.st_mode):
            raise WriteError("not a regular file; not written")
        if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            # Replacing the file would succeed (the directory is writable), but a read-only
            # file says "do not change me": respect it, even as root.
            raise WriteError("the file is read-only; not written")
        current = _read_all(held)
        if original_digest is not None and digest(current) != original_digest:
            raise WriteError("the file changed on disk while it was being fixed; not written")
        if status.st_nlink > 1:
            _rewrite_in_place(target, held, current, data)
            return
        _replace(target, held, status, current, data)
    finally:
        os.close(held)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: List[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _replace(target: str, held: int, status: os.stat_result, current: bytes, data: bytes) -> None:
    directory, name = os.path.split(target)
    try:
        handle_fd, temporary = _temporary(directory, name)
    except OSError as error:
        raise WriteError(f"cannot create a temporary file beside it: {error.strerror or error}") from None
    try:
        with os.fdopen(handle_fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            _copy_metadata(handle.fileno(), held, status)
            os.fsync(handle.fileno())
        # The last check before the replace: the path still names the inode read, unchanged.
        now = os.stat(target)
        if (now.st_ino, now.st_dev) != (status.st_ino, status.st_dev) or _read_all(held) != current:
            raise WriteError("the file changed on disk while it was being fixed; not written")
        os.replace(temporary, target)
    except BaseException as error:  # KeyboardInterrupt included: never leave the temporary
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise WriteError(f"cannot write: {error.strerror or error}") from None
        raise
    # Edited in place between the last check and the replace: put the edit back.
    edited = _read_all(held)
    if edited != current:
        try:
            write_atomically(target, edited)
        finally:
            raise WriteError("the file changed on disk while it was being fixed; its new bytes are kept, the fix is not written")


def _rewrite_in_place(target: str, held: int, current: bytes, data: bytes) -> None:
    """A file with several hard links: every link must see the fix, so the inode itself is
    rewritten (the original bytes kept in a temporary file until the new ones are whole)."""
    directory, name = os.path.split(target)
    try:
        backup_fd, backup = _temporary(directory, name)
        with os.fdopen(backup_fd, "wb") as handle:
            handle.write(current)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise WriteError(f"cannot create a temporary file beside it: {error.strerror or error}") from None
    try:
        if _read_all(held) != current:
            raise WriteError("the file changed on disk while it was being fixed; not written")
        with open(target, "r+b") as handle:
            handle.write(data)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise WriteError(f"cannot write: {error.strerror or error}") from None
    finally:
        try:
            os.unlink(backup)
        except OSError:
            pass


def _copy_metadata(fd: int, original: int, status: os.stat_result) -> None:
    """The original's permission bits, owner and group (where this process may set them)
    and extended attributes (Linux), onto the new file."""
    os.fchmod(fd, stat.S_IMODE(status.st_mode))
    if hasattr(os, "fchown"):
        try:
            os.fchown(fd, status.st_uid, status.st_gid)
        except OSError:  # not root: the file stays ours, as any editor's rewrite would
            pass
    if hasattr(os, "listxattr"):
        try:
            names = os.listxattr(original)
        except OSError:
            return
        for name in names:
            try:
                os.setxattr(fd, name, os.getxattr(original, name))
            except OSError:
                continue


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename (a report, a baseline):
    an interrupted run leaves the old file or the new one, never half of one."""
    with interrupts_held():
        directory, name = os.path.split(os.path.abspath(path))
        handle_fd, temporary = _temporary(directory, name)
        try:
            with os.fdopen(handle_fd, "wb") as handle:
                handle.write(data)
            if os.path.exists(path):
                try:
                    os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
                except OSError:
                    pass
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise


def remove_stale_temporaries(directory: str, name: Optional[str] = None) -> List[str]:
    """Remove the temporary files (of `name`, or of any file) that runs which are gone left
    in `directory`; a run that is still writing keeps its own."""
    removed: List[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for entry in names:
        if not entry.endswith(TEMPORARY_SUFFIX) or not entry.startswith("."):
            continue
        parts = entry[1 : -len(TEMPORARY_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or (name is not None and parts[0] != name) or not parts[1].isdigit():
            continue
        if _process_alive(int(parts[1])):
            continue
        path = os.path.join(directory, entry)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while one file is written, so that an interrupt can never land
    between the creation of a temporary file and its replace or removal (a gap no
    try/finally closes: the signal may arrive inside `mkstemp`). An interrupt that came
    meanwhile is raised as KeyboardInterrupt once the file is whole. A signal that is
    ignored (a background job, `nohup`) stays ignored; every handler is restored as it was."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: List[int] = []
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            handler = signal.getsignal(number)
            if handler is signal.SIG_IGN or handler is None:
                continue
            previous[number] = signal.signal(number, lambda number, frame: came.append(number))
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if came:
        if signal.SIGTERM in came and previous.get(signal.SIGTERM) is signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGTERM)  # what the signal would have done
        handler = previous.get(signal.SIGTERM)
        if signal.SIGTERM in came and callable(handler):
            handler(signal.SIGTERM, None)
        raise KeyboardInterrupt
