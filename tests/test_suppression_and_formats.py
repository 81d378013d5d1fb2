"""Inline suppressions (SL100 for unused ones), output formats, stdin and baselines, through
the command line."""

import json
import textwrap
from xml.etree import ElementTree

from click.testing import CliRunner

from sessionlint import __version__
from sessionlint.cli import main

SOURCE = textwrap.dedent(
    """\
    from sqlalchemy.orm import sessionmaker

    SessionLocal = sessionmaker()


    def plain():
        db = SessionLocal()
        db.execute("select 1")


    def suppressed_by_code():
        db = SessionLocal()  # noqa: SL001
        db.execute("select 1")


    def suppressed_by_directive():
        db = SessionLocal()  # sessionlint: ignore[SL001,SL003]
        db.execute("select 1")


    def suppressed_by_bare_noqa():
        db = SessionLocal()  # noqa
        db.execute("select 1")


    def suppressed_on_the_first_line():
        db = (  # noqa: SL001
            SessionLocal()
        )
        db.execute("select 1")


    def other_tools_code():
        db = SessionLocal()  # noqa: E501
        db.execute("select 1")


    def nothing_to_suppress():
        return 1  # noqa: SL001, E501
    """
)


def invoke(args, cwd, monkeypatch, input=None):
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NO_COLOR", "1")
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, ["--no-cache", "--isolated", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path, text=SOURCE, name="app.py"):
    (tmp_path / name).write_text(text)
    return name


def test_suppressions(tmp_path, monkeypatch):
    name = write(tmp_path)
    code, out, _ = invoke(["-q", name], tmp_path, monkeypatch)
    assert code == 1
    # Suppressed: by code, by directive, by a bare noqa, on the statement's first line.
    # Reported: the plain leak, and the one whose noqa names only another tool's code.
    assert out == (
        "app.py:7:10: SL001 [*] session `db` is never closed\n"
        "app.py:34:10: SL001 [*] session `db` is never closed\n"
    )


def test_unused_suppressions_are_sl100_when_selected(tmp_path, monkeypatch):
    name = write(tmp_path)
    code, out, _ = invoke(["-q", "--extend-select", "SL100", name], tmp_path, monkeypatch)
    # `SL003` in the directive matched nothing; `E501` is another tool's; a bare noqa that
    # matched is fine.
    assert out.splitlines() == [
        "app.py:7:10: SL001 [*] session `db` is never closed",
        "app.py:17:26: SL100 [*] unused suppression of `SL003`: no such finding on this line",
        "app.py:34:10: SL001 [*] session `db` is never closed",
        "app.py:39:15: SL100 [*] unused suppression of `SL001`: no such finding on this line",
    ]


def test_json_format(tmp_path, monkeypatch):
    name = write(tmp_path, SOURCE.split("\n\ndef suppressed_by_code")[0] + "\n")
    code, out, _ = invoke(["--output-format", "json", name], tmp_path, monkeypatch)
    assert code == 1
    assert json.loads(out) == {
        "version": 1,
        "tool": {"name": "sessionlint", "version": __version__},
        "diagnostics": [
            {
                "code": "SL001",
                "name": "session-not-closed",
                "message": "session `db` is never closed",
                "path": "app.py",
                "location": {"line": 7, "column": 10},
                "end_location": {"line": 7, "column": 24},
                "help": "Use `with SessionLocal() as db:`",
                "fix": {"applicability": "safe", "title": "Use `with ... as db:` for the rest of the block"},
                "confidence": "high",
                "url": "docs/rules/SL001.md",
            }
        ],
        "errors": [],
        "summary": {"diagnostics": 1, "errors": 0, "files_with_diagnostics": 1, "fixable": 1, "suppressed": 0},
    }


def test_github_format(tmp_path, monkeypatch):
    name = write(tmp_path, SOURCE.split("\n\ndef suppressed_by_code")[0] + "\n")
    _, out, _ = invoke(["--format", "github", name], tmp_path, monkeypatch)
    assert out == (
        "::error file=app.py,line=7,col=10,endLine=7,endColumn=24,title=SL001 (session-not-closed)"
        "::SL001 session `db` is never closed\n"
    )


