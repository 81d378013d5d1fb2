"""JUnit XML for CI dashboards: one test suite, one test case per linted file with findings
(a failure per finding) and one passing case when nothing was found."""

from typing import Dict, List, TextIO
from xml.etree import ElementTree

from sessionlint.diagnostics import Diagnostic, ErrorKind, RunResult, display_path


def render(run: RunResult, stream: TextIO, **options: object) -> None:
    by_path: Dict[str, List[Diagnostic]] = {}
    for d in run.diagnostics:
        by_path.setdefault(d.path, []).append(d)
    syntax = [e for e in run.errors if e.kind in (ErrorKind.SYNTAX, ErrorKind.ENCODING)]
    failures = sum(len(v) for v in by_path.values()) + len(syntax)
    suites = ElementTree.Element("testsuites", name="sessionlint", tests=str(max(len(by_path) + len(syntax), 1)), failures=str(failures))
    suite = ElementTree.SubElement(
        suites, "testsuite", name="sessionlint", tests=str(max(len(by_path) + len(syntax), 1)), failures=str(failures), errors="0"
    )
    for path in sorted(by_path):
        case = ElementTree.SubElement(suite, "testcase", name=display_path(path), classname="sessionlint", file=display_path(path))
        for d in by_path[path]:
            failure = ElementTree.SubElement(case, "failure", message=f"{d.code} {d.message}", type=d.code)
            failure.text = f"{display_path(d.path)}:{d.start.line}:{d.start.column}: {d.code} {d.message}"
    for error in syntax:
        case = ElementTree.SubElement(suite, "testcase", name=display_path(error.path), classname="sessionlint", file=display_path(error.path))
        failure = ElementTree.SubElement(case, "failure", message=error.message, type=error.kind.value)
        failure.text = f"{display_path(error.path)}:{error.line}:{error.column}: {error.message}"
    if not by_path and not syntax:
        ElementTree.SubElement(suite, "testcase", name="sessionlint", classname="sessionlint")
    ElementTree.indent(suites)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ElementTree.tostring(suites, encoding="unicode"))
    stream.write("\n")
