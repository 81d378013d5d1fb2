"""The runtime companion: `pytest --sessionlint-leaks` fails the test that leaves a SQLAlchemy
session or pooled connection open, naming the line that opened it and the rule (SL001, SL010).

pytest loads this module through the `pytest11` entry point in every run where sessionlint is
installed, so it imports nothing but pytest at load time and does nothing unless enabled:
SQLAlchemy and the watcher are imported in `pytest_configure` of an enabled run only.
"""

from typing import TYPE_CHECKING, Any, Dict, Generator, List, Optional

import pytest

if TYPE_CHECKING:
    from sessionlint.pytest_plugin.records import Leak
    from sessionlint.pytest_plugin.watcher import Owner, Watcher

MODES = ("fail", "warn")
ALLOW_MARKER = "sessionlint_allow_leaks"


class SessionlintLeakWarning(pytest.PytestWarning):
    """A leak found in `warn` mode."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sessionlint", "sessionlint runtime leak check")
    group.addoption(
        "--sessionlint-leaks",
        action="store_true",
        default=None,
        help="Fail each test that leaves a SQLAlchemy session or pooled connection open.",
    )
    group.addoption(
        "--sessionlint-leaks-mode",
        choices=MODES,
        default=None,
        help="fail (default): a leak fails the test; warn: a leak is a warning.",
    )
    group.addoption(
        "--sessionlint-leaks-report",
        metavar="FILE.json",
        default=None,
        help="Write every site that opened a session or connection, and its leaks, to FILE.json "
        "(for `sessionlint --runtime-report`).",
    )
    parser.addini("sessionlint_leaks", "Enable the sessionlint runtime leak check.", type="bool", default=False)
    parser.addini("sessionlint_leaks_mode", "fail or warn.", default="fail")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ALLOW_MARKER}: the test may leave sessions or connections open (sessionlint)")
    enabled = config.getoption("sessionlint_leaks") or config.getini("sessionlint_leaks")
    if not enabled:
        return
    mode = config.getoption("sessionlint_leaks_mode") or config.getini("sessionlint_leaks_mode")
    if mode not in MODES:
        raise pytest.UsageError(f"sessionlint_leaks_mode must be one of {', '.join(MODES)}, not {mode!r}")
    try:
        from sessionlint.pytest_plugin.watcher import Watcher
    except ImportError as error:
        raise pytest.UsageError(
            f"--sessionlint-leaks needs SQLAlchemy 2 ({error}); install it with `pip install 'sessionlint[pytest]'`"
        ) from None
    import _pytest
    import pytest as pytest_module

    roots = [module.__path__[0] for module in (_pytest, pytest_module) if hasattr(module, "__path__")]
    checker = LeakCheck(config, Watcher(roots), mode, config.getoption("sessionlint_leaks_report"))
    config.pluginmanager.register(checker, "sessionlint-leak-check")


class LeakCheck:
    """The hooks of an enabled run: whose is what is opened, judged after each test."""

    def __init__(self, config: pytest.Config, watcher: "Watcher", mode: str, report_path: Optional[str]) -> None:
        self.config = config
        self.watcher = watcher
        self.mode = mode
        self.report_path = report_path
        self.rootdir = str(config.rootpath)
        self.fixture_owners: Dict[int, "Owner"] = {}  # id(fixturedef) -> owner while set up
        self.fixture_leaks: List["Leak"] = []  # judged at a wide fixture's teardown
        watcher.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Optional[pytest.Item]) -> bool:
        # pytest's own protocol, with the reports held back until the teardown is over, so
        # that a leak found then fails the test itself (as pytest-rerunfailures holds them).
        from _pytest.runner import runtestprotocol

        from sessionlint.pytest_plugin.watcher import Owner

        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        owner = Owner()
        self.watcher.owner = owner
        try:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        finally:
            self.watcher.owner = None
        leaks = self.watcher.judge(owner)
        if item.get_closest_marker(ALLOW_MARKER) is not None:
            leaks = []
        leaks += self.fixture_leaks
        self.fixture_leaks = []
        for leak in leaks:
            self.watcher.recorder.leaked(leak, item.nodeid)
        if leaks:
            self.report(item, reports, leaks)
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def report(self, item: pytest.Item, reports: List[pytest.TestReport], leaks: List["Leak"]) -> None:
        lines = [f"sessionlint: {leak.describe(self.rootdir)}" for leak in leaks]
        text = "\n".join(lines)
        if self.mode == "warn":
            item.warn(SessionlintLeakWarning(text))
            return
        target = next((r for r in reports if r.when == "call"), reports[0])
        if target.failed:
            target.sections.append(("sessionlint leaks", text))
            return
        target.outcome = "failed"
        target.longrepr = text
        if hasattr(target, "wasxfail"):
            del target.wasxfail

    @pytest.hookimpl(hookwrapper=True)  # the old style: pytest 7 has no `wrapper=True`
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, None]:
        if fixturedef.scope == "function" or self.watcher.owner is None:
            yield
            return
        from sessionlint.pytest_plugin.watcher import Owner

        owner = Owner(f"{fixturedef.scope}-scoped fixture `{fixturedef.argname}`")
        self.fixture_owners[id(fixturedef)] = owner
        previous, self.watcher.owner = self.watcher.owner, owner
        try:
            yield
        finally:
            self.watcher.owner = previous

    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: Any) -> None:
        owner = self.fixture_owners.pop(id(fixturedef), None)
        if owner is not None:
            self.fixture_leaks += self.watcher.judge(owner)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.report_path:
            self.watcher.recorder.write(self.report_path, self.rootdir)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.watcher.stop()

