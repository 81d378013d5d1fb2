"""The bundled example project (README's first command): exactly its deliberate bugs, one
per `# BUG (SLxxx)` marker, and nothing in the correct code around them."""

import os
import re

from sessionlint.config import Settings
from sessionlint.runner import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

EXPECTED = [
    ("bookshop/routes.py", 31, "SL001"),
    ("bookshop/routes.py", 36, "SL002"),
    ("bookshop/routes.py", 55, "SL001"),
    ("bookshop/routes.py", 71, "SL001"),
    ("bookshop/routes.py", 111, "SL007"),
    ("bookshop/routes.py", 129, "SL003"),
    ("bookshop/routes.py", 162, "SL008"),
    ("bookshop/routes.py", 193, "SL006"),
    ("bookshop/routes.py", 207, "SL004"),
    ("bookshop/routes.py", 216, "SL005"),
    ("bookshop/tasks.py", 25, "SL001"),
    ("bookshop/tasks.py", 37, "SL009"),
    ("bookshop/tasks.py", 48, "SL010"),
    ("scripts/seed.py", 29, "SL001"),
]


def test_examples_report_exactly_their_bugs():
    result = run([EXAMPLES], Settings())
    found = sorted((os.path.relpath(d.path, EXAMPLES), d.start.line, d.code) for d in result.diagnostics)
    assert found == EXPECTED
    assert not result.errors


def test_every_bug_marker_is_found():
    markers = []
    for directory, _, files in os.walk(EXAMPLES):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    markers += re.findall(r"# BUG \((SL\d{3})\)", handle.read())
    assert sorted(markers) == sorted(code for _, _, code in EXPECTED)
