"""scripts/new_rule.py: a new rule is one file plus its two registrations, importable and
listed at once."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_scaffold_registers_a_rule_that_imports_and_lists(tmp_path):
    shutil.copytree(os.path.join(ROOT, "sessionlint"), tmp_path / "sessionlint", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(os.path.join(ROOT, "scripts", "new_rule.py"), tmp_path / "scripts" / "new_rule.py")
    completed = subprocess.run(
        [sys.executable, "scripts/new_rule.py", "SL011", "session-held-across-await", "Session held across an unrelated await"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "sessionlint" / "rules" / "session_held_across_await.py").is_file()
    assert (tmp_path / "tests" / "fixtures" / "SL011" / "example.py").is_file()
    check = (
        "from sessionlint.rules import ALL_RULES\n"
        "from sessionlint.registry import RULES\n"
        "codes = [r.code for r in ALL_RULES]\n"
        "assert codes == sorted(codes) and 'SL011' in codes, codes\n"
        "assert [r.code for r in RULES if r.class_name] == codes\n"
        "print(ALL_RULES[codes.index('SL011')].__name__)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    completed = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert (completed.returncode, completed.stdout) == (0, "SessionHeldAcrossAwait\n"), completed.stderr
    listed = subprocess.run([sys.executable, "-m", "sessionlint", "--list-rules"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert "SL011  session-held-across-await" in listed.stdout
