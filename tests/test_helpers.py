"""The helpers of a small run (a pre-commit hook's few files): processes forked at the start
that import libcst while this process does the project pass, then lint the files that need
it. They must give exactly the findings of a single-process run, fall back to linting here
when one fails, start only when a file may need them, and leave no process behind."""

import os
import threading

import pytest

import sessionlint.engine as engine
import sessionlint.launch as launch
from sessionlint.config import Settings

DATABASE = '''
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
Maker = sessionmaker(bind=engine)
'''

LEAK = '''
from app.database import Maker


def leak_{i}():
    db = Maker()
    db.execute("select 1")
'''

CLOSED = '''
from app.database import Maker


def fine_{i}():
    with Maker() as db:
        db.execute("select 1")
'''

PLAIN = '''
def add(a, b):
    return a + b
'''

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="helpers are forked")


def write_project(root, files):
    """The project's files named in `files` (as a hook passes them); the pyproject.toml makes
    the project pass read the rest (database.py)."""
    (root / "pyproject.toml").write_text("")
    app = root / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(DATABASE)
    paths = []
    for name, text in files.items():
        (app / name).write_text(text)
        paths.append(str(app / name))
    return paths


def findings(run):
    return [(os.path.basename(d.path), d.start.line, d.start.column, d.code) for d in run.diagnostics]


@pytest.fixture
def forks(monkeypatch):
    """Helpers allowed although this test process has libcst; the processes this process
    forks, counted (a helper's own forks happen in its memory)."""
    monkeypatch.setattr(launch, "can_fork", lambda: True)
    started = []
    real = launch.spawn

    def spawn(function, with_input=False):
        spawned = real(function, with_input)
        started.append(spawned is not None)
        return spawned

    monkeypatch.setattr(launch, "spawn", spawn)
    return started


def assert_no_child_left():
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def parsed_here(monkeypatch):
    """The files parsed in this process (a helper's parses happen in its own memory)."""
    calls = []
    real = engine.parse_and_lint

    def counting(data, path, project, rules, refine=(), module=None):
        calls.append((os.getpid(), os.path.basename(path)))
        return real(data, path, project, rules, refine, module)

    monkeypatch.setattr(engine, "parse_and_lint", counting)
    return calls


def test_the_helper_gives_the_findings_of_a_single_process_run(tmp_path, forks, monkeypatch):
    paths = write_project(tmp_path, {"a.py": LEAK.format(i=1), "b.py": CLOSED.format(i=2), "c.py": LEAK.format(i=3)})
    here = parsed_here(monkeypatch)
    helped = engine.run(paths, Settings(cache=False, jobs=2))
    assert forks == [True]
    assert here == []  # all three linted by the helper and its fork
    assert_no_child_left()
    single = engine.run(paths, Settings(cache=False, jobs=1))
    assert forks == [True]  # -j 1: no helper
    assert findings(helped) == findings(single) == [("a.py", 6, 10, "SL001"), ("c.py", 6, 10, "SL001")]
    assert [r.parsed for r in helped.files] == [r.parsed for r in single.files] == [True, True, True]


def test_a_failed_helper_has_its_files_linted_here(tmp_path, forks, monkeypatch):
    paths = write_project(tmp_path, {"a.py": LEAK.format(i=1), "c.py": LEAK.format(i=3)})
    monkeypatch.setattr(engine, "helper_main", lambda read_fd, write_fd: 3)  # no answer
    here = parsed_here(monkeypatch)
    run = engine.run(paths, Settings(cache=False, jobs=2))
    assert forks == [True]
    assert sorted(name for _, name in here) == ["a.py", "c.py"]
    assert findings(run) == [("a.py", 6, 10, "SL001"), ("c.py", 6, 10, "SL001")]
    assert_no_child_left()


def test_a_garbled_answer_is_ignored(tmp_path, forks, monkeypatch):
    paths = write_project(tmp_path, {"a.py": LEAK.format(i=1)})

    def garbled(read_fd, write_fd):
        while os.read(read_fd, 1 << 16):
            pass
        os.write(write_fd, b"not a pickle")
        return 0

    monkeypatch.setattr(engine, "helper_main", garbled)
    here = parsed_here(monkeypatch)
    run = engine.run(paths, Settings(cache=False, jobs=2))
    assert forks == [True]
    assert [name for _, name in here] == ["a.py"]
    assert findings(run) == [("a.py", 6, 10, "SL001")]
    assert_no_child_left()


