"""Sessions that outlive their scope: handed to a background task, thread, task or
executor, stored where the scope's end does not reach, or created at import time and shared.
(SL008 and SL009 read these.)"""

from typing import FrozenSet, List, Optional, Sequence, Set, Tuple

import libcst as cst

from sessionlint.analysis.facts import Handoff, Holding, ScopeFacts
from sessionlint.analysis.tree import dotted_name, iter_children, mentions_name, suite_statements, terminal_name, walk
from sessionlint.knowledge import CONVENTIONAL_SESSION_NAMES, HANDOFF_SINKS, STREAMING_RESPONSES, is_test_path
from sessionlint.project.model import ProjectIndex
from sessionlint.project.versions import VersionRange


def find_shared_sessions(facts: ScopeFacts, imported_names: FrozenSet[str]) -> Set[int]:
    """Module-level sessions created at import time (not under a `__main__` guard) that other
    code uses: a function or class of the module, or another module importing the name."""
    shared: Set[int] = set()
    module = facts.node
    nested = [s for s in getattr(module, "body", ()) if isinstance(s, (cst.FunctionDef, cst.ClassDef))]
    for index, creation in enumerate(facts.creations):
        name = creation.name
        if creation.holding is not Holding.BOUND or creation.in_main_guard or not name or creation.is_connection:
            continue
        if name in imported_names or any(mentions_name(scope, name) for scope in nested):
            shared.add(index)
    return shared


def never_removed_registries(module: cst.CSTNode, builds: List[cst.Call], index: ProjectIndex, path: str) -> List[Tuple[cst.Call, str]]:
    """Module-level `name = scoped_session(...)` registries that no file of the project
    removes or closes (`name.remove()`, `teardown(name.remove)`, through an import or a loop
    over them), in a project that serves requests or runs tasks: each thread's session stays
    open, holding its connection, after the request ends. Registries used by nothing, and
    those of tests, are left alone. Fixture: tests/fixtures/projects/registry_never_removed"""
    if not index.serves_requests or not isinstance(module, cst.Module) or is_test_path(path):
        return []
    wanted = {id(call) for call in builds if terminal_name(call.func) in ("scoped_session", "async_scoped_session")}
    if not wanted:
        return []
    found: List[Tuple[cst.Call, str]] = []
    nested = [s for s in module.body if isinstance(s, (cst.FunctionDef, cst.ClassDef))]
    for statement in _top_level(module.body):
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if not isinstance(small, cst.Assign) or id(small.value) not in wanted or len(small.targets) != 1:
                continue
            target = small.targets[0].target
            if not isinstance(target, cst.Name):
                continue
            name = target.value
            if (path, name) in index.released or name in index.released_names:
                continue
            if name in index.imported_names or any(mentions_name(scope, name) for scope in nested):
                assert isinstance(small.value, cst.Call)
                found.append((small.value, name))
    return found


def _top_level(body: Sequence[cst.CSTNode]) -> List[cst.CSTNode]:
    """Module-level statements, looking into `if`/`try` blocks (fallbacks), not `__main__`."""
    found: List[cst.CSTNode] = []
    for statement in body:
        if isinstance(statement, cst.If):
            test = statement.test
            if isinstance(test, cst.Comparison) and terminal_name(test.left) == "__name__":
                continue
            found.extend(_top_level(suite_statements(statement.body)))
            if isinstance(statement.orelse, cst.Else):
                found.extend(_top_level(suite_statements(statement.orelse.body)))
        elif isinstance(statement, cst.Try):
            found.extend(_top_level(suite_statements(statement.body)))
        else:
            found.append(statement)
    return found


