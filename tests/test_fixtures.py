"""Every fixture file is linted with all rules; its `# expect:` comments are the exact set of
findings, both ways. Each file is linted with and without the prefilter: the prefilter must
never drop a file that has a finding."""

import glob
import os
import sys

import pytest
from helpers import FIXTURES, compare, fixture_settings, lint_files, parse_expectations

SINGLE = sorted(
    path
    for path in glob.glob(os.path.join(FIXTURES, "SL*", "*.py"))
    if not path.endswith(".fixed.py")
)
PROJECTS = sorted(p for p in glob.glob(os.path.join(FIXTURES, "projects", "*")) if os.path.isdir(p))


def _id(path: str) -> str:
    return os.path.relpath(path, FIXTURES).replace(os.sep, "/")


@pytest.mark.parametrize("path", SINGLE, ids=_id)
@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "no-prefilter"])
def test_fixture(path: str, prefilter: bool) -> None:
    if "_py310" in os.path.basename(path) and sys.version_info < (3, 10):
        pytest.skip("needs Python 3.10")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    settings = fixture_settings(text)
    (result,) = lint_files([path], settings, prefilter=prefilter).values()
    assert result.error is None, result.error
    missing, unexpected = compare(parse_expectations(text), result.diagnostics)
    details = "\n".join(f"  {d.code} {d.start.line}:{d.start.column} {d.message}" for d in result.diagnostics)
    assert not missing and not unexpected, f"missing={sorted(missing)} unexpected={sorted(unexpected)}\nfound:\n{details}"


@pytest.mark.parametrize("project", PROJECTS, ids=_id)
@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "no-prefilter"])
def test_project_fixture(project: str, prefilter: bool) -> None:
    paths = sorted(glob.glob(os.path.join(project, "**", "*.py"), recursive=True))
    results = lint_files(paths, fixture_settings(""), prefilter=prefilter)
    failures = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        result = results[os.path.normpath(path)]
        if "# expect-error: syntax" in text:  # a file CPython cannot parse (Python 2)
            assert result.error is not None and result.error.kind.value == "syntax-error", result.error
        else:
            assert result.error is None, result.error
        missing, unexpected = compare(parse_expectations(text), result.diagnostics)
        if missing or unexpected:
            failures.append(f"{_id(path)}: missing={sorted(missing)} unexpected={sorted(unexpected)}")
    assert not failures, "\n".join(failures)


def test_fixture_counts() -> None:
    """The suite keeps at least 40 SL001 cases: findings plus silent fixture files."""
    files = [p for p in SINGLE if os.sep + "SL001" + os.sep in p]
    findings = 0
    for path in files:
        with open(path, encoding="utf-8") as handle:
            findings += len(parse_expectations(handle.read()))
    assert len(files) >= 25 and findings >= 20, (len(files), findings)
