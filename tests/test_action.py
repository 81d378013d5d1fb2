"""The GitHub Action: action.yml's inputs reach its run step, and the run step
(scripts/action.sh) installs sessionlint from this checkout into a fresh virtualenv,
annotates, writes SARIF and exits with sessionlint's code, as on a runner."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_action_passes_every_input_to_the_run_step():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(ROOT, "action.yml"), encoding="utf-8") as handle:
        action = yaml.safe_load(handle)
    assert set(action["inputs"]) == {"version", "args", "sarif-file"}
    (step,) = action["runs"]["steps"]
    assert action["runs"]["using"] == "composite" and step["shell"] == "bash"
    assert step["run"] == 'bash "$GITHUB_ACTION_PATH/scripts/action.sh"'
    assert step["env"] == {f"INPUT_{name.upper().replace('-', '_')}": f"${{{{ inputs.{name} }}}}" for name in action["inputs"]}


def run_step(tmp_path, **inputs):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    output = tmp_path / "github_output"
    environment = dict(os.environ, GITHUB_ACTION_PATH=ROOT, RUNNER_TEMP=str(tmp_path), GITHUB_OUTPUT=str(output), PYTHON=sys.executable)
    environment.update({f"INPUT_{key.upper()}": value for key, value in inputs.items()})
    completed = subprocess.run(["bash", os.path.join(ROOT, "scripts", "action.sh")], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
    return completed, (output.read_text() if output.exists() else "")


@pytest.mark.slow
def test_run_step_annotates_and_writes_sarif(tmp_path):
    sarif = tmp_path / "report.sarif"
    completed, outputs = run_step(tmp_path, version="source", args="--isolated --no-cache examples/bookshop", sarif_file=str(sarif))
    assert completed.returncode == 1, completed.stderr
    annotations = completed.stdout.splitlines()
    assert len(annotations) == 13 and all(line.startswith("::error file=examples/bookshop/") for line in annotations)
    assert annotations[0].startswith("::error file=examples/bookshop/routes.py,line=31,col=12,")
    assert len(json.loads(sarif.read_text())["runs"][0]["results"]) == 13
    assert outputs == "exit-code=1\n"


def test_run_step_refuses_a_bad_version(tmp_path):
    completed, outputs = run_step(tmp_path, version="latest; rm -rf /")
    assert completed.returncode == 2 and outputs == ""
    assert completed.stdout == "::error title=sessionlint action::version must be 'source' or a version number, not 'latest; rm -rf /'\n"


def readme_blocks(language):
    import re

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        return re.findall(rf"```{language}\n(.*?)```", handle.read(), re.DOTALL)


def test_readme_workflow_uses_the_action_with_its_inputs():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(ROOT, "action.yml"), encoding="utf-8") as handle:
        inputs = set(yaml.safe_load(handle)["inputs"])
    documents = [yaml.safe_load(block) for block in readme_blocks("yaml")]
    (workflow,) = [d for d in documents if isinstance(d, dict) and "jobs" in d]
    steps = workflow["jobs"]["sessionlint"]["steps"]
    (action,) = [s for s in steps if s.get("uses") == "./.sessionlint"]
    assert set(action["with"]) <= inputs
    assert steps[1]["with"]["path"] == ".sessionlint"  # the checkout the step uses
    (gitlab,) = [d for d in documents if isinstance(d, dict) and "sessionlint" in d and "script" in d["sessionlint"]]
    formats = [line.split("--output-format ")[1].split()[0] for line in gitlab["sessionlint"]["script"] if "--output-format" in line]
    assert formats == ["gitlab", "junit"] and set(gitlab["sessionlint"]["artifacts"]["reports"]) == {"codequality", "junit"}


@pytest.mark.slow
def test_readme_local_pre_commit_hook_works_as_written(tmp_path):
    yaml = pytest.importorskip("yaml")
    if shutil.which("git") is None:
        pytest.skip("needs git")
    (block,) = [b for b in readme_blocks("yaml") if "repo: local" in b]
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".pre-commit-config.yaml").write_text(block)
    (repo / "app.py").write_text("from myapp.db import SessionLocal\n\n\ndef leak():\n    db = SessionLocal()\n    db.execute('select 1')\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    assert yaml.safe_load(block)["repos"][0]["hooks"][0]["id"] == "sessionlint"
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = dict(os.environ, PATH=path, PRE_COMMIT_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    completed = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "app.py:5:10: SL001 [*] session `db` is never closed" in completed.stdout