def find_handoffs(facts: ScopeFacts, fastapi: Optional[VersionRange] = None, mentions_sqlalchemy: bool = True) -> List[Handoff]:
    """Sessions of a `with` block or of a request dependency handed to a background task, a
    thread, a task or an executor: they run after the scope closes the session, or beside it.
    `fastapi`: the FastAPI versions the project allows, when its dependency files say."""
    managed = {c.name for c in facts.creations if c.holding is Holding.MANAGED and c.name}
    # The caller's session (a parameter known to hold one) and the object's (`self.db`):
    # their owner ends them when its own scope ends, not when the task does.
    # Fixture: SL008/borrowed_session_to_background_work.py
    borrowed = (facts.session_names & facts.parameters) - set(facts.injected)
    found: List[Handoff] = []
    for call in facts.handoff_calls:
        if terminal_name(call.func) in STREAMING_RESPONSES:
            found.extend(_streamed(call, facts, managed, fastapi))
            continue
        sink = HANDOFF_SINKS[terminal_name(call.func) or ""]
        if _not_a_task(call) or any(call is joined for joined in facts.joined_handoffs):
            continue
        for name in _passed_names(call, with_self=True):
            if name in managed:
                found.append(Handoff(call, name, sink, True))
            elif name in borrowed or (
                # (`self.session` of a module that never mentions SQLAlchemy is some other
                # session: Cassandra's, requests')
                mentions_sqlalchemy and name.startswith("self.") and name[5:].lstrip("_") in CONVENTIONAL_SESSION_NAMES
            ):
                found.append(Handoff(call, name, sink, False, borrowed=True))
            elif name in facts.injected:
                # FastAPI runs a yield dependency's exit code after background tasks before
                # 0.106 and again from 0.118; between, and with scope="function", before them.
                # Where it runs after them, the request's session is still held open (and its
                # connection checked out) until the task ends, and used after the response.
                # Fixture: SL008/background_task_fastapi_versions/
                if sink != "background task" or facts.injected[name]:
                    found.append(Handoff(call, name, sink, False))
                else:
                    closes_first = fastapi is not None and fastapi.within((0, 106), (0, 118))
                    found.append(Handoff(call, name, sink, False, str(fastapi) if closes_first else ""))
    return found


def _streamed(call: cst.Call, facts: ScopeFacts, managed: Set[str], fastapi: Optional[VersionRange]) -> List[Handoff]:
    """A session of a `with` block or of a request dependency passed to the call that makes a
    streaming response's body (`StreamingResponse(stream(db=db))`, or `packets = stream(db=db)`
    then `StreamingResponse(packets)`): the body runs while the response is sent, after the
    handler returned. A `with` block has closed its session by then; FastAPI 0.106-0.117 ends
    `yield` dependencies before the response is sent (0.118 waits for the stream again).
    Real-bug corpus: onyx's chat and answer streams. Fixture: SL008/session_in_streaming_body.py"""
    positional = [a for a in call.args if a.keyword is None and not a.star]
    body = positional[0].value if positional else next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "content"), None)
    if isinstance(body, cst.Name):
        body = _bound_call(facts.node, body.value)
    if not isinstance(body, cst.Call):
        return []
    found: List[Handoff] = []
    for name in _passed_names(body):
        if name in managed:
            found.append(Handoff(body, name, "streaming response", True))
        elif name in facts.injected and facts.injected[name]:  # `scope="function"`: ends when the handler returns
            found.append(Handoff(body, name, "streaming response", False, 'scope="function"'))
        elif name in facts.injected:
            if fastapi is not None and ((fastapi.low is not None and fastapi.low >= (0, 118)) or (fastapi.high is not None and fastapi.high <= (0, 106))):
                continue  # the dependency ends after the response on every allowed version
            closes_first = fastapi is not None and fastapi.within((0, 106), (0, 118))
            found.append(Handoff(body, name, "streaming response", False, str(fastapi) if closes_first else ""))
    return found


def _bound_call(function: cst.CSTNode, name: str) -> Optional[cst.Call]:
    """The call last assigned to `name` in `function`'s own body (`packets = stream(...)`)."""
    bound = None
    for node in walk(function, enter_scopes=False):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and len(node.targets) == 1:
            target = node.targets[0].target
            if isinstance(target, cst.Name) and target.value == name:
                bound = node.value
    return bound


