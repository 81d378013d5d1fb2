"""Effective settings of a run. `[tool.sessionlint]` discovery arrives with the
configuration issue; today the command line is the only source."""

from dataclasses import dataclass
from typing import Optional, Tuple


class ConfigError(Exception):
    """A bad setting: becomes one line on stderr and exit code 2."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        super().__init__(f"{source}: `{key}`: {problem}")
        self.key = key
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class Settings:
    select: Optional[Tuple[str, ...]] = None  # None: the default selection
    ignore: Tuple[str, ...] = ()
    session_factories: Tuple[str, ...] = ()  # extra names taken to be session factories
    prefilter: bool = True  # skip parsing files that cannot contain a finding
    jobs: int = 0  # worker processes; 0: one per core
    cache: bool = True
    cache_dir: str = ".sessionlint_cache"
