"""Parsing a file without ever crashing on it: CPython's parser first (it rejects what cannot
run and guards its own recursion), then libcst's on a thread with a large stack. Syntax,
encoding and nesting problems come back as `FileError` data, never as exceptions."""

import ast
import sys
import threading
import warnings
from queue import SimpleQueue
from typing import Any, Callable, List, Optional, Tuple, Union

from sessionlint.diagnostics import ErrorKind, FileError

# CPython's parser refuses these nestings outright; the code cannot run, so it is reported
# as CPython reports it, and libcst never sees it.
_NESTING_LIMITS = ("too many nested parentheses", "too many levels of indentation", "too many statically nested blocks")
# libcst's native parser recurses on the C stack: a few thousand nested operators overflow
# the main thread's 8 MiB (a segmentation fault, not an exception). It runs on a thread of
# its own with this much stack, and only after CPython's own parser, which turns deeper
# nesting into a RecursionError, has accepted the file (or rejected it for newer syntax).
PARSER_STACK_BYTES = 512 * 1024 * 1024
# CPython 3.11+ refuses ASTs deeper than this itself (RecursionError); older versions build
# them, and libcst then takes minutes on them. Checked by hand there.
MAX_AST_DEPTH = 2900


class _ParserThread:
    """One thread with PARSER_STACK_BYTES of stack that runs one call at a time while the
    caller waits."""

    def __init__(self) -> None:
        self.calls: "SimpleQueue[Optional[Tuple[Callable[..., Any], Tuple[Any, ...]]]]" = SimpleQueue()
        self.answers: "SimpleQueue[Tuple[bool, Any]]" = SimpleQueue()
        previous = threading.stack_size(PARSER_STACK_BYTES)
        try:
            self.thread = threading.Thread(target=self._serve, name="sessionlint-parser", daemon=True)
            self.thread.start()
        finally:
            threading.stack_size(previous)

    def _serve(self) -> None:
        while True:
            call = self.calls.get()
            if call is None:
                return
            function, args = call
            try:
                answer: Tuple[bool, Any] = (True, function(*args))
            except BaseException as error:  # noqa: B036 - re-raised in the caller's thread
                answer = (False, error)
            del call, function, args
            self.answers.put(answer)
            del answer

    def run(self, function: Callable[..., Any], args: Tuple[Any, ...]) -> Any:
        self.calls.put((function, args))
        succeeded, value = self.answers.get()
        if not succeeded:
            raise value
        return value


_PARSER: "dict[str, _ParserThread]" = {}
_PARSER_LOCK = threading.Lock()


def run_on_big_stack(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` on the parser thread (its result, or its exception re-raised)."""
    with _PARSER_LOCK:
        parser = _PARSER.get("thread")
        if parser is None or not parser.thread.is_alive():
            parser = _PARSER["thread"] = _ParserThread()
        return parser.run(function, args)


def cpython_parse(data: bytes, path: str) -> ast.Module:
    with warnings.catch_warnings():  # SyntaxWarnings are the code's business, not ours
        warnings.simplefilter("ignore")
        tree = ast.parse(data, filename=path)
    if sys.version_info < (3, 11):
        stack: List[Tuple[ast.AST, int]] = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_AST_DEPTH:
                raise RecursionError("maximum AST depth exceeded")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def check_with_cpython(data: bytes, path: str) -> Union[ast.Module, FileError, None]:
    """CPython's tree of `data`; a FileError for what CPython refuses and libcst must never
    see (nesting beyond its limits); None when CPython rejects the file otherwise (syntax
    newer than this interpreter, a NUL byte): libcst decides then."""
    try:
        # On the big stack too: Python 3.9's AST construction has no recursion guard and
        # overflows the main thread's stack on a few thousand nested operators.
        tree: ast.Module = run_on_big_stack(cpython_parse, data, path)
        return tree
    except (RecursionError, MemoryError) as error:
        return FileError(ErrorKind.SYNTAX, path, f"file too deeply nested to parse: {type(error).__name__}", 1, 1)
    except SyntaxError as error:
        if any(limit in str(error.msg) for limit in _NESTING_LIMITS):
            return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {error.msg}", error.lineno or 1, error.offset or 1)
        return None
    except ValueError:  # a NUL byte: libcst reports it as a syntax error
        return None


def parse_module(data: bytes, path: str) -> Any:
    """libcst's tree of `data`, or the FileError that says why there is none."""
    import libcst as cst

    try:
        return run_on_big_stack(cst.parse_module, data)
    except cst.ParserSyntaxError as error:
        return syntax_error(data, path, error)
    except (UnicodeDecodeError, LookupError, SyntaxError) as error:
        return FileError(ErrorKind.ENCODING, path, f"cannot decode file: {error}")
    except (RecursionError, MemoryError) as error:
        return FileError(ErrorKind.SYNTAX, path, f"file too deeply nested to parse: {type(error).__name__}")


def syntax_error(data: bytes, path: str, error: Exception) -> FileError:
    """CPython's own message and position when it rejects the file too (libcst's native
    parser often points past the real error); libcst's otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(data, filename=path)
    except SyntaxError as cpython:
        return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {cpython.msg}", cpython.lineno or 1, cpython.offset or 1)
    except (ValueError, RecursionError, MemoryError) as other:
        return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {other}", 1, 1)
    message = str(getattr(error, "message", "") or error).strip().splitlines()[0]
    line = getattr(error, "raw_line", 1)
    column = getattr(error, "raw_column", 0) + 1
    return FileError(ErrorKind.SYNTAX, path, f"SyntaxError: {message} (libcst)", line, column)
