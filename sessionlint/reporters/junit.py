"""JUnit XML for CI dashboards: one test suite, one test case per finding (Jenkins and Azure
DevOps show only the first failure of a case) and per file that does not parse, named by
code and location; one passing case when nothing was found."""

from typing import Any, TextIO
from xml.etree import ElementTree

from sessionlint.diagnostics import ErrorKind, RunResult, display_path


def render(run: RunResult, stream: TextIO, **options: Any) -> None:
    syntax = [e for e in run.errors if e.kind in (ErrorKind.SYNTAX, ErrorKind.ENCODING)]
    failures = len(run.diagnostics) + len(syntax)
    cases = str(max(failures, 1))
    suites = ElementTree.Element("testsuites", name="sessionlint", tests=cases, failures=str(failures))
    suite = ElementTree.SubElement(suites, "testsuite", name="sessionlint", tests=cases, failures=str(failures), errors="0")
    for d in run.diagnostics:
        path = display_path(d.path)
        case = ElementTree.SubElement(
            suite, "testcase", name=f"{d.code} {path}:{d.start.line}:{d.start.column}", classname=path, file=path, line=str(d.start.line)
        )
        failure = ElementTree.SubElement(case, "failure", message=f"{d.code} {d.message}", type=d.code)
        failure.text = f"{path}:{d.start.line}:{d.start.column}: {d.code} {d.message}" + (f"\nhelp: {d.help}" if d.help else "")
    for error in syntax:
        path = display_path(error.path)
        case = ElementTree.SubElement(suite, "testcase", name=f"{error.kind.value} {path}:{error.line}:{error.column}", classname=path, file=path)
        failure = ElementTree.SubElement(case, "failure", message=error.message, type=error.kind.value)
        failure.text = f"{path}:{error.line}:{error.column}: {error.message}"
    if not failures:
        ElementTree.SubElement(suite, "testcase", name="sessionlint", classname="sessionlint")
    ElementTree.indent(suites)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ElementTree.tostring(suites, encoding="unicode"))
    stream.write("\n")
