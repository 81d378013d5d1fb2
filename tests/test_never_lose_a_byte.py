"""Processes, paths and the file system: a killed run leaves no worker behind, one Ctrl-C ends
a run, `-j` is capped, odd file names survive every format, a path given twice is linted
once, `.gitignore` holds in every repository of a run, `--fix` keeps links, owners and
extended attributes and never loses an edit made meanwhile, and a killed run's temporary
files are gone after the next one."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

LEAK = b"from app.db import SessionLocal\n\n\ndef leak():\n    db = SessionLocal()\n    db.execute('select 1')\n"
FIXED = b"from app.db import SessionLocal\n\n\ndef leak():\n    with SessionLocal() as db:\n        db.execute('select 1')\n"


def command(*args):
    tool = os.path.join(os.path.dirname(sys.executable), "sessionlint")
    return ([tool] if os.path.exists(tool) else [sys.executable, "-m", "sessionlint"]) + list(args)


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if k != "SESSIONLINT_CACHE_DIR"}
    env.update(NO_COLOR="1", **extra)
    return env


def interruptible():
    """A child that takes SIGINT as a terminal's Ctrl-C does, even when this test process
    runs with SIGINT ignored (a background job, some CI runners)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def big_tree(root, count=400):
    """Enough files, some of them large, for a run to start its pool and take a while."""
    body = LEAK + b"".join(b"\n\ndef f%d(x):\n    with SessionLocal() as s:\n        return s.execute(x)\n" % i for i in range(150))
    for i in range(count):
        (root / f"m{i:03d}.py").write_bytes(body)
    (root / "pyproject.toml").write_text("[project]\nname = 'big'\n")


def children_of(pid):
    """Every process descended from `pid` (by /proc), the process itself excluded."""
    found = set()
    frontier = {pid}
    while frontier:
        current = frontier.pop()
        try:
            listed = open(f"/proc/{current}/task/{current}/children").read().split()
        except OSError:
            continue
        for child in map(int, listed):
            if child not in found:
                found.add(child)
                frontier.add(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")


@needs_proc
def test_killing_only_the_main_process_ends_its_workers_and_the_pipe(tmp_path):
    """`sessionlint . | cat` with the main process killed (`kill -9 PID`, the OOM killer):
    the workers go too, so the pipe closes and `cat` ends."""
    big_tree(tmp_path)
    run = subprocess.Popen(command(".", "--no-cache", "-j", "2"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment())
    reader = subprocess.Popen(["cat"], stdin=run.stdout, stdout=subprocess.DEVNULL)
    run.stdout.close()
    deadline = time.time() + 30
    workers = set()
    while time.time() < deadline and len(workers) < 2:
        workers = children_of(run.pid)
        time.sleep(0.05)
    assert workers, "the run started no worker"
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=10)
    reader.wait(timeout=15)  # the pipe closed: no worker holds it
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)


@needs_proc
@pytest.mark.parametrize("trial", range(6))
def test_one_ctrl_c_always_ends_the_run(tmp_path, trial):
    big_tree(tmp_path, 300)
    rng = random.Random(trial)
    run = subprocess.Popen(
        command(".", "--no-cache", "-j", "2"), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment(), preexec_fn=interruptible
    )
    time.sleep(rng.uniform(0.05, 1.5))
    workers = children_of(run.pid)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=20)
    assert run.returncode in (130, 1), err  # 1: the run had ended already
    assert b"Traceback" not in err
    if run.returncode == 130:
        assert err.decode().endswith("sessionlint: interrupted\n")
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)


def test_sigterm_ends_the_run_with_143(tmp_path):
    big_tree(tmp_path, 300)
    run = subprocess.Popen(command(".", "--no-cache", "-j", "2"), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment())
    time.sleep(0.5)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=20)
    assert run.returncode in (143, 1) and b"Traceback" not in err


