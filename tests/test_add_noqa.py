"""`--add-noqa`: every finding gets a `# noqa` directive merged with the comment on its line;
the next run reports nothing, and a second `--add-noqa` changes nothing."""

import textwrap

from click.testing import CliRunner

from sessionlint.cli import main

SOURCE = textwrap.dedent(
    '''\
    # -*- coding: latin-1 -*-
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def plain():
        db = SessionLocal()
        db.execute("select 1")


    def with_a_comment():
        db = SessionLocal()  # café: legacy, see ticket 12
        db.execute("select 1")


    def with_other_codes():
        db = SessionLocal()  # noqa: E501
        db.execute("select 1")


    def with_ignore():
        db = SessionLocal()  # sessionlint: ignore[SL003]
        db.execute("select 1")


    def ends_in_a_string():
        db = SessionLocal(info={"k": """a
    b"""})
        db.execute("select 1")
    '''
)

EXPECTED = textwrap.dedent(
    '''\
    # -*- coding: latin-1 -*-
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def plain():
        db = SessionLocal()  # noqa: SL001
        db.execute("select 1")


    def with_a_comment():
        db = SessionLocal()  # café: legacy, see ticket 12  # noqa: SL001
        db.execute("select 1")


    def with_other_codes():
        db = SessionLocal()  # noqa: E501, SL001
        db.execute("select 1")


    def with_ignore():
        db = SessionLocal()  # sessionlint: ignore[SL003,SL001]
        db.execute("select 1")


    def ends_in_a_string():
        db = SessionLocal(info={"k": """a
    b"""})  # noqa: SL001
        db.execute("select 1")
    '''
)


def invoke(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, ["--no-cache", "--isolated", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_add_noqa_merges_comments_and_then_nothing_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "app.py"
    path.write_bytes(SOURCE.encode("latin-1").replace(b"\n", b"\r\n"))
    code, out, _ = invoke(["-q", "app.py"], tmp_path, monkeypatch)
    assert code == 1 and out.count("SL001") == 5
    code, _, err = invoke(["--add-noqa", "app.py"], tmp_path, monkeypatch)
    assert (code, err) == (0, "Added 5 noqa directives.\n")
    # Kept: the latin-1 encoding, the CRLF newlines, every comment. A line that ends inside
    # a string cannot end with a comment: the directive goes on the string's last line.
    assert path.read_bytes() == EXPECTED.encode("latin-1").replace(b"\n", b"\r\n")
    assert invoke(["app.py"], tmp_path, monkeypatch)[0] == 0
    # Idempotent: nothing left to add, the file is not touched.
    before = path.stat().st_mtime_ns
    assert invoke(["--add-noqa", "app.py"], tmp_path, monkeypatch)[::2] == (0, "Added 0 noqa directives.\n")
    assert path.stat().st_mtime_ns == before
    # The directives added are used: SL100 finds only the code that was unused before.
    assert invoke(["-q", "--extend-select", "SL100", "app.py"], tmp_path, monkeypatch)[1] == (
        "app.py:23:26: SL100 [*] unused suppression of `SL003`: no such finding on this line\n"
    )


def test_add_noqa_refuses_stdin_and_fix(tmp_path, monkeypatch):
    code, _, err = invoke(["--add-noqa", "--fix", "."], tmp_path, monkeypatch)
    assert (code, err) == (2, "sessionlint: error: --add-noqa edits files: it cannot be combined with --fix, --diff or stdin\n")


UNUSED = textwrap.dedent(
    """\
    # sessionlint: noqa: SL009
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def one():
        with SessionLocal() as db:  # noqa: E501, SL001
            db.execute("select 1")


    def two():
        with SessionLocal() as db:  # sessionlint: ignore[SL003,SL001]  # keep me
            db.execute("select 1")


    def three():
        with SessionLocal() as db:  # noqa: SL001, SL002  # type: ignore
            db.execute("select 1")


    def four():
        db = SessionLocal()  # noqa: SL001, SL003
        db.execute("select 1")
    """
)

UNUSED_FIXED = textwrap.dedent(
    """\
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def one():
        with SessionLocal() as db:  # noqa: E501
            db.execute("select 1")


    def two():
        with SessionLocal() as db:  # keep me
            db.execute("select 1")


    def three():
        with SessionLocal() as db:  # type: ignore
            db.execute("select 1")


    def four():
        db = SessionLocal()  # noqa: SL001
        db.execute("select 1")
    """
)


def test_sl100_fix_removes_unused_codes_and_keeps_the_rest(tmp_path, monkeypatch):
    (tmp_path / "app.py").write_text(UNUSED)
    code, out, _ = invoke(["-q", "--extend-select", "SL100", "app.py"], tmp_path, monkeypatch)
    assert code == 1 and out == (
        "app.py:1:1: SL100 [*] unused suppression of `SL009`: no such finding in this file\n"
        "app.py:8:33: SL100 [*] unused suppression of `SL001`: no such finding on this line\n"
        "app.py:13:33: SL100 [*] unused suppression of `SL001`, `SL003`: no such finding on this line\n"
        "app.py:18:33: SL100 [*] unused suppression of `SL001`, `SL002`: no such finding on this line\n"
        "app.py:23:26: SL100 [*] unused suppression of `SL003`: no such finding on this line\n"
    )
    code, out, _ = invoke(["--fix", "--extend-select", "SL100", "app.py"], tmp_path, monkeypatch)
    assert (tmp_path / "app.py").read_text() == UNUSED_FIXED
    assert (code, out) == (0, "Found 5 problems (5 fixed, 0 remaining).\n")


def test_sl100_fix_runs_after_the_rules_fix(tmp_path, monkeypatch):
    # The rule's fix keeps the comment; the suppression, unused on the fixed text, goes.
    (tmp_path / "app.py").write_text("from db import SessionLocal\n\n\ndef f():\n    db = SessionLocal()  # noqa: SL003  # why\n    db.execute(1)\n")
    code, out, _ = invoke(["--fix", "--extend-select", "SL100", "app.py"], tmp_path, monkeypatch)
    assert (code, out) == (0, "Found 2 problems (2 fixed, 0 remaining).\n")
    assert (tmp_path / "app.py").read_text() == "from db import SessionLocal\n\n\ndef f():\n    with SessionLocal() as db:  # why\n        db.execute(1)\n"
