"""docs/rules/ is generated from the rules' documentation (scripts/rule_pages.py) and must be
current; every link sessionlint prints points at one of those pages."""

import os
import subprocess
import sys

from sessionlint.registry import RULES, rule_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rule_pages_are_current():
    completed = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "rule_pages.py"), "--check"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_every_rule_url_names_its_page():
    for rule in RULES:
        assert rule_url(rule.code) == f"docs/rules/{rule.code}.md"
        assert os.path.isfile(os.path.join(ROOT, rule_url(rule.code)))


def test_explain_prints_the_page(monkeypatch):
    from click.testing import CliRunner

    from sessionlint.cli import main

    for code in ("SL001", "SL100"):
        result = CliRunner().invoke(main, ["--explain", code])
        assert result.exit_code == 0
        with open(os.path.join(ROOT, "docs", "rules", f"{code}.md"), encoding="utf-8") as handle:
            assert handle.read().split("\n", 1)[1] == result.output
