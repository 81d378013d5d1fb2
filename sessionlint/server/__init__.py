"""`sessionlint server`: a language server over stdio (pygls), for any editor with an LSP
client. pygls is imported only here, when the server starts (`pip install
'sessionlint[lsp]'`), never by the command line's lint."""

from typing import Optional, Sequence

USAGE = """Usage: sessionlint server [--debounce-ms MS] [--stdio]

  Run the sessionlint language server on stdin/stdout (started by an editor).

Options:
  --debounce-ms MS  wait this long after a keystroke before linting (default: 100)
  --stdio           speak LSP on stdin/stdout (the only transport; accepted for clients that pass it)
  --help            show this message and exit
"""
DEFAULT_DEBOUNCE_MS = 100


def serve(arguments: Sequence[str] = ()) -> int:
    """Run the server until the client sends `exit`, then end the process: exit code 0
    after a `shutdown` request, 1 without one (as LSP says). Returns only for usage errors
    and `--help`."""
    import os
    import sys

    debounce = DEFAULT_DEBOUNCE_MS
    rest = list(arguments)
    while rest:
        argument = rest.pop(0)
        if argument in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if argument == "--stdio":  # the only transport; some clients always pass it
            continue
        value: Optional[str] = None
        if argument == "--debounce-ms":
            value = rest.pop(0) if rest else ""
        elif argument.startswith("--debounce-ms="):
            value = argument.split("=", 1)[1]
        else:
            sys.stderr.write(f"sessionlint: error: unexpected argument `{argument}` (see `sessionlint server --help`)\n")
            return 2
        if not value.isdigit():
            sys.stderr.write(f"sessionlint: error: `--debounce-ms` takes a number of milliseconds, not `{value}`\n")
            return 2
        debounce = int(value)
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError:
        sys.stderr.write("sessionlint: error: the language server needs pygls: pip install 'sessionlint[lsp]'\n")
        return 2
    from sessionlint.server.protocol import make_server

    code = 0
    try:
        make_server(debounce / 1000).start_io()
    except SystemExit as stop:  # pygls ends the process this way on `exit`
        code = stop.code if isinstance(stop.code, int) else 0
    # stdout is pygls's channel, closed by now: nothing more to flush there
    sys.stderr.flush()
    os._exit(code)
