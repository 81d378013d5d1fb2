"""A small LSP client over a server's stdin/stdout (JSON-RPC with Content-Length framing), as
an editor drives one: for the language server's tests and benchmarks/lsp_latency.py."""

import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


def path_uri(path: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()


class Client:
    """`python -m sessionlint server ...` as a subprocess. Messages from the server are read
    on a thread into a queue; `request` answers the server's own requests (registrations)
    with null, as a client that accepts them does."""

    def __init__(self, arguments: Sequence[str] = (), cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sessionlint", "server", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.messages: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.seen: List[Dict[str, Any]] = []  # notifications taken from the queue, in order
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # --- framing -----------------------------------------------------------------------------

    def send(self, message: Dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            assert length is not None
            message = json.loads(stream.read(length))
            if "method" in message and "id" in message:  # a request of the server's: accept it
                self.send({"id": message["id"], "result": None})
            self.messages.put(message)

    # --- messages ------------------------------------------------------------------------------

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        self.next_id += 1
        ident = self.next_id
        self.send({"id": ident, "method": method, "params": params})
        message = self.wait(lambda m: m.get("id") == ident and "method" not in m, timeout)
        assert "error" not in message, message
        return message.get("result")

    def wait(self, matches: Callable[[Dict[str, Any]], bool], timeout: float = 60) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message in {timeout} s")
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(message)
            if matches(message):
                return message

    def diagnostics(self, uri: str, timeout: float = 60, version: Optional[int] = None) -> List[Dict[str, Any]]:
        """The next diagnostics published for `uri` (for `version`, when given)."""

        def published(message: Dict[str, Any]) -> bool:
            params = message.get("params") or {}
            return (
                message.get("method") == "textDocument/publishDiagnostics"
                and params.get("uri") == uri
                and (version is None or params.get("version") == version)
            )

        return self.wait(published, timeout)["params"]["diagnostics"]

    # --- an editor session ---------------------------------------------------------------------

    def initialize(self, root: str, options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        capabilities = {
            "textDocument": {
                "publishDiagnostics": {"versionSupport": True},
                "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix", "source", "source.fixAll"]}}},
            },
            "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}, "workspaceFolders": True},
            "general": {"positionEncodings": ["utf-16"]},
        }
        result = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": path_uri(root),
                "workspaceFolders": [{"uri": path_uri(root), "name": os.path.basename(root)}],
                "capabilities": capabilities,
                "initializationOptions": options or {},
            },
        )
        self.notify("initialized", {})
        return result

    def open(self, path: str, text: str, version: int = 1) -> str:
        uri = path_uri(path)
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}})
        return uri

    def change(self, uri: str, version: int, text: str, span: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None) -> None:
        """A full change, or an incremental one replacing `span` ((line, character) pairs)."""
        if span is None:
            change: Dict[str, Any] = {"text": text}
        else:
            (start_line, start_character), (end_line, end_character) = span
            change = {
                "range": {"start": {"line": start_line, "character": start_character}, "end": {"line": end_line, "character": end_character}},
                "text": text,
            }
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]})

    def code_actions(self, uri: str, start: Tuple[int, int], end: Tuple[int, int], only: Optional[List[str]] = None) -> List[Dict[str, Any]]:
        context: Dict[str, Any] = {"diagnostics": []}
        if only is not None:
            context["only"] = only
        params = {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}},
            "context": context,
        }
        return self.request("textDocument/codeAction", params) or []

    def close(self, timeout: float = 20) -> Tuple[int, str]:
        """shutdown, exit: the server's exit code and what it wrote to stderr."""
        self.request("shutdown", None)
        self.notify("exit", None)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        assert self.process.stderr is not None
        return code, self.process.stderr.read().decode("utf-8", "replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def apply_edits(text: str, edits: List[Dict[str, Any]]) -> str:
    """`text` with LSP TextEdits applied (UTF-16 positions; lines end at \\n, \\r\\n or \\r)."""
    import re

    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)

    def offset(position: Dict[str, int]) -> int:
        line = position["line"]
        if line >= len(lines):
            return len(text)
        before = sum(len(current) for current in lines[:line])
        units = 0
        for index, character in enumerate(lines[line]):
            if units >= position["character"]:
                return before + index
            units += 2 if ord(character) > 0xFFFF else 1
        return before + len(lines[line].rstrip("\r\n"))

    for edit in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
        start, end = offset(edit["range"]["start"]), offset(edit["range"]["end"])
        text = text[:start] + edit["newText"] + text[end:]
    return text
