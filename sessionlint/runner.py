"""The run, written once: discover -> project pass -> cache and prefilter -> lint -> suppress
-> fix.

Every file is linted by the same steps, whatever the number of files. The project pass runs
in this process (it reads every file and parses a few with the stdlib `ast`); the prefilter
and lint of each file, the bulk of the work, go through one `workers.Executor`, in this
process or on a pool, with the same function either way. A project's files are submitted
as soon as its pass is done, so the workers lint one project while this process does the
next one's pass.
Each file is linted under its own settings (its nearest configuration) and inside its own
project: the project pass runs once per project root met in the run, and reads the
project's other files when only some of them are linted, so a file's findings never depend
on which other paths a run was given.
"""

import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from sessionlint.cache import Cache, file_keys, fingerprint, index_summary, state_key
from sessionlint.config import Configuration, Settings
from sessionlint.diagnostics import (
    Diagnostic,
    ErrorKind,
    FileError,
    FileResult,
    RunResult,
)
from sessionlint.discovery import discover, project_context, project_root
from sessionlint.project.versions import project_versions, sqlalchemy_target
from sessionlint.registry import by_code, matches, select_rules
from sessionlint.sources import SourceFiles, read_source, too_large_message
from sessionlint.suppression import UNUSED_CODE, may_report_unused
from sessionlint.workers import (
    Executor,
    Handle,
    InProcess,
    Shared,
    make_executor,
    restore_gc,
    tune_gc,
)

if TYPE_CHECKING:
    from sessionlint.prefilter import Project

Progress = Callable[[int, int], None]

# Below this many bytes to parse, a process pool costs more to start (a forkserver that
# imports libcst) than it saves.
POOL_THRESHOLD_BYTES = 160_000
# From this many files, a run starts its pool before the project pass, which it shares.
EARLY_POOL_FILES = 200
# The bytes of a project's files a run in one process holds for its project pass's rescans.
HELD_BYTES = 32 << 20
# The files per lint task, up to a total size.
LINT_BATCH_FILES = 48
LINT_BATCH_BYTES = 256_000


@dataclass
class ProjectRun:
    """One project of a run: its root (None for files outside any project), the settings of
    its root, the files linted in it and, once its pass is done, what their lint needs."""

    root: Optional[str]
    settings: Settings
    files: List[str] = field(default_factory=list)
    project: Optional["Project"] = None
    cache: Optional[Cache] = None
    digests: Dict[str, str] = field(default_factory=dict)
    # The key of the project's state (cache.state_key) and what the index built from it says
    # that results depend on (cache.index_summary), from the cache or the built index.
    state: Optional[str] = None
    summary: Optional[Tuple[str, Dict[str, str]]] = None
    # The project as the lint tasks carry it to the workers (pickled once).
    shared: Optional["Shared[Project]"] = None
    # What the index is built from, until it is (`_Run.build_index`).
    pending: Optional[Tuple[List[str], Dict[str, Any], Dict[str, bytes], Any, Any, Any]] = None


def run(
    paths: Sequence[str],
    settings: Union[Settings, Configuration],
    stdin: Optional[Tuple[str, bytes]] = None,
    progress: Optional[Progress] = None,
    fix: Optional[str] = None,
) -> RunResult:
    """Lint `paths`: each file under its own settings (`settings` is a Configuration, or one
    Settings for every file) and inside its project. `stdin` is (path to report, bytes) for
    `-`. `fix` ("safe" or "unsafe") applies fixes in memory: the fixed bytes are in
    `result.fixes` and the findings are those of the fixed text; writing is the caller's."""
    configuration = settings if isinstance(settings, Configuration) else Configuration.fixed(settings)
    previous = tune_gc()
    try:
        return _Run(paths, configuration, stdin, progress).run(fix)
    finally:
        restore_gc(previous)