def test_jobs_are_capped_at_the_core_count(tmp_path):
    (tmp_path / "a.py").write_bytes(LEAK)
    completed = subprocess.run(command("-q", "--isolated", "--no-cache", "-j", "64", "a.py"), cwd=tmp_path, capture_output=True, text=True, env=environment())
    cores = os.cpu_count() or 1
    assert completed.returncode == 1
    if cores < 64:
        assert completed.stderr == f"sessionlint: warning: -j 64 is more than the {cores} cores of this machine; using {cores}\n"


def test_an_internal_error_exits_2_not_1(tmp_path):
    """A crash outside any one file (here: the runner itself raises) is one line and exit 2,
    never exit 1, which means findings."""
    (tmp_path / "a.py").write_bytes(LEAK)
    script = (
        "import sys, sessionlint.runner as r\n"
        "def boom(*a, **k): raise RuntimeError('boom')\n"
        "r._Run.group = boom\n"
        "from sessionlint.cli import entry\n"
        "entry(sys.argv[1:])\n"
    )
    completed = subprocess.run([sys.executable, "-c", script, "--isolated", "--no-cache", "a.py"], cwd=tmp_path, capture_output=True, text=True, env=environment(SESSIONLINT_STRICT="0"))
    assert completed.returncode == 2
    assert completed.stderr == "sessionlint: internal error: RuntimeError: boom (please report it; --verbose shows the traceback)\n"


# --- paths --------------------------------------------------------------------------------

ODD_NAME = b"caf\xe9_\xff.py"  # latin-1 bytes: not UTF-8


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
@pytest.mark.parametrize("output_format", ["text", "concise", "json", "sarif", "github", "gitlab", "junit"])
def test_names_that_are_not_utf8_survive_every_format(tmp_path, output_format):
    path = os.path.join(os.fsencode(tmp_path), ODD_NAME)
    with open(path, "wb") as handle:
        handle.write(LEAK)
    shown = "caf\\xe9_\\xff.py"
    for to_file in (False, True):
        args = ["--isolated", "--no-cache", "--output-format", output_format, "."] + (["-o", "report.out"] if to_file else [])
        completed = subprocess.run(command(*args), cwd=tmp_path, capture_output=True, env=environment())
        assert completed.returncode == 1, completed.stderr
        assert b"Traceback" not in completed.stderr
        text = (tmp_path / "report.out").read_bytes() if to_file else completed.stdout
        decoded = text.decode("utf-8")  # valid UTF-8 whatever the name
        if output_format in ("json", "sarif", "gitlab"):
            json.loads(decoded)
        if output_format == "junit":
            from xml.etree import ElementTree

            ElementTree.fromstring(text)
        # SARIF's URIs percent-encode the name's bytes; the other formats show them escaped.
        assert ("caf%E9_%FF.py" if output_format == "sarif" else shown) in decoded.replace("\\\\", "\\")
        if to_file:
            os.unlink(tmp_path / "report.out")


def test_a_path_given_twice_is_linted_once(tmp_path):
    (tmp_path / "a.py").write_bytes(LEAK)
    completed = subprocess.run(command("-q", "--isolated", "--no-cache", "a.py", str(tmp_path / "a.py"), "./a.py", "."), cwd=tmp_path, capture_output=True, text=True, env=environment())
    assert completed.returncode == 1 and completed.stderr == ""
    assert completed.stdout == "a.py:5:10: SL001 [*] session `db` is never closed\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_holds_in_every_repository_of_a_run(tmp_path):
    for name in ("one", "two"):
        repo = tmp_path / name
        (repo / "generated").mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        (repo / ".gitignore").write_text("generated/\n")
        (repo / "app.py").write_bytes(LEAK)
        (repo / "generated" / "out.py").write_bytes(LEAK)
    completed = subprocess.run(command("-q", "--isolated", "--no-cache", "one", "two"), cwd=tmp_path, capture_output=True, text=True, env=environment())
    assert sorted(completed.stdout.splitlines()) == [
        "one/app.py:5:10: SL001 [*] session `db` is never closed",
        "two/app.py:5:10: SL001 [*] session `db` is never closed",
    ]
    before = (tmp_path / "two" / "generated" / "out.py").read_bytes()
    subprocess.run(command("-q", "--isolated", "--no-cache", "--fix", "one", "two"), cwd=tmp_path, capture_output=True, env=environment())
    assert (tmp_path / "two" / "generated" / "out.py").read_bytes() == before  # an ignored file is never rewritten
    assert (tmp_path / "two" / "app.py").read_bytes() == FIXED


