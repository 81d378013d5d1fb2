"""importcache: the code dataclasses compiles while libcst is imported, kept between runs.
Each run is a fresh interpreter (in this one libcst is imported already)."""

import json
import os
import subprocess
import sys

import pytest

from sessionlint import importcache

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("POSIX paths", allow_module_level=True)

PROBE = r"""
import dataclasses, json, sys
from sessionlint.registry import RULES, rule_classes
compiled = []
real_compile = compile
import builtins
def counting(source, *args, **kwargs):
    if isinstance(source, str) and "__create_fn__" in source:
        compiled.append(1)
    return real_compile(source, *args, **kwargs)
real_exec = exec
def counting_exec(source, *args):  # what dataclasses calls when nothing is cached
    if isinstance(source, str) and "__create_fn__" in source:
        compiled.append(1)
    return real_exec(source, *args)
builtins.compile = counting
builtins.exec = counting_exec
rules = rule_classes(RULES)
builtins.compile = real_compile
builtins.exec = real_exec
import libcst
from sessionlint.engine import build_project, lint_source
from sessionlint.config import Settings
data = b"from sqlalchemy.orm import Session\n\ndef leak(engine):\n    s = Session(engine)\n    s.execute(1)\n"
project = build_project({"leak.py": data}, Settings())
result = lint_source(data, "leak.py", project, rules)
node = libcst.parse_module("x = 1\n")
print(json.dumps({
    "compiled": len(compiled),
    "hooked": "exec" in vars(dataclasses),
    "findings": [(d.code, d.start.line, d.start.column) for d in result.diagnostics],
    "equal": node.deep_equals(libcst.parse_module("x = 1\n")) and node == node and repr(node).startswith("Module("),
}))
"""


def probe(tmp_path, **env):
    run_env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), **env)
    run_env.pop("SESSIONLINT_NO_IMPORT_CACHE", None) if "SESSIONLINT_NO_IMPORT_CACHE" not in env else None
    out = subprocess.run([sys.executable, "-c", PROBE], env=run_env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def cache_files(tmp_path):
    directory = tmp_path / "sessionlint"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_second_start_compiles_nothing_and_lints_the_same(tmp_path):
    first = probe(tmp_path)
    assert first["compiled"] > 300  # libcst's node classes, compiled once
    assert first["findings"] == [["SL001", 4, 9]] and first["equal"] and not first["hooked"]
    (name,) = cache_files(tmp_path)
    assert name.startswith("dataclass-code-") and name.endswith(".marshal")
    second = probe(tmp_path)
    assert second["compiled"] == 0
    assert second["findings"] == first["findings"] and second["equal"] and not second["hooked"]


def test_damaged_file_means_a_plain_import_and_a_new_file(tmp_path):
    probe(tmp_path)
    (name,) = cache_files(tmp_path)
    path = tmp_path / "sessionlint" / name
    good = path.read_bytes()
    for damage in (b"", b"garbage", good[: len(good) // 2], importcache._MAGIC + b"\x00\x01"):
        path.write_bytes(damage)
        again = probe(tmp_path)
        assert again["compiled"] > 300 and again["findings"] == [["SL001", 4, 9]]
        assert path.read_bytes().startswith(importcache._MAGIC) and len(path.read_bytes()) > len(good) // 2


def test_foreign_content_is_not_executed(tmp_path):
    """A file of the right name holding other objects than code is ignored."""
    import marshal

    probe(tmp_path)
    (name,) = cache_files(tmp_path)
    path = tmp_path / "sessionlint" / name
    path.write_bytes(importcache._MAGIC + marshal.dumps({b"k" * 16: "not code"}))
    assert importcache._load(str(path)) == {}
    assert probe(tmp_path)["compiled"] > 300


def test_turned_off_or_unwritable_it_compiles_as_python_does(tmp_path):
    off = probe(tmp_path, SESSIONLINT_NO_IMPORT_CACHE="1")
    assert off["compiled"] > 300 and cache_files(tmp_path) == []
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory would be")
    run = probe(blocked)
    assert run["compiled"] > 300 and run["findings"] == [["SL001", 4, 9]]


def test_file_is_per_interpreter_and_libcst(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SESSIONLINT_NO_IMPORT_CACHE", raising=False)
    here = importcache.cache_file()
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert importcache.cache_file() != here
    assert os.path.dirname(here) == str(tmp_path / "sessionlint")
