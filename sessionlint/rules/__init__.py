"""All rules, explicit and sorted by code. Importing this module imports libcst: the CLI
reaches it only when it lints or explains; `--list-rules` reads `registry.RULES`."""

from typing import Tuple

from sessionlint.rules.async_not_awaited import AsyncNotAwaited
from sessionlint.rules.base import RuleClass
from sessionlint.rules.close_not_in_finally import CloseNotInFinally
from sessionlint.rules.connection_not_closed import ConnectionNotClosed
from sessionlint.rules.engine_per_request import EnginePerRequest
from sessionlint.rules.missing_rollback import MissingRollback
from sessionlint.rules.module_level_session import ModuleLevelSession
from sessionlint.rules.session_escapes_scope import SessionEscapesScope
from sessionlint.rules.session_not_closed import SessionNotClosed
from sessionlint.rules.sessionmaker_per_request import SessionmakerPerRequest
from sessionlint.rules.use_after_close import UseAfterClose

ALL_RULES: Tuple[RuleClass, ...] = (
    SessionNotClosed,
    CloseNotInFinally,
    UseAfterClose,
    EnginePerRequest,
    SessionmakerPerRequest,
    AsyncNotAwaited,
    MissingRollback,
    SessionEscapesScope,
    ModuleLevelSession,
    ConnectionNotClosed,
)
