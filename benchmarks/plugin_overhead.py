"""What `pytest --sessionlint-leaks` costs: a generated suite of 300 tests on SQLAlchemy, run
with the flag and without it, alternating, and the medians of whole-process wall time.

    python benchmarks/plugin_overhead.py                 # 5 rounds, 300 tests
    python benchmarks/plugin_overhead.py --runs 9 --tests 600

The suite is what a web service's tests look like: a session-scoped engine on a sqlite file,
a function-scoped session fixture that closes after `yield`, each test running queries
through it; every third test also checks a connection out with `engine.connect()`, every
fifth uses a `sessionmaker` in a `with` block. Nothing leaks, so both runs pass and the
difference is the watching. On a shared machine wall times drift by a factor of two between
runs, so CPU time (user + system of the pytest process) is printed too, and the median of each
round's own ratio. A third column runs with the plugin not loaded at all
(`-p no:sessionlint`): what loading it costs a suite that does not enable it.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

CONFTEST = '''
import pytest
from sqlalchemy import Column, Integer, String, create_engine
from sqlalchemy.orm import Session, declarative_base, sessionmaker

Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String(50))


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('db')}/bench.db")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine):
    session = Session(engine)
    yield session
    session.rollback()
    session.close()
'''

TEST = '''
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from conftest import Item


def test_{n}(db, engine):
    db.add(Item(name="item {n}"))
    db.flush()
    assert db.scalars(select(Item).where(Item.name == "item {n}")).one().name == "item {n}"
    if {n} % 3 == 0:
        with engine.connect() as connection:
            assert connection.execute(text("select {n}")).scalar() == {n}
    if {n} % 5 == 0:
        with sessionmaker(engine)() as other:
            assert other.execute(text("select 1")).scalar() == 1
'''


def make_suite(directory: str, count: int) -> None:
    with open(os.path.join(directory, "conftest.py"), "w", encoding="utf-8") as handle:
        handle.write(CONFTEST)
    for n in range(count):
        with open(os.path.join(directory, f"test_{n:04d}.py"), "w", encoding="utf-8") as handle:
            handle.write(TEST.format(n=n))


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(directory: str, extra: List[str]) -> Tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of the suite."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    cpu = cpu_of_children()
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=directory, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")
    return elapsed, cpu_of_children() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds; each runs every variant once (default 5)")
    parser.add_argument("--tests", type=int, default=300, help="tests in the generated suite (default 300)")
    options = parser.parse_args()
    variants: Dict[str, List[str]] = {
        "without --sessionlint-leaks": [],
        "with --sessionlint-leaks": ["--sessionlint-leaks"],
        "plugin not loaded (-p no:sessionlint)": ["-p", "no:sessionlint"],
    }
    times: Dict[str, List[float]] = {name: [] for name in variants}
    cpu: Dict[str, List[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="sessionlint-plugin-bench-") as directory:
        make_suite(directory, options.tests)
        timed(directory, [])  # warm the file system cache and the bytecode
        for round_number in range(options.runs):
            order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
            for name in order:
                wall, used = timed(directory, variants[name])
                times[name].append(wall)
                cpu[name].append(used)
            print(f"round {round_number + 1}: " + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in variants), file=sys.stderr)
    print(f"{options.tests} tests, {options.runs} rounds, medians of the whole process (wall time, then CPU time: user + system):")
    for label, table in (("wall", times), ("cpu", cpu)):
        base = statistics.median(table["without --sessionlint-leaks"])
        for name, values in table.items():
            median = statistics.median(values)
            print(f"  {label} {name}: {median:.3f} s ({median / base:.3f}x; runs {', '.join(f'{v:.2f}' for v in values)})")
        # The rounds' own ratios: a busy machine slows both runs of a round alike.
        ratios = [with_flag / without for with_flag, without in zip(table["with --sessionlint-leaks"], table["without --sessionlint-leaks"])]
        print(f"  {label} median of the rounds' ratios with/without: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