def _not_a_task(call: cst.Call) -> bool:
    """`progress.add_task("Indexing", total=n)`: rich's progress bars, no background work
    (a task description first, or a receiver named for progress). Corpus review: argilla's
    reindex command. `feedback_service.submit(session, ...)`: a service method, not an
    executor's, whose first argument is the function to run (corpus review: polar).
    Fixture: SL008/submit_is_not_always_an_executor.py"""
    func = call.func
    name = terminal_name(func)
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in ("self", "cls"):
        # `self.add_task(db, ...)`, `self.submit(...)`: the object's own method, never
        # FastAPI's BackgroundTasks or an executor (fresh-project review: Empire's agent
        # task service). Fixture: SL008/own_method_named_like_a_sink.py
        return True
    if name in ("submit", "run_in_executor"):
        callable_at = 1 if name == "run_in_executor" else 0
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if len(positional) <= callable_at:
            return True
        work = positional[callable_at].value
        return not isinstance(work, (cst.Name, cst.Attribute, cst.Lambda, cst.Call)) or _session_like(work)
    if name != "add_task":
        return False
    receiver = dotted_name(func.value) if isinstance(func, cst.Attribute) else None
    first = call.args[0].value if call.args and call.args[0].keyword is None else None
    return isinstance(first, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)) or "progress" in (receiver or "").lower()


def _session_like(node: cst.BaseExpression) -> bool:
    """`session`, `self.db`: what sits where an executor expects the function to run."""
    dotted = dotted_name(node) or ""
    return dotted.rsplit(".", 1)[-1].lstrip("_") in CONVENTIONAL_SESSION_NAMES


def find_stores(function: cst.FunctionDef, facts: ScopeFacts, module: Tuple[FrozenSet[str], FrozenSet[str]]) -> List[Handoff]:
    """Sessions of a `with` block or of a request dependency assigned where they outlive it:
    `CACHE[key] = db` on a module-level container, a `global` name, `SomeClass.attr = db`.
    Local containers, `self.db = db` and `request.state.db = db` live as long as the request.
    Fixture: SL008/session_stored_beyond_request.py"""
    managed = {c.name for c in facts.creations if c.holding is Holding.MANAGED and c.name}
    owned = managed | set(facts.injected)
    if not owned:
        return []
    module_names, class_names = module
    declared_global = facts.global_names
    local: Set[str] = {p.name.value for p in _all_params(function)} | facts.assigned_names
    found: List[Handoff] = []
    for node in facts.name_value_assigns:
        value = node.value
        if not isinstance(value, cst.Name) or value.value not in owned:
            continue
        for target in (t.target for t in node.targets):
            sink = None
            if isinstance(target, cst.Name) and target.value in declared_global:
                sink = "module-level variable"
            elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
                base = target.value.value
                if base in module_names and (base not in local or base in declared_global):
                    sink = "module-level variable"
            elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
                if target.value.value in class_names and target.value.value not in local:
                    sink = "class attribute"
            if sink is not None:
                found.append(Handoff(node, value.value, sink, value.value in managed))
    return found


def _all_params(function: cst.FunctionDef) -> List[cst.Param]:
    params = function.params
    extra = [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return list(params.posonly_params) + list(params.params) + list(params.kwonly_params) + extra


def _passed_names(call: cst.Call, with_self: bool = False) -> List[str]:
    """Names passed as values anywhere in a call's arguments (not `db.attr`; `self.db` too
    with `with_self`), in order."""
    names: List[str] = []
    stack: List[cst.CSTNode] = [arg.value for arg in reversed(call.args)]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            if node.value not in names:
                names.append(node.value)
        elif isinstance(node, cst.Attribute):
            if with_self and isinstance(node.value, cst.Name) and node.value.value == "self":
                names.append(f"self.{node.attr.value}")
            continue
        elif isinstance(node, (cst.Lambda, cst.FunctionDef)):
            continue
        else:
            stack.extend(reversed(list(iter_children(node))))
    return names
