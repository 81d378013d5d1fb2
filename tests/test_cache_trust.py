"""The result cache is untrusted input: whatever lies under its names (a pickle payload, random
bytes, valid data of the wrong shape, a link elsewhere, damage of any kind) never runs code,
never changes a finding and never ends in a traceback; concurrent runs never corrupt it."""

import json
import os
import pickle
import random
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import sessionlint.cache as cache_module
import sessionlint.runner as engine
from sessionlint.cache import Cache, decode_file, encode_file
from sessionlint.cli import main
from sessionlint.config import Settings

DATABASE = """
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
Maker = sessionmaker(bind=engine)


def reporting_engine(url):
    return create_engine(url)
"""

# a building function called per request from another module: the `calls` table
HANDLERS = """
from flask import Flask
from sqlalchemy import create_engine

from app.database import reporting_engine

app = Flask(__name__)


@app.route("/report")
def report():
    with reporting_engine("sqlite://").connect() as connection:
        return connection.exec_driver_sql("select 1").scalar()


def audit_engine():
    return create_engine("sqlite://")


@app.route("/audit")
def audit():
    with audit_engine().connect() as connection:
        return connection.exec_driver_sql("select 1").scalar()
"""

ROUTES = """
from app.database import Maker


def leak():
    db = Maker()
    db.execute("select 1")


def fine():
    with Maker() as db:
        db.execute("select 1")


async def unawaited(session):
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession() as s:
        s.commit()
"""

EXPECTED = [("handlers.py", 12, 10, "SL004"), ("handlers.py", 22, 10, "SL004"), ("routes.py", 6, 10, "SL001"), ("routes.py", 19, 9, "SL006")]
CACHE_NAMES = ("results.json", "project.json", "results.pickle", "project.pickle", "CACHEDIR.TAG", ".gitignore")


def write_project(root):
    app = root / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "database.py").write_text(DATABASE)
    (app / "routes.py").write_text(ROUTES)
    (app / "handlers.py").write_text(HANDLERS)
    return app


def findings(run):
    return [(os.path.basename(d.path), d.start.line, d.start.column, d.code) for d in run.diagnostics]