# --- --fix and the file system --------------------------------------------------------------


def fix(cwd, *paths):
    return subprocess.run(command("-q", "--isolated", "--no-cache", "--fix", *paths), cwd=cwd, capture_output=True, text=True, env=environment())


def test_fix_writes_through_a_symlink(tmp_path):
    (tmp_path / "real.py").write_bytes(LEAK)
    (tmp_path / "link.py").symlink_to(tmp_path / "real.py")
    completed = fix(tmp_path, "link.py")
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "link.py").is_symlink()
    assert (tmp_path / "real.py").read_bytes() == FIXED


def test_fix_keeps_hard_links(tmp_path):
    (tmp_path / "a.py").write_bytes(LEAK)
    os.link(tmp_path / "a.py", tmp_path / "b.py")
    completed = fix(tmp_path, "a.py")
    assert completed.returncode == 0, completed.stderr
    assert os.stat(tmp_path / "a.py").st_ino == os.stat(tmp_path / "b.py").st_ino
    assert (tmp_path / "b.py").read_bytes() == FIXED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to give a file to another owner")
def test_fix_keeps_owner_and_group_as_root(tmp_path):
    target = tmp_path / "a.py"
    target.write_bytes(LEAK)
    os.chown(target, 12345, 23456)
    os.chmod(target, 0o640)
    assert fix(tmp_path, "a.py").returncode == 0
    status = os.stat(target)
    assert (status.st_uid, status.st_gid, status.st_mode & 0o777) == (12345, 23456, 0o640)
    assert target.read_bytes() == FIXED


def test_fix_keeps_extended_attributes(tmp_path):
    target = tmp_path / "a.py"
    target.write_bytes(LEAK)
    try:
        os.setxattr(target, "user.sessionlint-test", b"kept")
    except (OSError, AttributeError):
        pytest.skip("no user extended attributes on this file system")
    assert fix(tmp_path, "a.py").returncode == 0
    assert os.getxattr(target, "user.sessionlint-test") == b"kept"
    assert target.read_bytes() == FIXED


