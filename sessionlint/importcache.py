"""The code `dataclasses` compiles while libcst and the rules are imported, kept between runs.

`import libcst` takes about 0.17 s, the largest single cost of a pre-commit run, and some
40% of it is `dataclasses` compiling, from source text, the `__init__`, `__eq__`,
`__repr__`... of libcst's node classes: some 600 small functions, compiled again at every
start, since Python caches the bytecode of modules but not code made at run time. This
module keeps those code objects in one file in the user's cache directory (as Black keeps
its cache there), keyed by a hash of their source text, and gives them to `dataclasses`
during the import instead of compiling: the same text compiled the same way, so the classes
are the ones a plain import makes. A missing, stale or unreadable file only means a plain
import (and a new file). `SESSIONLINT_NO_IMPORT_CACHE=1` turns it off.
"""

import os
import sys
from typing import Any, Callable, Dict, List, Optional

_MAGIC = b"sessionlint-dataclass-code-1\n"


def _directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sessionlint")


def _blake2b() -> Callable[..., Any]:
    """hashlib.blake2b itself, without `import hashlib` loading OpenSSL (0.004 s)."""
    try:
        from _blake2 import blake2b
    except ImportError:  # an interpreter built without it
        from hashlib import blake2b
    return blake2b


def cache_file() -> Optional[str]:
    """Where the code is kept for this interpreter and this libcst; None when turned off."""
    if os.environ.get("SESSIONLINT_NO_IMPORT_CACHE"):
        return None
    from importlib.util import find_spec

    try:
        spec = find_spec("libcst")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    # A file per interpreter build, optimisation level and libcst installation: a code
    # object is only valid for the interpreter that compiled it.
    key = f"{sys.version}|{sys.implementation.cache_tag}|{sys.flags.optimize}|{spec.origin}"
    tag = _blake2b()(key.encode(), digest_size=8).hexdigest()
    return os.path.join(_directory(), f"dataclass-code-{tag}.marshal")


def clean() -> List[str]:
    """Remove every file of compiled code (`sessionlint --clean`); the paths removed."""
    import glob

    removed = []
    for path in sorted(glob.glob(os.path.join(glob.escape(_directory()), "dataclass-code-*.marshal"))):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _load(path: str) -> Dict[bytes, object]:
    import marshal

    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if not data.startswith(_MAGIC):
            return {}
        memo = marshal.loads(data[len(_MAGIC) :])
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    code_type = type(_load.__code__)
    if type(memo) is not dict or not all(type(k) is bytes and type(v) is code_type for k, v in memo.items()):
        return {}
    return memo


def _save(path: str, memo: Dict[bytes, object]) -> None:
    import marshal
    import tempfile

    try:
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        handle_fd, temporary = tempfile.mkstemp(dir=directory, prefix=".dataclass-code.", suffix=".tmp")
        try:
            with os.fdopen(handle_fd, "wb") as handle:
                handle.write(_MAGIC + marshal.dumps(memo))
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass  # no cache: the next start compiles again


def cached_import(load: Callable[[], object]) -> None:
    """Call `load` (which imports libcst) with the code cache, unless libcst is imported."""
    if "libcst" in sys.modules:
        load()
        return
    import dataclasses

    path = cache_file()
    if path is None or "exec" in vars(dataclasses):  # off, or someone else's hook there
        load()
        return
    blake2b = _blake2b()
    memo = _load(path)
    used: Dict[bytes, object] = {}
    compiled = []

    def exec_cached(source: object, globals: object = None, locals: object = None) -> None:
        if type(source) is str:
            key = blake2b(source.encode(), digest_size=16).digest()  # type: ignore[attr-defined]
            code = memo.get(key)
            if code is None:
                # What exec(source) does: compile with no inherited future flags.
                code = compile(source, "<string>", "exec", dont_inherit=True)  # type: ignore[call-overload]
                compiled.append(key)
            used[key] = code
            source = code
        exec(source, globals, locals)  # type: ignore[arg-type]

    dataclasses.exec = exec_cached  # type: ignore[attr-defined]  # a module global shadows the builtin
    try:
        load()
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
    if compiled:
        _save(path, used)  # only what this import used: entries of an older libcst go
