"""Reading the linted files: bytes as they are on disk, or a clear error for what cannot be
read as Python source (no permission, a NUL byte, larger than the limit); and the bytes a run
keeps (piped text, files with findings, fixed text), the rest read again when asked."""

import os
from typing import Dict, Optional, Tuple

from sessionlint.diagnostics import ErrorKind, FileError, FileResult

# Files larger than this are not linted (a one-line notice says so): libcst's parser took
# minutes and gigabytes of memory on a 20 MB generated file. `max-file-size` changes it.
DEFAULT_MAX_FILE_BYTES = 4 << 20


def read_source(path: str, limit: int = 0) -> Tuple[Optional[bytes], Optional[FileResult]]:
    """(the bytes of `path`, None), or (None, the FileResult that says why they cannot be
    linted). `limit`: the largest size read (0: no limit)."""
    try:
        with open(path, "rb") as handle:
            if limit:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    return None, too_large(path, size, limit)
            data = handle.read()
    except OSError as error:
        reason = error.strerror or str(error)
        return None, FileResult(path, error=FileError(ErrorKind.IO, path, f"cannot read file: {reason}"))
    if b"\0" in data:
        return None, FileResult(path, error=FileError(ErrorKind.ENCODING, path, "cannot decode file: it holds a NUL byte (not Python source)", 1, 1))
    return data, None


def too_large_message(size: int, limit: int) -> str:
    return f"not linted: {size / (1 << 20):.1f} MiB is over the {limit / (1 << 20):.1f} MiB limit (`max-file-size`)"


def too_large(path: str, size: int, limit: int) -> FileResult:
    message = too_large_message(size, limit)
    return FileResult(path, error=FileError(ErrorKind.IO, path, message))


class SourceFiles:
    """The bytes a run holds: piped text and fixed text (`pin`), and the bytes of files with
    findings (`keep`, for the report's frames and the fixes). Any other file is read from disk
    when asked: reading a file again costs less than holding every file of a large tree."""

    def __init__(self) -> None:
        self.pinned: Dict[str, bytes] = {}
        self.kept: Dict[str, bytes] = {}

    def pin(self, path: str, data: bytes) -> None:
        self.pinned[path] = data

    def keep(self, path: str, data: bytes) -> None:
        self.kept[path] = data

    def get(self, path: str) -> Optional[bytes]:
        data = self.pinned.get(path)
        if data is None:
            data = self.kept.get(path)
        if data is None:
            data = read_source(path)[0]
        return data