def test_sarif_format(tmp_path, monkeypatch):
    name = write(tmp_path, SOURCE.split("\n\ndef suppressed_by_code")[0] + "\n")
    _, out, _ = invoke(["--format", "sarif", name], tmp_path, monkeypatch)
    document = json.loads(out)
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules][:3] == ["SL001", "SL002", "SL003"]
    (result,) = run["results"]
    assert result["ruleId"] == "SL001" and rules[result["ruleIndex"]]["id"] == "SL001"
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "app.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 7, "startColumn": 10, "endLine": 7, "endColumn": 24},
    }
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": tmp_path.as_uri() + "/"}}
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]
    # The fix as SARIF `fixes`: lines 7-8 replaced by the `with` block; the file is unchanged.
    assert result["fixes"] == [
        {
            "description": {"text": "Use `with ... as db:` for the rest of the block"},
            "artifactChanges": [
                {
                    "artifactLocation": {"uri": "app.py", "uriBaseId": "%SRCROOT%"},
                    "replacements": [
                        {
                            "deletedRegion": {"startLine": 7, "startColumn": 1, "endLine": 9, "endColumn": 1},
                            "insertedContent": {"text": '    with SessionLocal() as db:\n        db.execute("select 1")\n'},
                        }
                    ],
                }
            ],
        }
    ]
    assert (tmp_path / name).read_text() == SOURCE.split("\n\ndef suppressed_by_code")[0] + "\n"
    # Each rule carries its documentation, as `--explain` prints it; no placeholder links.
    assert rules[0]["help"]["markdown"].startswith("# SL001 session-not-closed\n\nSession created without a guaranteed close.")
    assert "## Fix safety" in rules[0]["help"]["text"] and "example.invalid" not in out


def test_sarif_locations_are_percent_encoded(tmp_path, monkeypatch):
    (tmp_path / "my app").mkdir()
    write(tmp_path / "my app", SOURCE.split("\n\ndef suppressed_by_code")[0] + "\n", name="ré%.py")
    _, out, _ = invoke(["--format", "sarif", "."], tmp_path, monkeypatch)
    (result,) = json.loads(out)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "my%20app/r%C3%A9%25.py", "uriBaseId": "%SRCROOT%"}


TWO_FINDINGS = SOURCE.split("\n\ndef suppressed_by_code")[0] + "\n\n\ndef second():\n    db = SessionLocal()\n    db.execute('select 2')\n"


def test_junit_format_has_one_case_per_finding(tmp_path, monkeypatch):
    name = write(tmp_path, TWO_FINDINGS)
    _, out, _ = invoke(["--format", "junit", name], tmp_path, monkeypatch)
    root = ElementTree.fromstring(out.split("\n", 1)[1])
    cases = list(root.iter("testcase"))
    assert [(c.get("name"), c.get("classname"), c.get("line")) for c in cases] == [
        ("SL001 app.py:7:10", "app.py", "7"),
        ("SL001 app.py:13:10", "app.py", "13"),
    ]
    assert [len(list(c.iter("failure"))) for c in cases] == [1, 1]
    assert cases[0].find("failure").text == "app.py:7:10: SL001 session `db` is never closed\nhelp: Use `with SessionLocal() as db:`"
    assert (root.get("tests"), root.get("failures")) == ("2", "2")


GITLAB_ISSUE = {
    "type": "object",
    "required": ["description", "check_name", "fingerprint", "severity", "location"],
    "properties": {
        "description": {"type": "string", "minLength": 1},
        "check_name": {"type": "string", "minLength": 1},
        "fingerprint": {"type": "string", "minLength": 1},
        "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
        "location": {
            "type": "object",
            "required": ["path", "lines"],
            "properties": {"path": {"type": "string"}, "lines": {"type": "object", "required": ["begin"], "properties": {"begin": {"type": "integer", "minimum": 1}}}},
        },
    },
}


