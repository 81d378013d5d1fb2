import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector
from sessionlint.analysis.facts import Holding
from sessionlint.diagnostics import FixAvailability
from sessionlint.knowledge import SESSION_CONTEXT_MANAGER_SINCE
from sessionlint.rules.base import Invalid, Rule, Valid


class ModuleLevelSession(Rule):
    """## What it does
    Finds a session (not a factory) created at import time, at module level or as a class
    attribute, that other code uses: a function or class of the module, or another linted
    module that imports it.

    ## Why is this bad?
    One Session is then shared by every request and every thread of the process. A Session
    is not thread-safe, keeps one transaction open across requests, grows its identity map
    without bound, and after one failed flush every request fails with
    `PendingRollbackError` until the process restarts.

    ## Example
    ```python
    db = SessionLocal()

    def get_user(user_id):
        return db.get(User, user_id)
    ```

    Use instead:
    ```python
    def get_user(user_id):
        with SessionLocal() as db:
            return db.get(User, user_id)
    ```

    Also finds a session made as the default value of a parameter (`def save(item,
    db=SessionLocal())`): Python evaluates it once, when the function is defined.

    ## Known limitations
    - A module-level session used only by the module's own top-level script code, or under
      `if __name__ == "__main__":`, is a script's session: SL001 checks that it is closed.
    - `scoped_session` registries are not sessions and are not reported.

    ## References
    - SQLAlchemy, "When do I construct a Session, when do I commit it, and when do I close
      it?": https://docs.sqlalchemy.org/en/20/orm/session_basics.html#session-faq-whentocreate
    """

    code = "SL009"
    name = "module-level-session"
    summary = "Session created at import time and shared by every request and thread"
    fix_availability = FixAvailability.NONE
    METADATA_DEPENDENCIES = (LifecycleCollector,)
    examples = (
        Valid("SessionLocal = sessionmaker(bind=engine)\n", name="module_level_factory"),
        Invalid(
            "db = SessionLocal()\n\n" "def get_user(user_id):\n" "    return db.get(User, user_id)\n",
            name="shared_session",
            expect=[("SL009", 1, 6)],
        ),
    )

    def leave_Module(self, node: cst.Module) -> None:
        facts = self.context.lifecycle.facts_for(node)
        if facts is not None:
            for index in sorted(facts.shared_sessions):
                creation = facts.creations[index]
                self.report(
                    creation.call,
                    f"session `{creation.name}` is created at import time and shared by every request and thread",
                    help="Create a session per unit of work (`with SessionLocal() as db:`), or share the factory"
                    if self.context.index.sqlalchemy.at_least(*SESSION_CONTEXT_MANAGER_SINCE)
                    else "Create a session per unit of work (closed in a `finally:`), or share the factory",
                )
        for scope in self.context.lifecycle.finished.values():
            for creation in scope.creations:
                if creation.default_of is not None and not creation.is_connection:
                    # Fixture: SL009/session_as_parameter_default.py
                    self.report(
                        creation.call,
                        f"session is the default of parameter `{creation.default_of}`: created once, when the "
                        f"function is defined, and shared by every call that omits it",
                        help=f"Default `{creation.default_of}` to None and open a session in the function when it is None",
                    )
            if not isinstance(scope.node, cst.ClassDef):
                continue
            for creation in scope.creations:
                if creation.holding is Holding.BOUND and not creation.is_connection:
                    self.report(
                        creation.call,
                        f"session `{creation.name}` is a class attribute, created at import time and "
                        f"shared by every instance",
                        help="Create the session in a method, per unit of work, or store the factory",
                    )
