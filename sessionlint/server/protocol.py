"""The language server: LSP over stdio on pygls, the lint of `sessionlint.workspace` behind it.

- Diagnostics on open, save and change (after `debounce` seconds without a keystroke), for
  the buffer's text, inside the file's project (read once; a change updates only its file).
- Code actions: each fix as a quick fix (unsafe ones say so), every safe fix of the file as
  `source.fixAll.sessionlint`, and `# noqa: SLxxx` for each finding.

Handlers run on pygls's event loop, one at a time: a lint never sees a half-applied change.
"""

import asyncio
import functools
import logging
import os
from typing import Dict, List, Optional, Sequence, Set

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from sessionlint import __version__
from sessionlint.config import ConfigError
from sessionlint.diagnostics import Applicability, Confidence, Diagnostic, ErrorKind
from sessionlint.registry import rule_url
from sessionlint.server.edits import Point, TextEdit, noqa_edit, replacement, split_lines
from sessionlint.workspace import Linted, Workspace

_LOG = logging.getLogger(__name__)

FIX_ALL = "source.fixAll.sessionlint"
KINDS = [types.CodeActionKind.QuickFix, FIX_ALL]
SOURCE = "sessionlint"
# The repository's root, when the package runs from a checkout: relative rule links
# (registry.DOCS_BASE_URL until the repository is public) resolve against it.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rule_href(code: str) -> Optional[str]:
    """The rule page as a URI (LSP wants one): the configured URL, or the page in the
    checkout this package runs from; None when neither exists."""
    return _href(rule_url(code))


@functools.lru_cache(maxsize=None)
def _href(url: str) -> Optional[str]:
    if "://" in url:
        return url
    page = os.path.join(_CHECKOUT, *url.split("/"))
    return from_fs_path(page) if os.path.isfile(page) else None


