"""All rules, explicit and sorted by code. Importing this module imports libcst: the CLI
reaches it only when it lints or explains; `--list-rules` reads `registry.RULES`."""

from typing import Tuple

from sessionlint.rules.base import RuleClass
from sessionlint.rules.session_not_closed import SessionNotClosed

ALL_RULES: Tuple[RuleClass, ...] = (SessionNotClosed,)
