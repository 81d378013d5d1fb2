"""The project pass kept in memory (project.live.LiveIndex): after every change of one file,
the index equals a full build over the same texts, and it is finished again only when the
change can alter it (otherwise no file is read)."""

from typing import Dict, List, Tuple

import pytest

from sessionlint.project.builder import build_index
from sessionlint.project.live import LiveIndex

FILES = {
    "app/__init__.py": "",
    "app/db.py": "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n\n\ndef make_engine():\n    return create_engine('sqlite://')\n",
    "app/repo.py": "from app.db import SessionLocal\n\n\ndef new_session():\n    return SessionLocal()\n",
    "app/views.py": "from app.repo import new_session\n\n\ndef count():\n    db = new_session()\n    return 1\n",
    "app/api.py": "from fastapi import FastAPI\n\nfrom app import db\n\napp = FastAPI()\n\n\n@app.get('/')\ndef index():\n    return {}\n",
    "app/util.py": "import os\n\n\ndef home():\n    return os.environ.get('HOME')\n",
    "app/crud.py": "def save(db, row):\n    db.add(row)\n    db.flush()\n\n\ndef unused(db):\n    db.commit()\n",
    "tests/test_views.py": "from app.views import count\n\n\ndef test_count():\n    assert count() == 1\n",
}

# (path, old text, new text, whether the index may change): each applied to the texts of the
# steps before it
EDITS: List[Tuple[str, str, str, bool]] = [
    ("app/views.py", "return 1", "return 1  # typed", False),  # a body: same facts, same answers
    ("app/util.py", "os.environ", "os.environ  # x", False),
    ("app/api.py", "return {}", "return {'a': 1}", False),
    ("app/api.py", "return {'a': 1}", "return db.make_engine()", True),  # a handler now calls a builder
    ("app/api.py", "return db.make_engine()", "return db.make_engine()  # per request", False),
    ("app/util.py", "import os\n", "import os\nfrom app.repo import new_session\n", True),  # imports a learnt name
    ("app/util.py", "return os.environ", "s = new_session()\n    return os.environ", True),
    # the same name imported from outside the project: same text facts, another rescan reason
    ("app/util.py", "from app.repo import new_session", "from lib.other import new_session", True),
    ("app/util.py", "from lib.other import new_session", "from app.repo import new_session", True),
    ("app/db.py", "SessionLocal = sessionmaker()", "Maker = sessionmaker()\nSessionLocal = Maker", True),  # the factory moves
    ("app/views.py", "db = new_session()", "db = new_session()\n    db.commit()", True),  # commits a session
    ("tests/test_views.py", "== 1", "== 2", False),
    # a module whose committing functions no file imports: not worked out, nothing changes
    ("app/crud.py", "db.commit()", "db.rollback()", False),
    ("app/views.py", "def count", "from app.crud import save\n\n\ndef count", True),  # now imported
    ("app/crud.py", "db.flush()", "db.flush()\n    db.rollback()", True),  # save no longer leaves a failure
    ("app/crud.py", "db.rollback()\n", "", True),
    ("app/repo.py", "return SessionLocal()", "return SessionLocal(  # broken", True),  # does not parse
    ("app/repo.py", "return SessionLocal(  # broken", "return SessionLocal()", True),
]


class Reads:
    """The texts, counting reads per path."""

    def __init__(self, texts: Dict[str, bytes]) -> None:
        self.texts = texts
        self.count: Dict[str, int] = {}

    def __call__(self, path: str) -> bytes:
        self.count[path] = self.count.get(path, 0) + 1
        return self.texts[path]


def full_build(texts: Dict[str, bytes]):
    return build_index(dict(texts))


@pytest.fixture
def live():
    texts = {path: text.encode() for path, text in FILES.items()}
    reads = Reads(texts)
    index = LiveIndex(reads)
    for path, data in texts.items():
        index.add(path, data)
    return index, texts, reads


def test_first_pass_equals_a_full_build(live):
    index, texts, _ = live
    assert index.current() == full_build(texts)
    assert index.current().per_request == {}
    assert index.rebuilds == 1


def test_each_change_equals_a_full_build(live):
    index, texts, reads = live
    index.current()
    for path, old_text, new_text, may_change in EDITS:
        old = texts[path]
        assert old_text.encode() in old, (path, old_text)
        new = old.replace(old_text.encode(), new_text.encode(), 1)
        texts[path] = new
        rebuilds = index.rebuilds
        reads.count.clear()
        index.update(path, old, new)
        assert index.current() == full_build(texts), (path, new_text)
        if index.rebuilds == rebuilds:
            assert not reads.count, (new_text, reads.count)
        if not may_change:
            assert index.rebuilds == rebuilds, f"{path}: `{new_text}` finished the pass again"
    assert ("app/db.py", "make_engine") in index.current().per_request


def test_a_new_and_a_removed_file(live):
    index, texts, _ = live
    index.current()
    texts["app/jobs.py"] = b"from app.repo import new_session\n\n\ndef job():\n    return new_session()\n"
    index.update("app/jobs.py", None, texts["app/jobs.py"])
    assert index.current() == full_build(texts)
    del texts["app/views.py"]
    index.remove("app/views.py")
    assert index.current() == full_build(texts)


def test_what_no_file_holds_any_more_is_forgotten(live):
    index, texts, _ = live
    index.current()
    sizes = (len(index.cache.texts), len(index.cache.scans))
    old = texts["app/repo.py"]
    for number in range(20):
        new = old + b"# %d\n" % number
        index.update("app/repo.py", old, new)
        index.current()
        old = new
    assert (len(index.cache.texts), len(index.cache.scans)) == sizes


def test_keystrokes_in_the_workspace_read_no_file(tmp_path, monkeypatch):
    """The language server's workspace: the project is read from disk once; keystrokes in a
    function body neither read a file nor finish the pass again, and the findings follow
    the buffer."""
    from sessionlint import workspace as workspace_module
    from sessionlint.workspace import Workspace

    root = tmp_path / "shop"
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    for path, text in FILES.items():
        if path.startswith("app/"):
            (root / path).write_text(text)
    reads = []
    real = workspace_module.read_source

    def counting(path, *arguments):
        reads.append(path)
        return real(path, *arguments)

    monkeypatch.setattr(workspace_module, "read_source", counting)
    files = Workspace([str(root)])
    views = str(root / "app" / "views.py")
    text = FILES["app/views.py"].encode()
    files.open(views, text)
    assert [(d.code, d.start.line) for d in files.lint(views).result.diagnostics] == [("SL001", 5)]
    first = len(reads)
    assert first == len([p for p in FILES if p.startswith("app/")]) - 1  # every file but the open one
    project = files.project_of[views]
    assert project.index is not None and project.index.rebuilds == 1
    for number in range(5):
        text = text.replace(b"return 1", b"return 1  # %d" % number) if number == 0 else text + b"# %d\n" % number
        files.change(views, text)
        assert [(d.code, d.start.line) for d in files.lint(views).result.diagnostics] == [("SL001", 5)]
    files.change(views, text.replace(b"db = new_session()", b"with new_session() as db:\n        pass"))
    assert files.lint(views).result.diagnostics == ()
    assert len(reads) == first and project.index.rebuilds == 1