class SessionlintServer(LanguageServer):
    def __init__(self, debounce: float) -> None:
        super().__init__("sessionlint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.debounce = debounce
        self.state: Optional[Workspace] = None
        self.pending: Dict[str, asyncio.TimerHandle] = {}
        self.linted: Dict[str, Linted] = {}  # uri -> the last lint of its buffer
        self.shown: Set[str] = set()  # configuration errors already shown
        self.published: Set[str] = set()  # uris with diagnostics published since they were opened

    @property
    def files(self) -> Workspace:
        if self.state is None:
            folders = [to_fs_path(folder.uri) for folder in self.workspace.folders.values()]
            if not folders and self.workspace.root_path:
                folders = [self.workspace.root_path]
            self.state = Workspace([folder for folder in folders if folder])
        return self.state

    # --- diagnostics -------------------------------------------------------------------------

    def schedule(self, uri: str) -> None:
        """Lint `uri` once no change has come for `debounce` seconds."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        if self.debounce <= 0:
            self.publish(uri)
            return
        self.pending[uri] = asyncio.get_running_loop().call_later(self.debounce, self.publish, uri)

    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        document = self.workspace.get_text_document(uri)
        linted = self.lint(document)
        if linted is None:
            return
        if linted.result.error is not None and linted.result.error.kind is ErrorKind.SYNTAX and uri in self.published:
            return  # a line being typed: the last findings stay until the text parses again
        self.published.add(uri)
        lines = split_lines(document.source)
        diagnostics = [self.diagnostic(d, lines, document) for d in linted.result.diagnostics]
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version))
        self.refresh_others(uri)

    def refresh_others(self, uri: str) -> None:
        """Lint again the other open files whose project a change of `uri` changed."""
        for other, previous in list(self.linted.items()):
            if other != uri and other not in self.pending and not self.files.is_current(previous):
                del self.linted[other]
                self.schedule(other)

    def lint(self, document: TextDocument) -> Optional[Linted]:
        """The findings of the document's current text (the last lint when the text is the same)."""
        path = to_fs_path(document.uri)
        if path is None or not path.endswith((".py", ".pyi")):
            return None
        data = encode(document.source)
        previous = self.linted.get(document.uri)
        if previous is not None and previous.data == data and self.files.is_current(previous):
            return previous
        try:
            self.files.change(path, data)
            linted = self.files.lint(path)
        except ConfigError as error:
            if str(error) not in self.shown:
                self.shown.add(str(error))
                self.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"sessionlint: {error}"))
            return None
        except Exception as error:  # a bug in sessionlint: say so, keep serving
            _LOG.exception("lint of %s failed", path)
            self.window_log_message(types.LogMessageParams(types.MessageType.Error, f"sessionlint: internal error on {path}: {type(error).__name__}: {error}"))
            return None
        self.linted[document.uri] = linted
        return linted

    def diagnostic(self, found: Diagnostic, lines: List[str], document: TextDocument) -> types.Diagnostic:
        href = rule_href(found.code)
        message = found.message + (f"\nhelp: {found.help}" if found.help else "")
        return types.Diagnostic(
            range=self.range((found.start.line - 1, found.start.column - 1), (found.end.line - 1, found.end.column - 1), lines, document),
            message=message,
            severity=types.DiagnosticSeverity.Information if found.confidence is Confidence.LOW else types.DiagnosticSeverity.Warning,
            code=found.code,
            code_description=types.CodeDescription(href=href) if href else None,
            source=SOURCE,
            data={"name": found.name, "fix": found.fix.applicability.value if found.fix else None},
        )

    @staticmethod
    def range(start: Point, end: Point, lines: List[str], document: TextDocument) -> types.Range:
        """A range of 0-based (line, code point) points in the client's position encoding."""
        codec = document.position_codec
        return codec.range_to_client_units(
            lines, types.Range(start=types.Position(line=start[0], character=start[1]), end=types.Position(line=end[0], character=end[1]))
        )

    def forget(self, uri: str) -> None:
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        self.linted.pop(uri, None)
        self.published.discard(uri)

    def relint_open(self) -> None:
        """Lint every open buffer again (the project or its configuration changed)."""
        self.linted.clear()
        for uri in list(self.workspace.text_documents):
            self.schedule(uri)

    # --- code actions --------------------------------------------------------------------------

    def code_actions(self, params: types.CodeActionParams) -> List[types.CodeAction]:
        uri = params.text_document.uri
        handle = self.pending.pop(uri, None)
        if handle is not None:  # a lint is due: the actions must be those of the current text
            handle.cancel()
            self.publish(uri)
        document = self.workspace.get_text_document(uri)
        linted = self.lint(document)
        if linted is None:
            return []
        only = params.context.only
        lines = split_lines(document.source)
        wanted = [d for d in linted.result.diagnostics if _overlaps(d, params.range)]
        actions: List[types.CodeAction] = []
        if _wants(only, types.CodeActionKind.QuickFix) and wanted:
            for found, fixed in self.files.fixes(linted):
                if found not in wanted:
                    continue
                unsafe = found.fix is not None and found.fix.applicability is Applicability.UNSAFE
                title = f"{found.fix.title if found.fix else 'Fix'} ({found.code}{', unsafe fix' if unsafe else ''})"
                actions.append(self.action(title, types.CodeActionKind.QuickFix, document, lines, fixed, linted, [found], preferred=not unsafe))
            for found in wanted:
                edit = noqa_edit(document.source, found.start.line - 1, found.code)
                if edit is not None:
                    action = self.edit_action(f"Suppress {found.code} with `# noqa: {found.code}`", types.CodeActionKind.QuickFix, document, lines, edit)
                    action.diagnostics = [self.diagnostic(found, lines, document)]
                    actions.append(action)
        if _wants(only, FIX_ALL):
            fixed_all = self.files.fix_all(linted)
            if fixed_all is not None:
                actions.append(self.action("Fix all safe sessionlint fixes", FIX_ALL, document, lines, fixed_all, linted, []))
        return actions

    def action(
        self, title: str, kind: str, document: TextDocument, lines: List[str], fixed: bytes, linted: Linted, found: List[Diagnostic], preferred: bool = False
    ) -> types.CodeAction:
        edit = replacement(document.source, decode(fixed))
        assert edit is not None
        action = self.edit_action(title, kind, document, lines, edit)
        action.diagnostics = [self.diagnostic(d, lines, document) for d in found] or None
        action.is_preferred = preferred or None
        return action

    def edit_action(self, title: str, kind: str, document: TextDocument, lines: List[str], edit: TextEdit) -> types.CodeAction:
        start, end, text = edit
        change = types.TextEdit(range=self.range(start, end, lines, document), new_text=text)
        return types.CodeAction(title=title, kind=kind, edit=types.WorkspaceEdit(changes={document.uri: [change]}))


