"""The recall measurement's bug planting (scripts/mutations.py) plants only real bugs."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
mutations = pytest.importorskip("mutations")

SOURCE = b'''\
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class Store:
    def __init__(self, engine):
        self.Registry: scoped_session = scoped_session(sessionmaker(bind=engine))
        self.Maker = sessionmaker(bind=engine)

    def from_registry(self):
        with self.Registry() as sess:
            sess.commit()

    def from_maker(self):
        with self.Maker() as sess:
            sess.commit()

    def returns_inside_nested_with(self):
        with self.Maker() as sess:
            with sess.begin():
                return sess.get(int, 1)

    def returns_from_every_handler(self):
        with self.Maker() as sess:
            try:
                return sess.get(int, 1)
            except KeyError:
                return None

    def may_fall_through(self, flag):
        with self.Maker() as sess:
            if flag:
                return None
            sess.commit()
'''


def sites(operator):
    return [index for name, index in mutations.find_sites(SOURCE, {"sessionmaker", "Maker"}) if name == operator]


def mutated_lines(operator, index):
    before = SOURCE.decode().splitlines()
    after = mutations.make_mutant(SOURCE, operator, index, {"sessionmaker", "Maker"}).decode().splitlines()
    return [line.strip() for line in after if line not in before]


def test_with_to_assignment_skips_a_scoped_session_registry():
    planted = [mutated_lines("SL001 with-to-assignment", i)[0] for i in sites("SL001 with-to-assignment")]
    assert planted == ["sess = self.Maker()"] * 4


def test_use_after_with_needs_a_with_block_that_can_complete():
    # from_maker and may_fall_through: the nested `with` returning, and a `try` returning
    # from body and handler, leave the code after the block unreachable.
    assert len(sites("SL003 use-after-with")) == 2
    assert mutated_lines("SL003 use-after-with", 1) == ["sess.commit()"]


def test_an_async_connection_is_awaited_when_its_with_is_dropped():
    source = b"""\
async def ping(engine):
    async with engine.connect() as conn:
        await conn.execute("select 1")
"""
    (operator, index), = [(o, i) for o, i in mutations.find_sites(source, set()) if o.startswith("SL010")]
    mutated = mutations.make_mutant(source, operator, index, set()).decode()
    assert "    conn = await engine.connect()\n    await conn.execute" in mutated


def test_with_to_assignment_skips_a_block_that_closes_in_finally():
    source = b"""\
def get_db(session_maker):
    with session_maker() as session:
        try:
            yield session
        finally:
            session.close()
"""
    assert [o for o, _ in mutations.find_sites(source, {"session_maker"}) if o.startswith("SL001")] == []
