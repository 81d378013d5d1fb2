"""The language server driven over stdio as an editor drives it (tests/lsp_client.py):
initialize, didOpen, publishDiagnostics, didChange, codeAction, shutdown/exit. Exact
diagnostics (code, range), exact fixed texts."""

import os
import subprocess
import sys
import textwrap

import pytest
from lsp_client import Client, apply_edits, path_uri

from sessionlint.registry import rule_url

pytest.importorskip("pygls")

DATABASE = """\
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
make_session = sessionmaker(bind=engine)
"""
USERS = """\
from app.database import make_session


def count_users():
    db = make_session()
    db.execute("select 1")
    return 1
"""
USERS_FIXED = """\
from app.database import make_session


def count_users():
    with make_session() as db:
        db.execute("select 1")
        return 1
"""
# returns what the session computed: the fix is unsafe (README, Fixes)
TOTAL = """\
from app.database import make_session


def total():
    db = make_session()
    return db.execute("select 1").scalar()
"""


def write(root, files):
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


@pytest.fixture
def project(tmp_path):
    root = str(tmp_path / "shop")
    write(root, {"pyproject.toml": "[project]\nname = 'shop'\n", "app/__init__.py": "", "app/database.py": DATABASE, "app/users.py": USERS})
    return root


@pytest.fixture
def client():
    started = Client(["--debounce-ms", "0"])
    yield started
    started.kill()


def only(found):
    """The diagnostics as (code, start, end)."""
    return [
        (d["code"], (d["range"]["start"]["line"], d["range"]["start"]["character"]), (d["range"]["end"]["line"], d["range"]["end"]["character"]))
        for d in found
    ]


def test_sl001_with_the_factory_in_another_module_and_its_quick_fix(project, client):
    """The acceptance test of issue 21: diagnostics and a working quick fix for SL001 in a
    two-file project."""
    result = client.initialize(project)
    assert result["capabilities"]["codeActionProvider"]["codeActionKinds"] == ["quickfix", "source.fixAll.sessionlint"]
    path = os.path.join(project, "app", "users.py")
    uri = client.open(path, USERS)
    found = client.diagnostics(uri, version=1)
    assert only(found) == [("SL001", (4, 9), (4, 23))]
    (diagnostic,) = found
    assert diagnostic["message"] == "session `db` is never closed\nhelp: Use `with make_session() as db:`"
    assert diagnostic["severity"] == 2  # Warning
    assert diagnostic["source"] == "sessionlint"
    href = diagnostic.get("codeDescription", {}).get("href")
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *rule_url("SL001").split("/"))
    assert href == (path_uri(page) if os.path.isfile(page) else None)

    actions = client.code_actions(uri, (4, 9), (4, 9))
    titles = [a["title"] for a in actions]
    assert titles == ["Use `with ... as db:` for the rest of the block (SL001)", "Suppress SL001 with `# noqa: SL001`", "Fix all safe sessionlint fixes"]
    fix, noqa, fix_all = actions
    assert fix["kind"] == "quickfix" and fix["isPreferred"] is True
    assert fix["diagnostics"][0]["code"] == "SL001"
    assert apply_edits(USERS, fix["edit"]["changes"][uri]) == USERS_FIXED
    assert apply_edits(USERS, noqa["edit"]["changes"][uri]) == USERS.replace("db = make_session()", "db = make_session()  # noqa: SL001")
    assert fix_all["kind"] == "source.fixAll.sessionlint"
    assert apply_edits(USERS, fix_all["edit"]["changes"][uri]) == USERS_FIXED

    # the editor applies the fix: the new text has nothing to report
    client.change(uri, 2, USERS_FIXED)
    assert client.diagnostics(uri, version=2) == []
    assert client.code_actions(uri, (0, 0), (7, 0)) == []
    code, stderr = client.close()
    assert (code, stderr) == (0, "")