def _overlaps(found: Diagnostic, selected: types.Range) -> bool:
    """Whether the finding's lines meet the selection's (lines: the columns of the finding
    are code points, the selection's the client's units)."""
    return found.start.line - 1 <= selected.end.line and selected.start.line <= found.end.line - 1


def _wants(only: Optional[Sequence[str]], kind: str) -> bool:
    """Whether a client asking for the kinds `only` (None: any) wants an action of `kind`."""
    return only is None or any(kind == wanted or kind.startswith(wanted + ".") for wanted in only)


def encode(text: str) -> bytes:
    """The bytes a buffer's text would be saved as: in the encoding its file declares (a
    coding cookie in the first two lines), else UTF-8."""
    encoding = _declared_encoding(text)
    try:
        return text.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return text.encode("utf-8")


def decode(data: bytes) -> str:
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        # (a BOM stays a character of the text, as `encode` wrote it from the buffer)
        return data.decode("utf-8" if encoding == "utf-8-sig" else encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", errors="replace")


def _declared_encoding(text: str) -> str:
    import re

    for line in split_lines(text)[:2]:
        match = re.match(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line)
        if match:
            return match.group(1)
        if line.strip() and not line.lstrip().startswith("#"):
            break
    return "utf-8"


def make_server(debounce: float) -> SessionlintServer:
    server = SessionlintServer(debounce)

    @server.feature(types.INITIALIZE)
    def initialize(ls: SessionlintServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get("debounceMs"), (int, float)):
            ls.debounce = max(0.0, options["debounceMs"] / 1000)

    @server.feature(types.INITIALIZED)
    def initialized(ls: SessionlintServer, params: types.InitializedParams) -> None:
        watched = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
        if watched and watched.dynamic_registration:
            watchers = [types.FileSystemWatcher(glob_pattern=pattern) for pattern in ("**/*.py", "**/*.pyi", "**/pyproject.toml")]
            options = types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers)
            registration = types.Registration(id="sessionlint-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)
            ls.client_register_capability(types.RegistrationParams(registrations=[registration]))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SessionlintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SessionlintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SessionlintServer, params: types.DidSaveTextDocumentParams) -> None:
        path = to_fs_path(params.text_document.uri)
        if path is not None and os.path.basename(path) == "pyproject.toml":
            ls.files.changed_on_disk(path)
            ls.relint_open()
            return
        ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SessionlintServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.forget(uri)
        path = to_fs_path(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        if path is not None and ls.state is not None:
            ls.state.close(path)  # the file on disk counts again
            ls.refresh_others(uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: SessionlintServer, params: types.DidChangeWatchedFilesParams) -> None:
        if ls.state is None:
            return
        for change in params.changes:
            path = to_fs_path(change.uri)
            if path is not None:
                ls.state.changed_on_disk(path)
        ls.relint_open()

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=False))
    def code_action(ls: SessionlintServer, params: types.CodeActionParams) -> List[types.CodeAction]:
        return ls.code_actions(params)

    return server

