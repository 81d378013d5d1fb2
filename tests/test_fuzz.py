"""Property-based tests: linting any program neither raises nor hangs (SESSIONLINT_STRICT is
on, so an unknown shape in the analysis raises too), and `--fix --unsafe-fixes` of any
program made of session idioms compiles and is idempotent.

A bounded number of examples runs in CI; `SESSIONLINT_FUZZ_EXAMPLES=5000 pytest
tests/test_fuzz.py` is the long-running mode."""

import os
import textwrap

import pytest

hypothesis = pytest.importorskip("hypothesis")
from helpers import fix_bytes, lint_text  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("SESSIONLINT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize="CI" in os.environ)

# --- any valid program ------------------------------------------------------------------------


def _generated_programs():
    hypothesmith = pytest.importorskip("hypothesmith")
    return hypothesmith.from_grammar()


@FUZZ
@given(source=st.deferred(_generated_programs))
def test_linting_any_program_does_not_raise(source):
    lint_text(source)


# --- programs made of session idioms ---------------------------------------------------------

SIMPLE = [
    "db = SessionLocal()",
    "db = Session(engine)",
    "db.execute('select 1')",
    "db.add(item)",
    "db.commit()",
    "db.rollback()",
    "db.close()",
    "item = db.get(User, 1)",
    "conn = engine.connect()",
    "conn.exec_driver_sql('select 1')",
    "conn.close()",
    "helper(db)",
    "log('x')",
    "return None",
    "return db",
    "return item",
    "continue",
    "raise ValueError('x')",
]
ASYNC_SIMPLE = SIMPLE + ["await db.commit()", "db.commit()", "session = async_session_maker()", "await session.close()", "session.close()"]
BLOCKS = [
    "if flag:",
    "for item in items:",
    "try:",
    "with SessionLocal() as db:",
    "with engine.connect() as conn:",
    "while flag:",
]


@st.composite
def _block(draw, depth, simple):
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            header = draw(st.sampled_from(BLOCKS))
            body = draw(_block(depth + 1, simple))
            lines.append(header)
            lines.extend("    " + line for line in body)
            if header == "try:":
                handler = draw(st.sampled_from(["except Exception:", "except IntegrityError:", "finally:"]))
                lines.append(handler)
                lines.extend("    " + line for line in draw(_block(depth + 1, simple)))
        else:
            lines.append(draw(st.sampled_from(simple)))
    return lines


@st.composite
def _program(draw):
    is_async = draw(st.booleans())
    body = draw(_block(0, ASYNC_SIMPLE if is_async else SIMPLE))
    keyword = "async def" if is_async else "def"
    decorator = draw(st.sampled_from(["", "@router.get('/x')\n", "@contextmanager\n", "@pytest.fixture\n"]))
    function = f"{decorator}{keyword} handler(flag, items, item=None):\n" + textwrap.indent("\n".join(body), "    ") + "\n"
    if "for item" not in function and "continue" in function:
        function = function.replace("continue", "pass")
    prelude = (
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.orm import Session, sessionmaker\n"
        "from sqlalchemy.ext.asyncio import async_sessionmaker\n\n"
        "engine = create_engine('sqlite://')\n"
        "SessionLocal = sessionmaker(bind=engine)\n"
        "async_session_maker = async_sessionmaker()\n\n\n"
    )
    return prelude + function


def _compiles(source: bytes) -> bool:
    try:
        compile(source, "fuzz.py", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


@FUZZ
@given(source=_program())
def test_fixing_session_programs_compiles_and_is_idempotent(source):
    data = source.encode()
    if not _compiles(data):  # e.g. `continue` outside a loop, `await` in a plain def
        return
    lint_text(source)
    first = fix_bytes(data, "fuzz.py", unsafe=True)
    assert first.problem is None, first.problem
    assert _compiles(first.source), first.source.decode()
    second = fix_bytes(first.source, "fuzz.py", unsafe=True)
    assert second.source == first.source, "a second --fix changed the file again"
