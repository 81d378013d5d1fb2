"""The editor setup of docs/editors.md, run as written: the Neovim snippet in `nvim --headless`
(skipped when no `nvim` 0.11+ is installed; SESSIONLINT_NVIM names one elsewhere)."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from test_server import DATABASE, USERS, USERS_FIXED, write

pytest.importorskip("pygls")

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "editors.md")

# After the documented configuration: wait for the diagnostics, ask for the quick fixes at
# the finding, apply the first with Neovim's own WorkspaceEdit code, save, and report.
CHECK = """
local result = os.getenv("SESSIONLINT_RESULT")
local found = vim.wait(30000, function() return #vim.diagnostic.get(0) > 0 end, 50)
local diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(diagnostics, { d.code, d.lnum, d.col, d.end_lnum, d.end_col, d.source })
end
local client = vim.lsp.get_clients({ bufnr = 0, name = "sessionlint" })[1]
local params = {
  textDocument = { uri = vim.uri_from_bufnr(0) },
  range = { start = { line = 4, character = 9 }, ["end"] = { line = 4, character = 9 } },
  context = { diagnostics = {}, only = { "quickfix" } },
}
local answer = client:request_sync("textDocument/codeAction", params, 60000, 0)
local action = answer.result[1]
vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
vim.cmd("write")
vim.fn.writefile({ vim.json.encode({ found = found, diagnostics = diagnostics, title = action.title }) }, result)
vim.cmd("qall!")
"""


def neovim():
    found = os.environ.get("SESSIONLINT_NVIM") or shutil.which("nvim")
    if not found:
        return None
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60).stdout
    match = re.match(r"NVIM v(\d+)\.(\d+)", version)
    return found if match and (int(match.group(1)), int(match.group(2))) >= (0, 11) else None


def snippet(name):
    with open(DOCS, encoding="utf-8") as handle:
        text = handle.read()
    block = text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
    return block.split("```lua\n", 1)[1].rsplit("```", 1)[0]


def test_neovim_snippet(tmp_path):
    nvim = neovim()
    if nvim is None:
        pytest.skip("no nvim 0.11 or newer (SESSIONLINT_NVIM or PATH)")
    root = tmp_path / "shop"
    write(str(root), {"pyproject.toml": "[project]\nname = 'shop'\n", "app/__init__.py": "", "app/database.py": DATABASE, "app/users.py": USERS})
    config = tmp_path / "init.lua"
    config.write_text(snippet("neovim"))
    check = tmp_path / "check.lua"  # run once the file is loaded (`-c`)
    check.write_text(CHECK)
    result = tmp_path / "result.json"
    # `sessionlint` as the snippet names it: this interpreter's console script first on PATH
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], SESSIONLINT_RESULT=str(result))
    env.pop("NVIM", None)
    done = subprocess.run(
        [nvim, "--headless", "--clean", "-u", str(config), "-c", f"luafile {check}", "app/users.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.exists(), (done.returncode, done.stdout, done.stderr)
    report = json.loads(result.read_text())
    assert report == {
        "found": True,
        "diagnostics": [["SL001", 4, 9, 4, 23, "sessionlint"]],
        "title": "Use `with ... as db:` for the rest of the block (SL001)",
    }
    assert (root / "app" / "users.py").read_text() == USERS_FIXED