def test_an_edit_in_place_during_the_write_is_never_lost(tmp_path, monkeypatch):
    """The window the digest check alone left open: an editor writes into the file between
    the last check and the replace. The edit is kept, the fix is not written."""
    from sessionlint.fixes import files

    target = tmp_path / "a.py"
    target.write_bytes(LEAK)
    real_replace = os.replace

    def edit_then_replace(source, destination):
        if str(destination) == str(target):
            with open(target, "r+b") as handle:  # in place: same inode
                handle.seek(0, os.SEEK_END)
                handle.write(b"# typed meanwhile\n")
        return real_replace(source, destination)

    monkeypatch.setattr(files.os, "replace", edit_then_replace)
    with pytest.raises(files.WriteError, match="changed on disk"):
        files.write_fixed(str(target), FIXED, files.digest(LEAK))
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert target.read_bytes() == LEAK + b"# typed meanwhile\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_a_replacement_by_an_editor_during_the_write_is_never_lost(tmp_path, monkeypatch):
    """An editor that saves through its own rename between the read and the write: the
    check before the replace sees another inode and writes nothing."""
    from sessionlint.fixes import files

    target = tmp_path / "a.py"
    target.write_bytes(LEAK)
    real_fsync = os.fsync

    def fsync_then_editor_saves(fd):
        real_fsync(fd)
        (tmp_path / "editor.tmp").write_bytes(LEAK + b"# saved by the editor\n")
        os.rename(tmp_path / "editor.tmp", target)

    monkeypatch.setattr(files.os, "fsync", fsync_then_editor_saves)
    with pytest.raises(files.WriteError, match="changed on disk"):
        files.write_fixed(str(target), FIXED, files.digest(LEAK))
    assert target.read_bytes() == LEAK + b"# saved by the editor\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_concurrent_edits_during_fix_are_never_lost(tmp_path):
    """A user typing while `--fix` runs over many files: every file ends as the user's last
    version or as the fix of the version the fix read, never as an older version."""
    big_tree(tmp_path, 120)
    names = sorted(p.name for p in tmp_path.glob("m*.py"))
    run = subprocess.Popen(command(".", "--isolated", "--no-cache", "--fix", "-q", "-j", "1"), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment())
    edits = {}
    rng = random.Random(3)
    while run.poll() is None:
        name = rng.choice(names)
        data = (tmp_path / name).read_bytes() + b"# edit %d\n" % len(edits)
        with open(tmp_path / name, "r+b") as handle:
            handle.write(data)
            handle.truncate()
        edits[name] = data
        time.sleep(0.002)
    run.wait()
    for name, data in edits.items():
        now = (tmp_path / name).read_bytes()
        assert now == data or (b"# edit" in now and now.count(b"# edit") == data.count(b"# edit") and now.startswith(FIXED[:60])), name


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_fix_leaves_whole_files_and_the_next_run_no_temporaries(tmp_path, signal_number):
    """Seeded interrupts during `--fix`: every file is the original or the fixed version and
    compiles; after the next run no temporary file is left."""
    rng = random.Random(int(signal_number))
    names = [f"m{i:03d}.py" for i in range(300)]
    for trial in range(8):
        for name in names:
            (tmp_path / name).write_bytes(LEAK)
        run = subprocess.Popen(
            command(".", "--fix", "--no-cache", "--isolated", "-q", "-j", "1"),
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment(), preexec_fn=interruptible,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        run.send_signal(signal_number)
        _, err = run.communicate(timeout=120)
        assert b"Traceback" not in err
        for name in names:
            data = (tmp_path / name).read_bytes()
            assert data in (LEAK, FIXED), (trial, name)
            compile(data, name, "exec")
        subprocess.run(command(".", "--no-cache", "--isolated", "-q", "--fix", "-o", "report.txt"), cwd=tmp_path, capture_output=True, env=environment())
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".sessionlint-tmp")]
        assert leftovers == [], (trial, leftovers)
        (tmp_path / "report.txt").unlink(missing_ok=True)


def test_a_killed_run_leaves_temporaries_the_next_run_removes(tmp_path):
    """What SIGKILL or a full disk can leave: the temporaries of a report, a baseline and a
    fixed file, named with the pid of a process that is gone."""
    (tmp_path / "a.py").write_bytes(LEAK)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = [f".report.txt.{gone}.abc{TMP}", f".base.json.{gone}.def{TMP}", f".a.py.{gone}.ghi{TMP}"]
    for name in stale:
        (tmp_path / name).write_bytes(b"partial")
    mine = f".a.py.{os.getpid()}.jkl{TMP}"  # a live process's: kept
    (tmp_path / mine).write_bytes(b"in progress")
    completed = subprocess.run(command("--isolated", "--no-cache", "--write-baseline", "base.json", "a.py"), cwd=tmp_path, capture_output=True, text=True, env=environment())
    assert completed.returncode == 0, completed.stderr
    completed = subprocess.run(command("--isolated", "--no-cache", "--fix", "-o", "report.txt", "a.py"), cwd=tmp_path, capture_output=True, text=True, env=environment())
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.py", "base.json", "report.txt", mine])
    assert (tmp_path / "a.py").read_bytes() == FIXED


TMP = ".sessionlint-tmp"