class Payload:
    """Unpickling this writes a file: the proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def invoke(args):
    runner = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {}))
    result = runner.invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def hostile_contents(tmp_path, marker):
    """Name -> a function that plants something hostile under that name in a cache dir."""
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(b"not a cache")

    def pickle_payload(path):
        path.write_bytes(pickle.dumps({"format": 5, "files": Payload(marker)}))

    def random_bytes(path):
        path.write_bytes(random.Random(7).randbytes(4096))

    def wrong_shape(path):
        # A header of this format and version with a correct checksum over a body of the wrong
        # shape: only the per-entry checks catch it.
        body = json.dumps({"files": {"app/routes.py": ["key", "digest", {"path": 1}]}}).encode()
        header = {
            "format": cache_module._FORMAT,
            "version": cache_module._header_version(),
            "length": len(body),
            "checksum": cache_module._checksum(body),
        }
        path.write_bytes(json.dumps(header).encode() + b"\n" + body)

    def symlink(path):
        path.symlink_to(elsewhere)

    def fifo(path):
        os.mkfifo(path)

    def huge_header(path):
        path.write_bytes(b"[" * 200_000 + b"\n")

    def directory(path):
        path.mkdir()

    return {
        "pickle": pickle_payload,
        "random": random_bytes,
        "wrong-shape": wrong_shape,
        "symlink": symlink,
        "fifo": fifo,
        "deep-json": huge_header,
        "directory": directory,
    }


@pytest.mark.parametrize("kind", ["pickle", "random", "wrong-shape", "symlink", "fifo", "deep-json", "directory"])
def test_hostile_files_under_every_cache_name_run_nothing_and_change_nothing(tmp_path, monkeypatch, kind):
    app = write_project(tmp_path)
    marker = tmp_path / "pwned"
    cache_dir = tmp_path / "project-cache"
    cache_dir.mkdir()
    plant = hostile_contents(tmp_path, marker)[kind]
    for name in CACHE_NAMES:
        plant(cache_dir / name)
    monkeypatch.setenv("SESSIONLINT_CACHE_DIR", str(cache_dir))
    for _ in range(2):  # the second run reads whatever the first one wrote
        code, out, err = invoke([str(app), "--output-format", "json", "-j", "1"])
        assert code == 1
        found = [(os.path.basename(d["path"]), d["location"]["line"], d["location"]["column"], d["code"]) for d in json.loads(out)["diagnostics"]]
        assert found == EXPECTED
        assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    assert not marker.exists()


def test_a_pickle_payload_in_a_committed_cache_never_runs_in_a_real_process(tmp_path):
    """The proof of concept of the report: a repository that commits `.sessionlint_cache/`
    with a pickle payload, linted by a plain `sessionlint -q .`."""
    app = write_project(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.sessionlint]\n")
    marker = tmp_path / "pwned"
    committed = tmp_path / ".sessionlint_cache"
    committed.mkdir()
    for name in CACHE_NAMES[:4]:
        (committed / name).write_bytes(pickle.dumps({"format": 5, "files": Payload(marker)}))
    environment = {k: v for k, v in os.environ.items() if k != "SESSIONLINT_CACHE_DIR"}
    completed = subprocess.run(
        [sys.executable, "-m", "sessionlint", "-q", "."], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 1, completed.stderr
    assert not marker.exists()
    assert "Traceback" not in completed.stderr
    assert sorted(line.split(":")[0] for line in completed.stdout.splitlines() if ": SL" in line) == ["app/handlers.py", "app/handlers.py", "app/routes.py", "app/routes.py"]
    assert app.exists()


def test_cache_of_another_version_is_replaced_silently(tmp_path, monkeypatch):
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    assert findings(engine.run([str(app)], settings)) == EXPECTED
    monkeypatch.setattr(cache_module, "_header_version", lambda: ["9.9.9", "other"])
    run = engine.run([str(app)], settings)
    assert findings(run) == EXPECTED and run.warnings == []
    data = (tmp_path / "cache" / "results.json").read_bytes()
    assert json.loads(data.partition(b"\n")[0])["version"] == ["9.9.9", "other"]


def test_round_trip_keeps_every_table_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "RACY_NS", 0)  # record the files' status too
    app = write_project(tmp_path)
    settings = Settings(cache_dir=str(tmp_path / "cache"), jobs=1)
    engine.run([str(app)], settings)
    loaded = Cache.open(str(tmp_path / "cache"))
    assert loaded.unread == "project.json" and loaded.scans == {}  # read when first asked
    loaded.load_project_tables()
    assert loaded.problem is None and loaded.files and loaded.stamps and loaded.states and loaded.scans and loaded.texts and loaded.calls and loaded.requests
    for name, tables in cache_module._FILES.items():
        stored = {table: getattr(loaded, table) for table in tables}
        assert decode_file(encode_file(stored), tables) == stored


def damage(data, rng):
    """One random change to the bytes of a cache file."""
    choice = rng.randrange(4)
    if choice == 0 and data:  # flip one bit
        position = rng.randrange(len(data))
        return data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) + data[position + 1 :]
    if choice == 1:  # truncate
        return data[: rng.randrange(len(data) + 1)]
    if choice == 2 and data:  # replace one byte
        position = rng.randrange(len(data))
        return data[:position] + bytes([rng.randrange(256)]) + data[position + 1 :]
    return rng.randbytes(rng.randrange(1, 64)) + data[rng.randrange(len(data) + 1) :]  # garbage in front


def test_fault_injection_never_changes_findings(tmp_path):
    """300 seeded trials: one cache file flipped, truncated or replaced; the findings are
    those of a cold run every time, with at most one warning and no exception. project.json
    is read only when the project's files changed since the cache knew them (a warm run
    needs results.json alone), so a trial that damages it also edits a file (a comment at
    its end)."""
    app = write_project(tmp_path)
    pristine = tmp_path / "pristine"
    settings = Settings(cache_dir=str(pristine), jobs=1)
    assert findings(engine.run([str(app)], settings)) == EXPECTED
    names = ["results.json", "project.json"]
    originals = {name: (pristine / name).read_bytes() for name in names}
    rng = random.Random(20261207)
    trial_dir = tmp_path / "trial"
    damaged_runs = 0
    for _ in range(300):
        shutil.rmtree(trial_dir, ignore_errors=True)
        shutil.copytree(pristine, trial_dir)
        name = rng.choice(names)
        broken = damage(originals[name], rng)
        (trial_dir / name).write_bytes(broken)
        edited = "\n# trial %d\n" % damaged_runs if name == "project.json" else ""
        (app / "database.py").write_text(DATABASE + edited)
        run = engine.run([str(app)], Settings(cache_dir=str(trial_dir), jobs=1))
        assert findings(run) == EXPECTED
        assert len(run.warnings) <= 1
        damaged_runs += bool(run.warnings)
    assert damaged_runs > 200  # nearly every change is noticed (a few land on equal bytes)


def test_concurrent_runs_never_corrupt_the_cache(tmp_path):
    """Three runs at once on one tree and one cache, four times over (a pre-commit hook and an
    editor): each gives the findings of a single run, and the cache is whole after."""
    app = write_project(tmp_path)
    for i in range(40):
        (app / f"extra_{i}.py").write_text(ROUTES.replace("def leak", f"def leak_{i}"))
    cache_dir = tmp_path / "cache"
    environment = dict(os.environ, SESSIONLINT_CACHE_DIR=str(cache_dir))
    single = subprocess.run(
        [sys.executable, "-m", "sessionlint", "-q", "--no-cache", str(app)], env=environment, capture_output=True, text=True, timeout=120
    )
    for round_number in range(4):
        if round_number == 2:
            (app / "extra_0.py").write_text(ROUTES + "\n# edited\n")
            single = subprocess.run(
                [sys.executable, "-m", "sessionlint", "-q", "--no-cache", str(app)], env=environment, capture_output=True, text=True, timeout=120
            )
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "sessionlint", "-q", "-j", str(1 + i % 2), str(app)],
                env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for i in range(3)
        ]
        for run in runs:
            out, err = run.communicate(timeout=120)
            assert run.returncode == 1 and err == ""
            assert out == single.stdout
    for name, tables in cache_module._FILES.items():
        assert decode_file((cache_dir / name).read_bytes(), tables) is not None
    assert not [n for n in os.listdir(cache_dir) if n.endswith(".sessionlint-tmp")]


def test_a_cache_directory_that_is_a_link_is_neither_read_nor_written(tmp_path, monkeypatch):
    app = write_project(tmp_path)
    target = tmp_path / "somewhere-else"
    target.mkdir()
    (tmp_path / "linked-cache").symlink_to(target)
    monkeypatch.setenv("SESSIONLINT_CACHE_DIR", str(tmp_path / "linked-cache"))
    code, out, err = invoke([str(app), "-q", "-j", "1"])
    assert code == 1 and len(out.splitlines()) == len(EXPECTED)
    assert err == f"sessionlint: warning: the cache directory {tmp_path / 'linked-cache'} is a symbolic link; it is not used\n"
    assert os.listdir(target) == []