class _Run:
    def __init__(
        self, paths: Sequence[str], configuration: Configuration, stdin: Optional[Tuple[str, bytes]], progress: Optional[Progress]
    ) -> None:
        self.paths = list(paths)
        self.configuration = configuration
        self.stdin = stdin
        self.progress = progress
        self.result = RunResult()
        self.sources = SourceFiles()
        self.settings: Dict[str, Settings] = {}  # linted path -> its settings
        self.projects: List[ProjectRun] = []
        self.project_of: Dict[str, ProjectRun] = {}
        self.caches: Dict[str, Cache] = {}
        self.executor: Executor = InProcess()
        self.marked: Set[str] = set()  # files that may hold a suppression SL100 reports
        self.done = 0  # files linted so far, for the progress bar
        # The status of each linted file, taken before it is read (for the cache's stamps),
        # and when the run started, before any status was taken.
        self.status: Dict[str, os.stat_result] = {}
        self.started = time.time_ns()

    # --- the pipeline --------------------------------------------------------------------

    def run(self, fix: Optional[str]) -> RunResult:
        files = self.discover()
        jobs = self.jobs(files)
        try:
            if jobs > 1 and len(files) >= EARLY_POOL_FILES and not self._has_warm_cache(files):
                self.executor = make_executor(jobs)
                self.executor.warm_up()
            self.group(files)
            submitted = []
            for project_run in self.projects:
                self.project_pass(project_run)
                submitted.append(self.submit(project_run, jobs))
            for project_run, batches in zip(self.projects, submitted):
                self.collect(project_run, batches)
            for cache in self.caches.values():
                cache.save()
                if cache.problem is not None and not self.result.warnings:
                    self.result.warnings.append(cache.problem)
        except BaseException:
            self.executor.close(interrupted=True)
            raise
        self.executor.close()
        if fix is not None:
            self.fix(fix == "unsafe")
        self.suppress()
        if fix is not None:
            self.fix_unused_suppressions()
        for file_result in self.result.files:
            if file_result.diagnostics:
                data = self.sources.get(file_result.path)
                if data is not None:
                    self.result.sources[file_result.path] = data
        self.result.files.sort(key=lambda r: r.path)
        self.result.projects = [(p.root, p.settings.config_file) for p in self.projects]
        return self.result

    def discover(self) -> List[str]:
        given = [p for p in self.paths if p != "-"]
        discovered = discover(given, self.configuration)
        self.result.usage_errors.extend(discovered.errors)
        files = list(discovered.files)
        if self.stdin is not None:
            path, data = self.stdin
            settings = self.configuration.for_path(path)
            if not (settings.force_exclude and settings.is_excluded(path)):
                normal = os.path.normpath(path)
                # The file an editor pipes in stands for its copy on disk.
                files = [f for f in files if os.path.abspath(f) != os.path.abspath(normal)] + [normal]
                self.sources.pin(normal, data)
        kept = []
        for path in files:
            settings = self.configuration.for_path(path, is_file=True if path not in self.sources.pinned else None)
            if path not in self.sources.pinned and settings.max_file_size:
                try:
                    status = self.status[path] = os.stat(path)
                    size = status.st_size
                except OSError:
                    size = 0
                if size > settings.max_file_size:
                    self.result.warnings.append(f"{path}: {too_large_message(size, settings.max_file_size)}")
                    continue
            self.settings[path] = settings
            kept.append(path)
        return kept

    def jobs(self, files: Sequence[str]) -> int:
        requested = self.settings[files[0]].jobs if files else 0
        cores = os.cpu_count() or 1
        return requested if requested > 0 else cores

    def _has_warm_cache(self, files: Sequence[str]) -> bool:
        settings = self.settings[files[0]]
        return settings.cache and os.path.isfile(os.path.join(settings.cache_dir, "results.json"))

    def group(self, files: Sequence[str]) -> None:
        """Files by project: the root of the nearest configuration, or the nearest directory
        with a project marker; files outside any project form one project of their own."""
        by_key: Dict[Tuple[Optional[str], Optional[str]], ProjectRun] = {}
        for path in files:
            settings = self.settings[path]
            root = project_root(path, settings, is_file=True)
            key = (root, settings.config_file)
            project_run = by_key.get(key)
            if project_run is None:
                root_settings = self.configuration.for_path(root) if root is not None else settings
                project_run = by_key[key] = ProjectRun(root, root_settings)
                self.projects.append(project_run)
            project_run.files.append(path)
            self.project_of[path] = project_run

    def cache_for(self, settings: Settings) -> Cache:
        if not settings.cache:
            return Cache.disabled()
        key = os.path.abspath(settings.cache_dir)
        cache = self.caches.get(key)
        if cache is None:
            cache = self.caches[key] = Cache.open(settings.cache_dir)
            if cache.problem is not None and not self.result.warnings:
                self.result.warnings.append(cache.problem)
        return cache

    # --- the project pass -------------------------------------------------------------------

    def project_pass(self, project_run: ProjectRun) -> None:
        """The project's index: the facts of its linted files and of its other files (read,
        not linted), then the rescans for names learnt on the way."""
        settings = project_run.settings
        cache = project_run.cache = self.cache_for(settings)
        linted = project_run.files
        others: List[str] = []
        if project_run.root is not None:
            root = project_run.root
            linted_set = set(linted)
            others = [f for f in self.settings if f not in linted_set and _is_under(f, root)]
            relative = not any(os.path.isabs(f) for f in linted)
            others += project_context(root, self.paths, list(self.settings), self.configuration, relative)
        use_digests = cache.enabled
        order = linted + others
        # path -> (digest, whether SL100 may report in it, its facts if it was read), or why
        # it cannot be read
        records: Dict[str, Any] = {}
        builder = None
        # The bytes read are held for the index's questions (up to a budget): a file is read
        # once.
        held: Dict[str, bytes] = {}
        budget = HELD_BYTES
        limit = settings.max_file_size
        for path in order:
            pinned = self.sources.pinned.get(path)
            stamp = None
            if pinned is None and use_digests:
                # An unchanged file (by its status) is not read: its digest is the recorded one.
                status = self.status.get(path)
                stamp = Cache.stamp_of(status) if status is not None else cache.stamp(path)
                recorded = cache.get_stamp(path, stamp)
                if recorded is not None and not (limit and stamp is not None and stamp[2] > limit):
                    records[path] = (recorded[0], recorded[1], None)
                    continue
            data, failure = (pinned, None) if pinned is not None else read_source(path, limit)
            if data is None:
                records[path] = failure
                continue
            digest = cache.digest(data) if use_digests else None
            mark = may_report_unused(data)
            # (its facts now, so that its bytes are not held: a cold run reads every file)
            builder = builder or _index_builder(settings, cache)
            facts = builder.cached_facts(digest) if digest is not None else None
            records[path] = (digest, mark, facts or builder.file_facts(path, data, digest))
            if digest is not None:
                cache.put_stamp(path, stamp, digest, mark, self.started)
            if len(data) <= budget:
                held[path] = data
                budget -= len(data)
        linted_here = set(linted)
        readable = []
        for path in order:
            record = records.get(path)
            if not isinstance(record, tuple):
                if path in linted_here:
                    self.unreadable(path, record)
                continue
            readable.append(path)
            digest, mark, _ = record
            if path in linted_here:
                if digest is not None:
                    project_run.digests[path] = digest
                if mark:
                    self.marked.add(path)
        versions = project_versions(project_run.root)
        target = sqlalchemy_target(project_run.root, settings.target_sqlalchemy, settings.config_file)
        project_run.pending = (readable, records, held, versions, target, builder)
        if use_digests:
            # Everything the index is built from: the same state gives the same index, and its
            # summary is all the cached results' keys need.
            project_run.state = state_key((
                project_run.root, sorted(settings.session_factories), sorted(settings.engine_factories),
                sorted(settings.request_decorators), [(path, records[path][0]) for path in readable],
                sorted((name, repr(found)) for name, found in versions.items()), repr(target),
            ))
            project_run.summary = cache.get_state(project_run.state)
        if project_run.summary is None:
            self.build_index(project_run)
        else:
            # The index may not be needed at all: what it asks is read again if it is.
            project_run.pending = (readable, records, {}, versions, target, builder)

    def build_index(self, project_run: ProjectRun) -> "Project":
        """The project's index from the files the pass read (`ProjectRun.pending`); needed
        to lint a file (or fix one), and for the run keys when the cache does not know the
        project's state."""
        if project_run.project is not None:
            return project_run.project
        assert project_run.pending is not None and project_run.cache is not None
        from sessionlint.prefilter import project_of

        readable, records, held, versions, target, builder = project_run.pending
        project_run.pending = None
        settings = project_run.settings
        cache = project_run.cache
        limit = settings.max_file_size
        builder = builder or _index_builder(settings, cache)
        for path in readable:
            digest, _, facts = records[path]
            facts = facts or (builder.cached_facts(digest) if digest is not None else None)
            if facts is None:  # not read: its status was the one recorded
                data = read_source(path, limit)[0]
                if data is None:
                    continue  # gone since its status was taken: its lint says so
                facts = builder.file_facts(path, data, digest)
            builder.merge(path, facts, digest)
        index = builder.finish(lambda path: held.get(path) or read_source(path, limit)[0])
        index.versions = versions
        index.sqlalchemy = target
        project = project_run.project = project_of(index, settings)
        summary = index_summary(index)
        if project_run.summary is None:
            project_run.summary = summary
        if project_run.state is not None:
            cache.put_state(project_run.state, summary)
        return project

    def unreadable(self, path: str, record: Optional[FileResult]) -> None:
        self.result.files.append(record or FileResult(path, error=FileError(ErrorKind.IO, path, "cannot read file")))
        self.settings.pop(path, None)
        project_run = self.project_of.pop(path, None)
        if project_run is not None and path in project_run.files:
            project_run.files.remove(path)

    # --- the lint ------------------------------------------------------------------------

    def submit(self, project_run: ProjectRun, jobs: int) -> List[Tuple["LintBatch", Handle]]:
        """The project's files: the cached result, or submitted to the executor for the
        prefilter and the lint (a pool is started for them if they are many)."""
        assert project_run.summary is not None and project_run.cache is not None
        index_key, own = project_run.summary
        pending: List[Tuple[ProjectRun, Tuple[str, ...], str, str]] = []  # (project, codes, path, run key)
        keys: Dict[Tuple[str, ...], str] = {}
        own_keys: Dict[str, Dict[str, str]] = {}  # run key -> file -> its own key (cache.file_keys)
        for path in project_run.files:
            codes = self.rule_codes(path)
            if not codes:
                self.result.files.append(FileResult(path))
                continue
            run_key = keys.get(codes)
            if run_key is None:
                run_key = keys[codes] = fingerprint(self.settings[path], codes, index_key)
            if run_key not in own_keys:
                own_keys[run_key] = file_keys(run_key, own)
            run_key = own_keys[run_key].get(path, run_key)
            digest = project_run.digests.get(path, "")
            cached = project_run.cache.get(run_key, path, digest) if digest else None
            if cached is not None:
                self.result.files.append(cached)
                continue
            pending.append((project_run, codes, path, run_key))
        if not pending:
            return []
        self.build_index(project_run)
        sizes = {path: _size(path, self.sources) for _, _, path, _ in pending}
        if self.executor.jobs <= 1 and jobs > 1 and len(pending) > 1 and sum(sizes.values()) >= POOL_THRESHOLD_BYTES:
            self.executor = make_executor(jobs)
        return [(batch, self.executor.submit(lint_batch, batch.work)) for batch in self.batches(pending, sizes)]

    def collect(self, project_run: ProjectRun, submitted: Sequence[Tuple["LintBatch", Handle]]) -> None:
        for batch, handle in submitted:
            answers = handle.result()
            for (path, _), (file_result, data, digest) in zip(batch.items, answers):
                run_key = batch.keys[path]
                self.result.files.append(file_result)
                if data is not None:
                    self.sources.keep(path, data)
                cacheable = file_result.error is None or file_result.error.kind not in (ErrorKind.INTERNAL, ErrorKind.IO)
                if cacheable and digest is not None and project_run.cache is not None:
                    project_run.cache.put(run_key, path, digest, file_result)
            self.done += len(batch.items)
            if self.progress is not None:
                self.progress(self.done, len(self.settings))

    def batches(self, pending: Sequence[Tuple[ProjectRun, Tuple[str, ...], str, str]], sizes: Dict[str, int]) -> List["LintBatch"]:
        """Batches of one project and one rule set, largest files first (so that the workers
        finish together), of about LINT_BATCH_BYTES."""
        ordered = sorted(pending, key=lambda item: -sizes[item[2]])
        open_batches: Dict[Tuple[int, Tuple[str, ...]], LintBatch] = {}
        batches: List[LintBatch] = []
        for project_run, codes, path, run_key in ordered:
            key = (id(project_run), codes)
            batch = open_batches.get(key)
            if batch is None or batch.size >= LINT_BATCH_BYTES or len(batch.items) >= LINT_BATCH_FILES:
                assert project_run.project is not None
                enabled = project_run.cache.enabled if project_run.cache else False
                if project_run.shared is None:
                    project_run.shared = Shared(project_run.project)
                batch = LintBatch(project_run, {}, LintWork(project_run.shared, codes, self.settings[path].prefilter, [], enabled))
                open_batches[key] = batch
                batches.append(batch)
            batch.items.append((path, self.sources.pinned.get(path)))
            batch.keys[path] = run_key
            batch.size += sizes[path]
        return batches

    def rule_codes(self, path: str) -> Tuple[str, ...]:
        settings = self.settings[path]
        return tuple(info.code for info in select_rules(settings.effective_select, settings.ignore) if info.class_name)

    # --- suppressions and fixes ------------------------------------------------------------

    def suppress(self) -> None:
        """Per-file ignores and inline suppressions on every file's findings."""
        for index, file_result in enumerate(self.result.files):
            path = file_result.path
            settings = self.settings.get(path)
            if settings is None:
                continue
            enabled = enabled_codes(settings)
            report_unused = UNUSED_CODE in enabled
            if not file_result.diagnostics:
                if not report_unused or (path not in self.marked and path not in self.sources.pinned):
                    continue  # read in the project pass: no suppression SL100 could report
            data = self.sources.get(path)
            if data is None:
                continue
            diagnostics, count = filter_findings(path, data, file_result.diagnostics, settings, enabled, report_unused)
            self.result.suppressed += count
            if diagnostics != file_result.diagnostics:
                self.result.files[index] = replace(file_result, diagnostics=tuple(sorted(diagnostics, key=lambda d: d.sort_key)))

    def fix_unused_suppressions(self) -> None:
        """SL100's fix, after the suppressions were applied to the (fixed) text: the unused
        codes leave their comments. Only comments change, so no other finding moves."""
        from sessionlint.noqa import remove_unused

        for index, file_result in enumerate(self.result.files):
            unused = [d for d in file_result.diagnostics if d.code == UNUSED_CODE]
            data = self.sources.get(file_result.path) if unused else None
            if data is None:
                continue
            fixed = remove_unused(data, unused)
            if fixed == data:
                continue
            path = file_result.path
            original, _, counts = self.result.fixes.get(path, (data, data, {}))
            self.result.fixes[path] = (original, fixed, {**counts, UNUSED_CODE: len(unused)})
            self.result.unfixed.setdefault(path, file_result)
            self.sources.pin(path, fixed)
            self.result.files[index] = replace(file_result, diagnostics=tuple(d for d in file_result.diagnostics if d.code != UNUSED_CODE))

    def fix(self, unsafe: bool) -> None:
        """Fix rounds for every file with an applicable, unsuppressed fix, in this process."""
        from sessionlint.fixes.apply import fix_source, is_applied_fix
        from sessionlint.lint import rule_classes

        for index, file_result in enumerate(self.result.files):
            path = file_result.path
            settings = self.settings.get(path)
            data = self.sources.get(path)
            if settings is None or data is None or not any(is_applied_fix(d, unsafe) for d in file_result.diagnostics):
                continue
            enabled = enabled_codes(settings)
            classes = rule_classes([by_code(code) for code in self.rule_codes(path)])
            project_run = self.project_of[path]

            def allowed(diagnostics: Sequence[Diagnostic], text: bytes, path: str = path, settings: Settings = settings) -> Tuple[Diagnostic, ...]:
                return filter_findings(path, text, diagnostics, settings, enabled, False)[0]

            outcome = fix_source(data, path, self.build_index(project_run), classes, unsafe=unsafe, allowed=allowed)
            if outcome.problem is not None:
                self.result.fix_problems.append((path, outcome.problem))
            if outcome.changed:
                self.result.fixes[path] = (data, outcome.data, dict(outcome.fixed))
                # What to report if the fixed file cannot be written: the original's findings.
                self.result.unfixed[path] = replace(file_result, diagnostics=allowed(file_result.diagnostics, data))
                self.sources.pin(path, outcome.data)
                self.result.files[index] = outcome.result


