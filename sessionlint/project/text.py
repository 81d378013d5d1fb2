"""Text facts: what the project pass learns from a file's bytes without parsing it, with
regexes that start with a literal or branch as a trie (Python's regex engine searches for a
literal; an alternation is tried at every position)."""

import re
from typing import Dict, Iterable, List, Tuple

DEPENDS_RE = re.compile(rb"\b(?:Depends|Security)\(\s*(?:dependency\s*=\s*)?([A-Za-z_][\w.]*)")
# Calls that bind a session factory or an engine, whatever the project calls its own (the
# conventional names join them in IndexBuilder.binding_call).
DEFINITION_NAMES = (
    "sessionmaker", "async_sessionmaker", "scoped_session", "async_scoped_session", "Session", "AsyncSession",
    "create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config",
)


# `from x import names` (the names: a parenthesised list or the rest of the line), found by
# its literal start: `from_import_names` keeps the matches at the start of a line.
_FROM_IMPORT_RE = re.compile(rb"from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)")
WORD_RE = re.compile(rb"\b([A-Za-z_]\w*)\b")
# The end of a called name that contains `ession` or `ngine` (IndexBuilder.calls_a_binding).
CALL_TAILS = (re.compile(rb"(ession\w*)\s*\("), re.compile(rb"(ngine\w*)\s*\("))
WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
ALIAS_RE = re.compile(rb"=\s*Annotated\[\s*(?:[\w.]+\.)?(?:Async)?Session\b")
# What else the module scan learns a factory from without a call in the text: a subclass of a
# session class (`class TenantSession(Session):`) and a session class imported under another
# name (`Session as SASession`, then `return SASession(bind=e)` in a function). Two regexes
# that start with a literal, which the regex engine searches for (one pattern starting with
# `\b` is tried at every position: it doubled the text facts' time).
SESSION_BASE_RE = re.compile(rb"class[ \t]+\w+[ \t]*\([^)]*Session\b")
SESSION_AS_RE = re.compile(rb"Session[ \t]+as\b")
# `registry.remove()` or `teardown(Session.remove)`: the module scan records what a file
# releases (scan._released), so a file doing only that is scanned too.
RELEASE_RE = re.compile(rb"\.remove(?:\(\s*\)|\s*[),\]])")
# `self.db = db` / `self._session = session` in a class: a repository or service that holds
# a session; the module scan records whether the class may close it (scan._may_close).
HOLDER_RE = re.compile(rb"self\.\w*(?:[Ss]ession|db|Db|DB)\w*[ \t]*(?::[^=\n]*)?=[ \t]*\w")
# An import of a framework that serves requests or runs tasks or bot handlers: a thread's
# session of a `scoped_session` that nothing removes outlives the request there.
SERVES_RE = re.compile(
    rb"(?m)^[ \t]*(?:from|import)[ \t]+(?:flask|pyramid|fastapi|starlette|tornado|aiohttp|bottle|falcon|sanic|quart"
    rb"|django|celery|rq|dramatiq|apscheduler|cherrypy|werkzeug|twisted|discord|telegram|aiogram|slack_bolt|connexion)\b"
)


def alternation(names: Iterable[str]) -> bytes:
    """A regex group matching exactly `names`, as a trie (`s(?:ession(?:_maker)?|ync)`): Python's
    regex engine tries a flat alternation's branches one by one at every position, a trie's
    only those that share the next character."""
    trie: Dict[bytes, dict] = {}
    for name in sorted(set(names)):
        node = trie
        for byte in name.encode():
            node = node.setdefault(bytes([byte]), {})
        node[b""] = {}

    def group(node: Dict[bytes, dict]) -> bytes:
        branches = [re.escape(key) + group(child) for key, child in sorted(node.items()) if key]
        if not branches:
            return b""
        body = b"(?:" + b"|".join(branches) + b")" if len(branches) > 1 or b"" in node else branches[0]
        return body + b"?" if b"" in node else body

    return b"(?:" + group(trie) + b")"


def from_imports(data: bytes) -> List[Tuple[bytes, bytes]]:
    """(module, names part) of every `from module import ...` that starts a line (after
    spaces or tabs): what `(?m)^[ \t]*from...` finds, three to four times faster, since a
    regex that starts with a literal is searched for by that literal, not tried at every
    line. The module keeps its leading dots."""
    found: List[Tuple[bytes, bytes]] = []
    search = _FROM_IMPORT_RE.search
    position = 0
    while True:
        match = search(data, position)
        if match is None:
            return found
        start = match.start()
        if not data[data.rfind(b"\n", 0, start) + 1 : start].strip(b" \t"):
            found.append((match.group(1), match.group(2)))
            position = match.end()
        else:
            position = start + 1


def from_import_names(data: bytes) -> List[bytes]:
    """The names part of every `from x import ...` that starts a line (`from_imports`)."""
    return [names for _, names in from_imports(data)]