def test_no_helper_for_files_that_name_nothing_of_the_kind(tmp_path, forks):
    paths = write_project(tmp_path, {"plain.py": PLAIN, "other.py": PLAIN})
    run = engine.run(paths, Settings(cache=False, jobs=2))
    assert forks == []
    assert findings(run) == []


def test_a_helper_with_nothing_to_do_is_stopped(tmp_path, forks):
    # "session" in a comment: the helper starts, but the prefilter leaves nothing to parse.
    paths = write_project(tmp_path, {"a.py": "# no session here\n" + PLAIN, "b.py": "# nor a db\n" + PLAIN})
    run = engine.run(paths, Settings(cache=False, jobs=2))
    assert forks == [True]
    assert findings(run) == [] and [r.parsed for r in run.files] == [False, False]
    assert_no_child_left()


def test_no_helper_when_libcst_is_imported_already(tmp_path, monkeypatch):
    paths = write_project(tmp_path, {"a.py": LEAK.format(i=1)})
    monkeypatch.setattr(launch, "spawn", lambda *a, **k: pytest.fail("forked a helper"))
    assert findings(engine.run(paths, Settings(cache=False, jobs=2))) == [("a.py", 6, 10, "SL001")]


def helper_answer(batch, project, jobs):
    """Run the helper's body in this process on `batch`: its forks are this process's."""
    import pickle

    from sessionlint.registry import RULES

    read_fd, to_helper = os.pipe()
    from_helper, write_fd = os.pipe()
    os.write(to_helper, pickle.dumps((project, batch, [r.code for r in RULES], jobs)))
    os.close(to_helper)
    assert engine.helper_main(read_fd, write_fd) == 0
    return pickle.loads(launch.read_all(from_helper))


def small_batch(tmp_path):
    from sessionlint.engine import build_project

    sources = {str(tmp_path / "app" / "database.py"): DATABASE.encode()}
    batch = []
    for i, text in enumerate([LEAK, CLOSED, LEAK, LEAK + "\n" * 50]):
        path = str(tmp_path / "app" / f"m{i}.py")
        sources[path] = text.format(i=i).encode()
        batch.append((path, sources[path], ()))
    return batch, build_project(sources, Settings())


def test_the_helper_forks_itself_and_answers_in_order(tmp_path, forks):
    batch, project = small_batch(tmp_path)
    answer = helper_answer(batch, project, jobs=2)
    assert forks == [True]  # the second share's process
    assert [(os.path.basename(r.path), [(d.start.line, d.code) for d in r.diagnostics]) for r in answer] == [
        ("m0.py", [(6, "SL001")]),
        ("m1.py", []),
        ("m2.py", [(6, "SL001")]),
        ("m3.py", [(6, "SL001")]),
    ]
    assert_no_child_left()