def enabled_codes(settings: Settings) -> frozenset:
    return frozenset(info.code for info in select_rules(settings.effective_select, settings.ignore))


def filter_findings(
    path: str, data: bytes, diagnostics: Sequence[Diagnostic], settings: Settings, enabled: frozenset, report_unused: bool
) -> Tuple[Tuple[Diagnostic, ...], int]:
    """Per-file ignores from the configuration, then `# noqa` / `# sessionlint: ignore`
    comments (and SL100 for comments that suppress nothing, when `report_unused`); the kept
    findings and how many comments suppressed."""
    from sessionlint import suppression

    ignored = settings.ignored_codes(path) if settings.per_file_ignores else ()

    def not_ignored(found: Sequence[Diagnostic]) -> Tuple[Diagnostic, ...]:
        if not ignored:
            return tuple(found)
        return tuple(d for d in found if not any(_ignores(s, d.code) for s in ignored))

    kept = not_ignored(diagnostics)
    marks = suppression.parse(data) if (kept or report_unused) else None
    if marks is None:
        return kept, 0
    kept, count = suppression.apply(path, kept, marks, enabled, report_unused)
    return not_ignored(kept), count


def _ignores(selector: str, code: str) -> bool:
    info = by_code(code)
    return info is not None and matches(selector, info)


