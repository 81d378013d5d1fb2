import os

# An unknown shape means silence in production, but a raise under test (STYLE.md).
os.environ["SESSIONLINT_STRICT"] = "1"
os.environ["NO_COLOR"] = "1"