def test_incremental_changes_unsafe_fixes_and_noqa(project, client):
    client.initialize(project)
    path = os.path.join(project, "app", "users.py")
    uri = client.open(path, USERS)
    assert only(client.diagnostics(uri, version=1)) == [("SL001", (4, 9), (4, 23))]
    # an incremental change: a second function appended, with an unsafe fix
    end = USERS.count("\n")
    client.change(uri, 2, "\n\n" + TOTAL.split("\n\n\n", 1)[1], ((end, 0), (end, 0)))
    text = USERS + "\n\n" + TOTAL.split("\n\n\n", 1)[1]
    assert only(client.diagnostics(uri, version=2)) == [("SL001", (4, 9), (4, 23)), ("SL001", (10, 9), (10, 23))]

    actions = client.code_actions(uri, (10, 0), (10, 0), only=["quickfix"])
    assert [a["title"] for a in actions] == ["Use `with ... as db:` for the rest of the block (SL001, unsafe fix)", "Suppress SL001 with `# noqa: SL001`"]
    assert "isPreferred" not in actions[0]
    fixed = apply_edits(text, actions[0]["edit"]["changes"][uri])
    assert fixed == USERS + '\n\ndef total():\n    with make_session() as db:\n        return db.execute("select 1").scalar()\n'
    # fix all applies the safe fix only
    (fix_all,) = client.code_actions(uri, (0, 0), (0, 0), only=["source.fixAll"])
    assert apply_edits(text, fix_all["edit"]["changes"][uri]) == USERS_FIXED + "\n\n" + TOTAL.split("\n\n\n", 1)[1]

    # suppressing: the noqa comment takes the finding away
    noqa = actions[1]
    suppressed = apply_edits(text, noqa["edit"]["changes"][uri])
    assert suppressed.splitlines()[10] == "    db = make_session()  # noqa: SL001"
    client.change(uri, 3, suppressed)
    assert only(client.diagnostics(uri, version=3)) == [("SL001", (4, 9), (4, 23))]
    assert client.close()[0] == 0


def test_a_change_in_the_factory_module_updates_the_other_open_file(project, client):
    client.initialize(project)
    users = client.open(os.path.join(project, "app", "users.py"), USERS)
    assert only(client.diagnostics(users, version=1)) == [("SL001", (4, 9), (4, 23))]
    database = client.open(os.path.join(project, "app", "database.py"), DATABASE)
    assert client.diagnostics(database, version=1) == []
    # `make_session` is no longer a sessionmaker: users.py is linted again, unchanged
    client.change(database, 2, DATABASE.replace("make_session = sessionmaker(bind=engine)", "def make_session():\n    return None"))
    assert client.diagnostics(database, version=2) == []
    assert client.diagnostics(users, version=1) == []
    client.change(database, 3, DATABASE)
    assert client.diagnostics(database, version=3) == []
    assert only(client.diagnostics(users, version=1)) == [("SL001", (4, 9), (4, 23))]
    assert client.close()[0] == 0


def test_closing_an_unsaved_buffer_restores_the_file_on_disk(project, client):
    client.initialize(project)
    users = client.open(os.path.join(project, "app", "users.py"), USERS)
    assert len(client.diagnostics(users, version=1)) == 1
    database = client.open(os.path.join(project, "app", "database.py"), DATABASE)
    assert client.diagnostics(database, version=1) == []
    client.change(database, 2, DATABASE.replace("make_session = sessionmaker(bind=engine)", "def make_session():\n    return None"))
    assert client.diagnostics(database, version=2) == []
    assert client.diagnostics(users, version=1) == []
    client.notify("textDocument/didClose", {"textDocument": {"uri": database}})  # not saved
    assert client.diagnostics(database) == []
    assert only(client.diagnostics(users, version=1)) == [("SL001", (4, 9), (4, 23))]
    assert client.close()[0] == 0


def test_a_file_changed_on_disk(project, client):
    client.initialize(project)
    users = client.open(os.path.join(project, "app", "users.py"), USERS)
    assert len(client.diagnostics(users, version=1)) == 1
    path = os.path.join(project, "app", "database.py")
    write(project, {"app/database.py": DATABASE.replace("make_session = sessionmaker(bind=engine)", "def make_session():\n    return None")})
    client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": path_uri(path), "type": 2}]})
    assert client.diagnostics(users, version=1) == []
    assert client.close()[0] == 0


def test_a_line_being_typed_keeps_the_last_findings(project, client):
    client.initialize(project)
    uri = client.open(os.path.join(project, "app", "users.py"), USERS)
    assert len(client.diagnostics(uri, version=1)) == 1
    client.change(uri, 2, USERS.replace('db.execute("select 1")', 'db.execute("select 1"'))  # does not parse
    client.change(uri, 3, USERS_FIXED)
    assert client.diagnostics(uri, version=3) == []
    published = [m["params"]["version"] for m in client.seen if m.get("method") == "textDocument/publishDiagnostics"]
    assert published == [1, 3]
    assert client.close()[0] == 0


def test_positions_in_utf16_and_settings_from_the_nearest_configuration(project, client):
    write(project, {"legacy/pyproject.toml": "[tool.sessionlint]\nignore = ['SL001']\n", "legacy/users.py": USERS.replace("app.database", "database"),
                    "legacy/database.py": DATABASE})
    client.initialize(project)
    text = USERS.replace("    db = make_session()", '    label = "😀"; db = make_session()')
    uri = client.open(os.path.join(project, "app", "users.py"), text)
    # the emoji is two UTF-16 code units: the call starts at code point 22, unit 23
    assert only(client.diagnostics(uri, version=1)) == [("SL001", (4, 23), (4, 37))]
    legacy = client.open(os.path.join(project, "legacy", "users.py"), USERS.replace("app.database", "database"))
    assert client.diagnostics(legacy, version=1) == []
    assert client.close()[0] == 0