def _index_builder(settings: Settings, cache: Cache) -> Any:
    from sessionlint.project.builder import IndexBuilder

    return IndexBuilder(settings.session_factories, cache, settings.engine_factories, settings.request_decorators)


def _is_under(path: str, root: str) -> bool:
    return os.path.abspath(path).startswith(root.rstrip(os.sep) + os.sep)


def _size(path: str, sources: SourceFiles) -> int:
    pinned = sources.pinned.get(path)
    if pinned is not None:
        return len(pinned)
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# --- the tasks the executor runs (module level: a pool pickles them by name) --------------

@dataclass(frozen=True)
class LintWork:
    """What a worker needs to prefilter and lint a batch of one project's files under one rule
    set (pickled to it): the files as (path, bytes if pinned)."""

    project: "Shared[Project]"
    codes: Tuple[str, ...]
    prefilter: bool
    items: List[Tuple[str, Optional[bytes]]]
    digests: bool  # hash what is linted, for the cache


@dataclass
class LintBatch:
    project_run: ProjectRun
    keys: Dict[str, str]  # path -> the cache key of its result
    work: LintWork
    size: int = 0

    @property
    def items(self) -> List[Tuple[str, Optional[bytes]]]:
        return self.work.items


def lint_batch(work: LintWork) -> List[Tuple[FileResult, Optional[bytes], Optional[str]]]:
    """Prefilter and lint a batch of one project's files under one rule set: per file, the
    result, the bytes read when it has findings (for the report and the fixes), and the hash
    of the bytes linted (the cache's key) when the cache is used."""
    from sessionlint.lint import parse_and_lint, rule_classes

    project, codes, prefilter, items, digests = work.project.value, work.codes, work.prefilter, work.items, work.digests
    infos = [by_code(code) for code in codes]
    triggers = {trigger for info in infos if info is not None for trigger in info.triggers}
    rules: Optional[list] = None  # imported (with libcst) when a file needs parsing
    answers: List[Tuple[FileResult, Optional[bytes], Optional[str]]] = []
    for path, pinned in items:
        data = pinned
        if data is None:
            data, failure = read_source(path)
            if data is None:
                answers.append((failure or FileResult(path), None, None))
                continue
        refine = project.triage(data, triggers) if prefilter else ()
        if refine is None:
            file_result = FileResult(path)
        else:
            if rules is None:
                rules = rule_classes(infos)
            file_result = parse_and_lint(data, path, project, rules, refine)
        keep = data if file_result.diagnostics and pinned is None else None
        answers.append((file_result, keep, Cache.digest(data) if digests else None))
    return answers
