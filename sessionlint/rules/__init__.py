"""All rules, explicit and sorted by code. Importing this module imports libcst: the CLI
reaches it only when it lints or explains; `--list-rules` reads `registry.RULES`."""

from typing import Tuple

from sessionlint.rules.async_not_awaited import AsyncNotAwaited
from sessionlint.rules.base import RuleClass
from sessionlint.rules.close_not_in_finally import CloseNotInFinally
from sessionlint.rules.connection_not_closed import ConnectionNotClosed
from sessionlint.rules.missing_rollback import MissingRollback
from sessionlint.rules.session_not_closed import SessionNotClosed
from sessionlint.rules.use_after_close import UseAfterClose

ALL_RULES: Tuple[RuleClass, ...] = (
    SessionNotClosed,
    CloseNotInFinally,
    UseAfterClose,
    AsyncNotAwaited,
    MissingRollback,
    ConnectionNotClosed,
)
