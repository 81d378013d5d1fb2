"""Writing fixed files without ever losing one: the new bytes go to a temporary file in the
same directory (same file system, same permission bits), are flushed to disk, and replace the
original with one `os.replace`. An interrupted run leaves the original or the fixed file,
never half of one; a file changed on disk since it was read is left alone."""

import contextlib
import os
import signal
import stat
import tempfile
import threading
from typing import Iterator, List, Optional

try:  # hashlib.blake2b itself, without `import hashlib` loading OpenSSL (0.004 s of a start)
    from _blake2 import blake2b
except ImportError:  # an interpreter built without it
    from hashlib import blake2b


class WriteError(Exception):
    """The file was not written; the original is intact. The message says why."""


def digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def write_fixed(path: str, data: bytes, original_digest: Optional[str] = None) -> None:
    try:
        status = os.stat(path)
    except OSError as error:
        raise WriteError(f"cannot read file status: {error.strerror or error}") from None
    if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        # Replacing the file would succeed (the directory is writable), but a read-only
        # file says "do not change me": respect it, even as root.
        raise WriteError("the file is read-only; not written")
    if original_digest is not None:
        try:
            with open(path, "rb") as handle:
                current = handle.read()
        except OSError as error:
            raise WriteError(f"cannot read file: {error.strerror or error}") from None
        if digest(current) != original_digest:
            raise WriteError("the file changed on disk while it was being fixed; not written")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle_fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".sessionlint-tmp")
    except OSError as error:
        raise WriteError(f"cannot create a temporary file beside it: {error.strerror or error}") from None
    try:
        with os.fdopen(handle_fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(status.st_mode))
        os.replace(temporary, path)
    except BaseException as error:  # KeyboardInterrupt included: never leave the temporary
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise WriteError(f"cannot write: {error.strerror or error}") from None
        raise



@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while one file is written, so that an interrupt can never land
    between the creation of a temporary file and its replace or removal (a gap no
    try/finally closes: the signal may arrive inside `mkstemp`). An interrupt that came
    meanwhile is raised as KeyboardInterrupt once the file is whole."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: List[int] = []
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[number] = signal.signal(number, lambda number, frame: came.append(number))
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if came:
        raise KeyboardInterrupt