def test_gitlab_format_has_the_documented_shape(tmp_path, monkeypatch):
    import jsonschema

    (tmp_path / "pkg").mkdir()
    name = write(tmp_path / "pkg", TWO_FINDINGS)
    (tmp_path / "broken.py").write_text("from db import SessionLocal\nSessionLocal(\n")
    monkeypatch.delenv("CI_PROJECT_DIR", raising=False)
    code, out, _ = invoke(["--format", "gitlab", "."], tmp_path, monkeypatch)
    issues = json.loads(out)
    jsonschema.validate(issues, {"type": "array", "items": GITLAB_ISSUE})
    assert code == 1
    assert [(i["check_name"], i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues] == [
        ("SL001", f"pkg/{name}", 7),
        ("SL001", f"pkg/{name}", 13),
        ("syntax-error", "broken.py", 2),
    ]
    assert len({i["fingerprint"] for i in issues}) == 3
    # Fingerprints hold no line number: lines added above a finding keep it.
    (tmp_path / "pkg" / name).write_text("# a comment\n\n" + TWO_FINDINGS)
    _, moved, _ = invoke(["--format", "gitlab", "."], tmp_path, monkeypatch)
    assert [i["fingerprint"] for i in json.loads(moved)] == [i["fingerprint"] for i in issues]
    # Paths are relative to GitLab's checkout when CI_PROJECT_DIR is set.
    monkeypatch.setenv("CI_PROJECT_DIR", str(tmp_path.parent))
    _, inside, _ = invoke(["--format", "gitlab", "."], tmp_path, monkeypatch)
    assert json.loads(inside)[0]["location"]["path"] == f"{tmp_path.name}/pkg/{name}"


def test_statistics_and_output_file(tmp_path, monkeypatch):
    name = write(tmp_path)
    code, out, _ = invoke(["--statistics", name], tmp_path, monkeypatch)
    assert (code, out) == (1, "2\tSL001 \t[*] session-not-closed\n")
    code, out, _ = invoke(["--format", "concise", "-o", "report.txt", name], tmp_path, monkeypatch)
    assert (code, out) == (1, "")
    assert (tmp_path / "report.txt").read_text().count("SL001") == 2


def test_stdin_with_a_filename(tmp_path, monkeypatch):
    code, out, _ = invoke(["-q", "-", "--stdin-filename", "pkg/app.py"], tmp_path, monkeypatch, input=SOURCE)
    assert code == 1
    assert out.splitlines()[0] == "pkg/app.py:7:10: SL001 [*] session `db` is never closed"


def test_baseline_reports_only_new_findings(tmp_path, monkeypatch):
    name = write(tmp_path)
    code, _, err = invoke(["--write-baseline", "baseline.json", name], tmp_path, monkeypatch)
    assert (code, err) == (0, "Wrote 2 findings to baseline.json\n")
    assert invoke(["-q", "--baseline", "baseline.json", name], tmp_path, monkeypatch)[:2] == (0, "")
    # Lines added above move every finding: they stay matched; a new leak is reported.
    moved = "import os\n\n" + SOURCE + "\n\ndef new_leak():\n    db = SessionLocal()\n    db.execute('select 2')\n"
    write(tmp_path, moved)
    code, out, _ = invoke(["-q", "--baseline", "baseline.json", name], tmp_path, monkeypatch)
    assert (code, out) == (1, "app.py:45:10: SL001 [*] session `db` is never closed\n")


def test_bad_baseline_is_an_error(tmp_path, monkeypatch):
    name = write(tmp_path)
    (tmp_path / "baseline.json").write_text("{not json")
    code, out, err = invoke(["--baseline", "baseline.json", name], tmp_path, monkeypatch)
    assert code == 2 and out == ""
    assert err.startswith("sessionlint: error: baseline.json: not a sessionlint baseline")


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io
    import sys

    from sessionlint import cli

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli._progress_bar() is None  # not a terminal: no bar
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    update = cli._progress_bar()
    assert update is not None
    update(10, 50)  # a small run: still no bar
    assert terminal.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    assert cli._progress_bar() is None  # never in CI logs


def test_sl100_in_files_without_findings(tmp_path, monkeypatch):
    """A file with no finding is read again after the project pass only if it can hold a
    suppression SL100 reports; these can."""
    write(tmp_path, "x = 1  # sessionlint: ignore[SL001]\n", name="ignored.py")
    write(tmp_path, "y = 2  # noqa: E501, sl003\n", name="lower.py")
    write(tmp_path, "z = 3  # noqa: E501\nw = 4  # noqa\n", name="other.py")
    code, out, _ = invoke(["-q", "--extend-select", "SL100", "ignored.py", "lower.py", "other.py"], tmp_path, monkeypatch)
    assert (code, out.splitlines()) == (
        1,
        [
            "ignored.py:1:8: SL100 [*] unused suppression of `SL001`: no such finding on this line",
            "lower.py:1:8: SL100 [*] unused suppression of `SL003`: no such finding on this line",
        ],
    )


def test_which_files_may_hold_an_unused_suppression():
    from sessionlint.suppression import may_report_unused

    assert may_report_unused(b"x = 1  # sessionlint: ignore\n")
    assert may_report_unused(b"x = 1  # noqa: SL001\n")
    assert may_report_unused(b"x = 1  # NOQA:E501,sl002\n")
    assert not may_report_unused(b"x = 1  # noqa: E501\n")
    assert not may_report_unused(b"x = 1  # noqa\n")
    assert not may_report_unused(b"x = 1\n# SL001 is a rule of sessionlint\n")


def test_plain_text_output_equals_rich_output_without_color(monkeypatch):
    """Output that is not a terminal is written without rich (a warm run's largest import);
    300 seeded runs of findings whose paths, messages, help and source lines hold control
    characters, tabs, wide and combining characters, surrogates and markup brackets print
    exactly what rich prints, in the text and the concise format."""
    import io
    import random

    from sessionlint.diagnostics import Diagnostic, ErrorKind, FileError, FileResult, Location, RunResult
    from sessionlint.reporters import text as text_module

    alphabet = ["a", "b", " ", "\t", "\r", "\x0c", "\x0b", "\x07", "\x08", "\x1b", "\x00", "é", "中", "\u200b", "\udcff", "😀", "e\u0301", "[b]", ":"]
    rng = random.Random(7)

    def words(limit):
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(limit)))

    def rich_render(run, quiet):
        with monkeypatch.context() as patched:
            from rich.text import Text

            patched.setattr(text_module, "_text_class", lambda color: Text)
            patched.setattr(text_module, "_PlainConsole", lambda stream: text_module._console(stream, False))
            out = io.StringIO()
            text_module.render(run, out, quiet=quiet, sources=run.sources)
            return out.getvalue()

    for _ in range(300):
        path = "app/" + words(6) + ".py"
        lines = [words(12) for _ in range(rng.randrange(1, 5))]
        source = "\n".join(lines).encode("utf-8", "surrogateescape")
        diagnostics = []
        for _ in range(rng.randrange(1, 4)):
            line = rng.randrange(1, len(lines) + 2)
            column = rng.randrange(1, 8)
            end = Location(line + rng.randrange(2), rng.randrange(1, 12))
            diagnostics.append(Diagnostic("SL001", "session-not-closed", words(20), path, Location(line, column), end, help=words(10)))
        errors = [FileResult("bad/" + words(5) + ".py", error=FileError(ErrorKind.SYNTAX, "bad.py", words(10), 1, 2))]
        run = RunResult(files=[FileResult(path, tuple(diagnostics))] + errors, sources={path: source})
        for quiet in (False, True):
            out = io.StringIO()
            text_module.render(run, out, quiet=quiet, sources=run.sources)
            assert out.getvalue() == rich_render(run, quiet)
