import libcst as cst

from sessionlint.analysis.collector import LifecycleCollector
from sessionlint.analysis.facts import Handoff
from sessionlint.diagnostics import Confidence, FixAvailability
from sessionlint.rules.base import Invalid, Rule, Valid


class SessionEscapesScope(Rule):
    """## What it does
    Finds a session that belongs to a scope, a `with` block or a request dependency, handed
    to something that runs after that scope ends or beside it: `BackgroundTasks.add_task`,
    `threading.Thread`, `asyncio.create_task`/`ensure_future`, `loop.run_in_executor`,
    an executor's `submit`, anyio's `start_soon`, a Celery `delay`/`apply_async`, the
    generator that makes a `StreamingResponse`'s (or `EventSourceResponse`'s) body; or stored
    where it outlives the scope: a module-level container (`CACHE[key] = db`), a `global`
    name, a class attribute (`Registry.current = db`).

    ## Why is this bad?
    The `with` block (or the dependency's exit code) closes the session while the task or the
    thread still holds it, and a Session is not safe to share between threads or concurrent
    tasks. The result is `DetachedInstanceError`, use of a closed session, or two threads
    interleaving on one connection.

    FastAPI's timing matters for sessions from a dependency with `yield` handed to
    `background_tasks.add_task`: before 0.106.0 the dependency's exit code ran after the
    background tasks, so the session was still open there; from 0.106.0 to 0.117.x it ran
    before the response was sent, closing the session under the background task; from 0.118.0
    it runs after the response again; `Depends(..., scope="function")` (0.121.0+) exits before
    the response. The rule reads the FastAPI version from the project's lock file (uv.lock,
    poetry.lock, pdm.lock, Pipfile.lock) or the range its pyproject.toml or requirements files
    allow: when every allowed version closes the session first, the finding says so; otherwise
    it says that the request's session stays open, its connection checked out, until the task
    ends, and is used after the response (medium confidence: the FastAPI documentation asks
    background tasks to open their own sessions). Sessions from a `with` block, threads, tasks
    and executors are reported always (they run beside the request, which keeps using and then
    closes the session).

    A streaming response's body runs while the response is sent, after the handler returned.
    A `with` block in the handler has closed its session by then. A request dependency's
    session is closed first on FastAPI 0.106.0 to 0.117.x and with `scope="function"`; the
    finding says which when the project's versions tell, is medium confidence when they allow
    both, and is not made when every allowed version waits for the stream (before 0.106.0,
    from 0.118.0).

    ## Example
    ```python
    @router.post("/orders/{order_id}/receipt")
    def resend(order_id: int, background_tasks: BackgroundTasks):
        with SessionLocal() as db:
            background_tasks.add_task(send_receipt, db, order_id)
    ```

    Use instead:
    ```python
    @router.post("/orders/{order_id}/receipt")
    def resend(order_id: int, background_tasks: BackgroundTasks):
        background_tasks.add_task(send_receipt, order_id)  # opens its own session
    ```

    Sessions the function only borrows are followed too: a parameter known to hold a session
    (annotated, or named so in a function that uses it as one) and `self.session`/`self.db`:
    their owner closes them when its own work ends, not when the task does.

    ## Known limitations
    - Sessions created by a `with` in the same function, injected with `Depends(...)` (or an
      `Annotated[Session, Depends(...)]` alias), parameters known to hold a session and
      `self.<session>` attributes are followed; other stores are not.
    - Stores are recognised on module-level names and classes of the same module; `self.db`,
      `request.state.db` and local containers live as long as the request and are not reported.

    ## References
    - FastAPI, "Dependencies with yield and background tasks":
      https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
    - FastAPI 0.106.0 and 0.118.0 release notes: https://fastapi.tiangolo.com/release-notes/
    - SQLAlchemy, "Is the Session thread-safe?":
      https://docs.sqlalchemy.org/en/20/orm/session_basics.html#is-the-session-thread-safe-is-asyncsession-safe-to-share-in-concurrent-tasks
    """

    code = "SL008"
    name = "session-escapes-scope"
    summary = "Session handed to a background task, thread or task that outlives its scope"
    fix_availability = FixAvailability.NONE
    METADATA_DEPENDENCIES = (LifecycleCollector,)
    TRIGGERS = ("handoff",)
    examples = (
        Valid(
            "@router.post('/receipt')\n"
            "def resend(order_id: int, background_tasks: BackgroundTasks):\n"
            "    background_tasks.add_task(send_receipt, order_id)\n",
            name="task_opens_its_own_session",
        ),
        Invalid(
            "@router.post('/receipt')\n"
            "def resend(order_id: int, background_tasks: BackgroundTasks):\n"
            "    with SessionLocal() as db:\n"
            "        background_tasks.add_task(send_receipt, db, order_id)\n",
            name="with_session_to_background_task",
            expect=[("SL008", 4, 9)],
        ),
    )

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        facts = self.context.lifecycle.facts_for(node)
        if facts is None:
            return
        for handoff in facts.handoffs:
            owner = "its `with` block" if handoff.by_with else "the request"
            if handoff.borrowed:
                owner = "the object's owner" if handoff.name.startswith("self.") else "the caller"
            if handoff.is_store:
                self.report(
                    handoff.call,
                    f"session `{handoff.name}` is stored in a {handoff.sink}, which keeps it after "
                    f"{owner} closes it and shares it with every later request",
                    help="Store ids or values, or the session factory; open a session per unit of work",
                )
                continue
            if handoff.sink == "streaming response":
                self._report_stream(handoff)
                continue
            if handoff.closed_first:
                self.report(
                    handoff.call,
                    f"session `{handoff.name}` is closed by the request before the background task "
                    f"runs: FastAPI {handoff.closed_first} ends `yield` dependencies before background tasks",
                    help="Pass ids or values and open a new session inside the background task",
                )
                continue
            if handoff.closed_first is not None:
                self.report(
                    handoff.call,
                    f"session `{handoff.name}` of the request is handed to a background task: it stays "
                    f"open, holding its connection, until the task ends after the response (FastAPI "
                    f"0.106-0.117 closes it before the task runs)",
                    help="Pass ids or values and open a new session inside the background task",
                    confidence=Confidence.MEDIUM,
                )
                continue
            self.report(
                handoff.call,
                f"session `{handoff.name}` is handed to {'an' if handoff.sink[:1] in 'aeiou' else 'a'} {handoff.sink} that runs after {owner} "
                f"closes it, or beside it",
                help=f"Pass ids or values and open a new session inside the {handoff.sink}",
            )

    def _report_stream(self, handoff: Handoff) -> None:
        help = "Read what the stream needs before returning, or open a session inside the generator"
        if handoff.by_with:
            message = f"session `{handoff.name}` is used by a streaming response's body, which runs after its `with` block closes it"
        elif handoff.closed_first:
            why = (
                'its dependency has `scope="function"`, which ends it when the handler returns'
                if handoff.closed_first.startswith("scope")
                else f"FastAPI {handoff.closed_first} ends `yield` dependencies before the response is sent"
            )
            message = f"session `{handoff.name}` is closed by the request before the streaming response's body runs: {why}"
        else:
            self.report(
                handoff.call,
                f"session `{handoff.name}` of the request is used by a streaming response's body, which runs after the "
                f"handler returned: FastAPI 0.106-0.117 ends `yield` dependencies before the response is sent",
                help=help,
                confidence=Confidence.MEDIUM,
            )
            return
        self.report(handoff.call, message, help=help)
