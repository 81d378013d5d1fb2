"""SARIF output validated against the published SARIF 2.1.0 JSON schema. The schema is not
vendored: the test takes it at run time from the npm registry (Microsoft's
@microsoft/jest-sarif package ships it) into a cache outside the repository, and skips when
npm or the registry is not reachable."""

import json
import os
import shutil
import subprocess
import tarfile

import pytest
from click.testing import CliRunner

from sessionlint.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "@microsoft/jest-sarif@1.0.0-beta.0"
MEMBER = "package/lib/schemas/sarif-2.1.0-rtm.5.json"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "sessionlint-tests", "sarif")


def sarif_schema() -> dict:
    path = os.path.join(CACHE, "sarif-2.1.0-rtm.5.json")
    if not os.path.exists(path):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not available to fetch the SARIF schema")
        os.makedirs(CACHE, exist_ok=True)
        completed = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=CACHE, capture_output=True, text=True, timeout=120)
        archive = os.path.join(CACHE, completed.stdout.strip().splitlines()[-1]) if completed.stdout.strip() else ""
        if completed.returncode != 0 or not os.path.exists(archive):
            pytest.skip(f"cannot fetch {PACKAGE}: {completed.stderr.strip()[-200:]}")
        with tarfile.open(archive) as bundle:
            source = bundle.extractfile(MEMBER)
            assert source is not None
            with open(path, "wb") as handle:
                handle.write(source.read())
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sarif_of(args, cwd, monkeypatch) -> dict:
    monkeypatch.chdir(cwd)
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, ["--no-cache", "--isolated", "--output-format", "sarif", *args], catch_exceptions=False)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_sarif_is_valid_against_the_published_schema(tmp_path, monkeypatch):
    jsonschema = pytest.importorskip("jsonschema")
    schema = sarif_schema()
    (tmp_path / "broken.py").write_bytes(b"from myapp.db import SessionLocal\nSessionLocal(\n")
    documents = [
        sarif_of([os.path.join(ROOT, "examples")], ROOT, monkeypatch),  # every rule's findings
        sarif_of(["broken.py"], tmp_path, monkeypatch),  # a syntax error: a notification
        sarif_of([os.path.join(ROOT, "examples", "bookshop", "models.py")], ROOT, monkeypatch),  # nothing found
    ]
    for document in documents:
        jsonschema.validate(document, schema)
    assert len(documents[0]["runs"][0]["results"]) == 14
    # The schema admits what the examples carry: rule help in Markdown, fixes, base URIs.
    fixed = [r["ruleId"] for r in documents[0]["runs"][0]["results"] if "fixes" in r]
    assert fixed and all(r["help"]["markdown"].startswith(f"# {r['id']} ") for r in documents[0]["runs"][0]["tool"]["driver"]["rules"])
    assert documents[1]["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["descriptor"]["id"] == "syntax-error"
    assert documents[2]["runs"][0]["results"] == []