def test_changes_are_debounced(project):
    client = Client(["--debounce-ms", "300", "--stdio"])
    try:
        client.initialize(project)
        uri = client.open(os.path.join(project, "app", "users.py"), USERS)
        assert len(client.diagnostics(uri, version=1)) == 1
        for version in (2, 3, 4):
            client.change(uri, version, USERS + f"# {version}\n")
        assert len(client.diagnostics(uri, version=4)) == 1
        assert client.close()[0] == 0
        published = [m["params"]["version"] for m in client.seen if m.get("method") == "textDocument/publishDiagnostics"]
        assert published == [1, 4]
    finally:
        client.kill()


def test_without_pygls_one_line_and_exit_2(tmp_path):
    (tmp_path / "pygls.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "sessionlint", "server"], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", "sessionlint: error: the language server needs pygls: pip install 'sessionlint[lsp]'\n")


def test_the_command_line_does_not_import_pygls(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    script = textwrap.dedent(
        """
        import sys
        from sessionlint.cli import main
        from click.testing import CliRunner
        CliRunner().invoke(main, ["--version"])
        CliRunner().invoke(main, [sys.argv[1]])
        print(sorted(m for m in sys.modules if m.startswith(("pygls", "lsprotocol", "sessionlint.server"))))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.stdout == "[]\n", done.stderr


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("db = f()\n", 0, "db = f()  # noqa: SL001\n"),
        ("db = f()   \r\n", 0, "db = f()  # noqa: SL001\r\n"),
        ("db = f()  # noqa: SL003\n", 0, "db = f()  # noqa: SL003, SL001\n"),
        ("db = f()  # type: ignore\n", 0, "db = f()  # type: ignore  # noqa: SL001\n"),
        ("db = f()", 0, "db = f()  # noqa: SL001"),
        ('db = f("""\n""")\n', 0, None),  # the line ends inside a string
        ("db = f(1, \\\n  2)\n", 0, None),  # a backslash continues it
        ("db = f()  # noqa: SL001\n", 0, None),  # already there
    ],
)
def test_noqa_edit(text, line, expected):
    from sessionlint.server.edits import noqa_edit, split_lines

    edit = noqa_edit(text, line, "SL001")
    if expected is None:
        assert edit is None
        return
    assert edit is not None
    (start_line, start), (end_line, end), new = edit
    lines = split_lines(text)
    offset = sum(len(x) for x in lines[:start_line])
    assert text[: offset + start] + new + text[offset + end :] == expected


@pytest.mark.parametrize(
    "old, new",
    [
        ("a\nb\nc\n", "a\nB\nc\n"),
        ("a\nb\nc", "a\nb\nC"),  # no final line end
        ("a\r\nb\r\n", "a\r\nx\r\ny\r\nb\r\n"),
        ("a\n", "a\nb\n"),
        ("a\nb\n", "b\n"),
    ],
)
def test_replacement_is_one_edit_of_whole_lines(old, new):
    from sessionlint.server.edits import replacement

    edit = replacement(old, new)
    assert edit is not None
    (start_line, start), (end_line, end), text = edit
    change = {"range": {"start": {"line": start_line, "character": start}, "end": {"line": end_line, "character": end}}, "newText": text}
    assert apply_edits(old, [change]) == new
    assert replacement(old, old) is None


def test_rule_links_are_uris(monkeypatch):
    from sessionlint import registry
    from sessionlint.server.protocol import rule_href

    monkeypatch.setattr(registry, "DOCS_BASE_URL", "https://example.org/sessionlint/rules/")
    assert rule_href("SL001") == "https://example.org/sessionlint/rules/SL001.md"
    monkeypatch.setattr(registry, "DOCS_BASE_URL", "no/such/directory/")
    assert rule_href("SL001") is None  # a relative link that names no page of this checkout


def test_server_usage():
    run = [sys.executable, "-m", "sessionlint", "server"]
    shown = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=60)
    assert (shown.returncode, shown.stdout.splitlines()[0], shown.stderr) == (0, "Usage: sessionlint server [--debounce-ms MS] [--stdio]", "")
    wrong = subprocess.run(run + ["--debounce-ms", "soon"], capture_output=True, text=True, timeout=60)
    assert (wrong.returncode, wrong.stdout, wrong.stderr) == (2, "", "sessionlint: error: `--debounce-ms` takes a number of milliseconds, not `soon`\n")
    unknown = subprocess.run(run + ["--tcp"], capture_output=True, text=True, timeout=60)
    assert (unknown.returncode, unknown.stderr) == (2, "sessionlint: error: unexpected argument `--tcp` (see `sessionlint server --help`)\n")
