"""sessionlint: find SQLAlchemy session misuse in Python code."""

__version__ = "0.1.0"