def test_the_helper_lints_a_failed_share_itself(tmp_path, forks, monkeypatch):
    batch, project = small_batch(tmp_path)
    real = launch.spawn
    monkeypatch.setattr(launch, "spawn", lambda function, with_input=False: real(lambda r, w: 1, with_input))
    answer = helper_answer(batch, project, jobs=2)
    assert [len(r.diagnostics) for r in answer] == [1, 0, 1, 1]
    assert_no_child_left()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["a.py", "b.py"], ["a.py", "b.py"]),
        (["--force-exclude", "a.py", "-q", "b.py"], ["a.py", "b.py"]),
        (["--select", "SL001", "--config", "a.py", "b.py"], ["b.py"]),  # a.py is --config's value
        (["--", "-odd.py"], ["-odd.py"]),
        (["-j", "2", "a.py"], ["a.py"]),
        (["-j", "1", "a.py"], None),
        (["--jobs=1", "a.py"], None),
        (["-j1", "a.py"], None),
        (["--version"], None),
        (["--explain", "SL001"], None),
        (["--clean", "a.py"], None),
        (["-", "--stdin-filename", "a.py"], None),
        (["app"], None),  # a directory: the tree may be large
        (["missing.py"], None),
        ([], None),
    ],
)
def test_the_command_lines_the_launcher_forks_for(tmp_path, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app").mkdir()
    for name in ("a.py", "b.py", "-odd.py"):
        (tmp_path / name).write_text("")
    assert launch.linted_files(argv) == expected


def test_the_helper_forked_at_start_up_is_adopted(tmp_path, forks, monkeypatch):
    paths = write_project(tmp_path, {"a.py": LEAK.format(i=1), "c.py": LEAK.format(i=3)})
    child = launch.prefork(paths)
    assert child is not None and forks == [True]
    monkeypatch.setattr(launch, "_PREFORKED", [child])
    here = parsed_here(monkeypatch)
    run = engine.run(paths, Settings(cache=False, jobs=2))
    assert forks == [True]  # no second helper
    assert here == [] and launch._PREFORKED == []
    assert findings(run) == [("a.py", 6, 10, "SL001"), ("c.py", 6, 10, "SL001")]
    assert_no_child_left()


def test_a_helper_forked_at_start_up_for_nothing_is_stopped(tmp_path, forks, monkeypatch):
    paths = write_project(tmp_path, {"a.py": LEAK.format(i=1)})
    monkeypatch.setattr(launch, "_PREFORKED", [launch.prefork(paths)])
    here = parsed_here(monkeypatch)
    run = engine.run(paths, Settings(cache=False, jobs=1))  # one job configured
    assert forks == [True] and launch._PREFORKED == []
    assert [name for _, name in here] == ["a.py"]
    assert findings(run) == [("a.py", 6, 10, "SL001")]
    assert_no_child_left()


def test_no_prefork_for_files_that_name_nothing_of_the_kind(tmp_path, forks):
    paths = write_project(tmp_path, {"plain.py": PLAIN})
    assert launch.prefork(paths) is None and forks == []


@pytest.mark.parametrize(("code", "status", "err"), [(None, 0, ""), (0, 0, ""), (3, 3, ""), ("stopped", 1, "stopped\n")])
def test_hard_exit_exits_as_sys_exit_does(code, status, err):
    """The command ends with os._exit (no teardown): what it printed is flushed first, and
    the status is sys.exit's."""
    import subprocess
    import sys

    script = f"from sessionlint.launch import hard_exit; print('out', end=''); hard_exit({code!r})"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (completed.returncode, completed.stdout, completed.stderr) == (status, "out", err)


def test_the_helper_parses_the_named_files_while_it_waits(tmp_path, monkeypatch):
    """Largest first, only files that may need libcst, none that either parser refuses; a
    file is keyed by its bytes; no parser thread is left for the fork that follows."""
    import libcst as cst

    files = {
        "small.py": "import sqlalchemy\n",
        "large.py": LEAK.format(i=1) + "\n# padding\n" * 20,
        "plain.py": PLAIN,  # nothing of the kind: no parse
        "broken.py": "def session(:\n",  # refused: the lint reports it
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    order = []
    real = cst.parse_module
    monkeypatch.setattr(cst, "parse_module", lambda data: order.append(len(data)) or real(data))
    read_fd, write_fd = os.pipe()
    try:
        paths = [str(tmp_path / name) for name in files] + [str(tmp_path / "missing.py")]
        parsed = engine._parse_ahead(paths, read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert sorted(parsed) == sorted(files[name].encode() for name in ("small.py", "large.py"))
    assert order == [len(files["large.py"]), len(files["small.py"])]
    assert parsed[files["small.py"].encode()].code == files["small.py"]
    assert "thread" not in engine._PARSER
    assert not [t for t in threading.enumerate() if t.name == "sessionlint-parser"]


def test_the_helper_stops_parsing_ahead_when_its_files_arrive(tmp_path):
    (tmp_path / "a.py").write_text(LEAK.format(i=1))
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"x")  # the parent's files have arrived
    try:
        assert engine._parse_ahead([str(tmp_path / "a.py")], read_fd) == {}
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_a_file_parsed_ahead_is_linted_from_that_tree(tmp_path, forks, monkeypatch):
    """The tree parsed ahead is the one linted for those bytes (here, to tell, the tree of
    another text: no finding); other files are parsed as usual."""
    import libcst as cst

    batch, project = small_batch(tmp_path)
    fine = cst.parse_module(CLOSED.format(i=0))
    monkeypatch.setattr(engine, "_parse_ahead", lambda paths, read_fd: {batch[0][1]: fine})
    read_fd, to_helper = os.pipe()
    from_helper, write_fd = os.pipe()
    import pickle

    from sessionlint.registry import RULES

    os.write(to_helper, pickle.dumps((project, batch, [r.code for r in RULES], 1)))
    os.close(to_helper)
    assert engine.helper_main(read_fd, write_fd, ["named.py"]) == 0
    answer = pickle.loads(launch.read_all(from_helper))
    assert [len(r.diagnostics) for r in answer] == [0, 0, 1, 1]
