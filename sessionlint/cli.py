"""Command line: options -> Configuration, run, pick a reporter, exit code.

Only this module and `reporters/` write to the user. libcst and rich are imported lazily so
that `--version`, `--help` and `--list-rules` start fast.
"""

import os
import signal
import sys
from typing import Any, Dict, NoReturn, Optional, Sequence, Tuple

import click

from sessionlint import __version__
from sessionlint.config import ConfigError, Configuration, Settings
from sessionlint.diagnostics import ErrorKind, RunResult, display_path
from sessionlint.registry import RULES, UnknownSelector, by_code, select_rules

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2  # usage, configuration, I/O or internal error
EXIT_INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C, as shells report it
EXIT_TERMINATED = 128 + signal.SIGTERM


def exit_code(run: RunResult, exit_zero: bool = False) -> int:
    """The one mapping from a run to an exit code: 2 for usage, I/O or internal errors,
    1 when findings (or files that do not parse) remain, 0 otherwise. `--exit-zero` turns
    1 into 0 but never hides an error."""
    if run.usage_errors or run.fix_problems or any(e.kind in (ErrorKind.IO, ErrorKind.INTERNAL) for e in run.errors):
        return EXIT_ERROR
    if run.diagnostics or run.errors:
        return EXIT_OK if exit_zero else EXIT_FINDINGS
    return EXIT_OK


def _split(values: Sequence[str]) -> Tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _use_color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty()


def _fail(message: str) -> NoReturn:
    click.echo(f"sessionlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _warn(message: str) -> None:
    click.echo(f"sessionlint: warning: {message}", err=True)


FORMATS = ("text", "concise", "json", "sarif", "github", "gitlab", "junit")
# Show a progress bar on a terminal when more files than this are parsed.
PROGRESS_THRESHOLD = 200


def _list_rules() -> None:
    width = max(len(rule.name) for rule in RULES)
    click.echo(f"{'code':<6} {'name':<{width}} {'fix':<9} summary")
    for rule in RULES:
        click.echo(f"{rule.code:<6} {rule.name:<{width}} {rule.fix_availability:<9} {rule.summary}")


def _explain(code: str) -> None:
    info = by_code(code)
    if info is None:
        _fail(f"unknown rule `{code}` (see `sessionlint --list-rules`)")
    from sessionlint.rules._docs import page

    click.echo(page(info), nl=False)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", multiple=True, metavar="CODES", help="Rule codes or prefixes to enable (comma-separated).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Rule codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule codes or prefixes to disable (comma-separated).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Read settings from FILE (pyproject.toml or a TOML file of sessionlint settings) for every file.")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--exclude", multiple=True, metavar="GLOBS", help="Paths to skip (replaces the configured `exclude`).")
@click.option("--extend-exclude", multiple=True, metavar="GLOBS", help="Paths to skip on top of the configured ones.")
@click.option("--force-exclude", is_flag=True, default=None, help="Apply excludes to files named on the command line too (for pre-commit).")
@click.option("--no-respect-gitignore", is_flag=True, help="Lint files that .gitignore excludes.")
@click.option("--output-format", "--format", "output_format", type=click.Choice(FORMATS), default=None, help="How to print findings (default: text).")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE instead of stdout.")
@click.option("--statistics", is_flag=True, help="Print counts per rule instead of the findings.")
@click.option("--stdin-filename", metavar="PATH", help="Read the file from stdin and report it as PATH (its configuration and project too).")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), help="Report only findings that FILE (from --write-baseline) does not record.")
@click.option("--write-baseline", "write_baseline_file", type=click.Path(dir_okay=False), help="Record today's findings in FILE and exit 0.")
@click.option("--fix", is_flag=True, help="Apply the safe fixes, rewriting the files.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply (and count as fixable) the unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and write nothing (exit 1 if there is one).")
@click.option("--add-noqa", is_flag=True, help="Add `# noqa: SLxxx` to every line with a finding (merged with the comment there) and exit.")
@click.option("-q", "--quiet", is_flag=True, help="Print only one line per violation.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when violations are found.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("--explain", metavar="CODE", help="Show the documentation of one rule and exit.")
@click.option("--show-settings", "show_settings", metavar="PATH", help="Print the configuration file and the effective settings for PATH and exit.")
@click.option("--show-files", is_flag=True, help="List the files a run would lint and exit.")
@click.option("--runtime-report", metavar="FILE", type=click.Path(dir_okay=False), help="Compare the findings in PATHS (default: the tests' rootdir) with the leaks `pytest --sessionlint-leaks --sessionlint-leaks-report FILE` recorded, and exit.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, show_default="one per core", help="Worker processes (at most the number of cores).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
@click.option("--clean", is_flag=True, help="Remove the result cache (only the files sessionlint wrote there) and exit.")
@click.option("--no-prefilter", is_flag=True, hidden=True, help="Parse every file (for testing).")
@click.option("-v", "--verbose", is_flag=True, help="Name each project's configuration, log progress, show tracebacks of internal errors.")
@click.version_option(__version__, "--version", prog_name="sessionlint", message="%(prog)s %(version)s")
def main(
    paths: Tuple[str, ...],
    select: Tuple[str, ...],
    extend_select: Tuple[str, ...],
    ignore: Tuple[str, ...],
    config_file: Optional[str],
    isolated: bool,
    exclude: Tuple[str, ...],
    extend_exclude: Tuple[str, ...],
    force_exclude: Optional[bool],
    no_respect_gitignore: bool,
    output_format: Optional[str],
    output_file: Optional[str],
    statistics: bool,
    stdin_filename: Optional[str],
    baseline_file: Optional[str],
    write_baseline_file: Optional[str],
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    add_noqa: bool,
    quiet: bool,
    exit_zero: bool,
    list_rules: bool,
    explain: Optional[str],
    show_settings: Optional[str],
    show_files: bool,
    runtime_report: Optional[str],
    jobs: Optional[int],
    no_cache: bool,
    clean: bool,
    no_prefilter: bool,
    verbose: bool,
) -> None:
    """Find SQLAlchemy session misuse in PATHS (default: the current directory; `-` reads
    stdin)."""
    if list_rules:
        _list_rules()
        return
    if explain:
        _explain(explain)
        return
    if runtime_report:
        _runtime_report(runtime_report, paths)
        return
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    if stdin_filename is not None and "-" not in paths:
        # As Ruff does: --stdin-filename means the file comes from stdin.
        if paths:
            _warn(f"--stdin-filename reads the file from stdin; not linting {', '.join(paths)}")
        paths = ("-",)
    paths = paths or (".",)
    if jobs is not None and jobs > (os.cpu_count() or 1):
        cores = os.cpu_count() or 1
        _warn(f"-j {jobs} is more than the {cores} cores of this machine; using {cores}")
        jobs = cores
    environment_cache_dir = os.environ.get("SESSIONLINT_CACHE_DIR") or None
    configuration = Configuration(
        None if isolated else config_file,
        isolated,
        select=_split(select) or None,
        extend_select=_split(extend_select) or None,
        ignore=_split(ignore) or None,
        exclude=_split(exclude) or None,
        extend_exclude=_split(extend_exclude) or None,
        force_exclude=force_exclude,
        respect_gitignore=False if no_respect_gitignore else None,
        prefilter=False if no_prefilter else None,
        jobs=jobs,
        cache=False if no_cache else None,
        cache_dir=environment_cache_dir,
    )
    anchor = stdin_filename if paths == ("-",) and stdin_filename else next((p for p in paths if p != "-"), ".")
    try:
        settings = _checked(configuration, anchor, [p for p in paths if p != "-"] or [anchor], environment_cache_dir)
    except UnknownSelector as error:
        _fail(f"unknown rule selector `{error.selector}` (see `sessionlint --list-rules`)")
    except ConfigError as error:
        _fail(str(error))
    if show_settings is not None:
        _show_settings(configuration, show_settings)
        return
    if clean:
        _clean(settings)
        return
    if show_files:
        _show_files(configuration, paths)
        return
    if add_noqa:
        if fix or diff or "-" in paths:
            _fail("--add-noqa edits files: it cannot be combined with --fix, --diff or stdin")
        _add_noqa(paths, configuration)
        return
    fix_mode = ("unsafe" if unsafe_fixes else "safe") if (fix or diff) else None
    _lint(paths, configuration, settings, output_format or "text", output_file, statistics, stdin_filename,
          baseline_file, write_baseline_file, quiet, exit_zero, fix_mode, diff, unsafe_fixes, verbose)


def _runtime_report(report: str, paths: Sequence[str]) -> None:
    from sessionlint.pytest_plugin.records import ReportError
    from sessionlint.runtime_report import cross_check, describe

    try:
        click.echo("\n".join(describe(cross_check(report, paths))))
    except (ReportError, ConfigError) as error:
        _fail(str(error))


def _checked(configuration: Configuration, anchor: str, paths: Sequence[str], environment_cache_dir: Optional[str]) -> Settings:
    """The settings of the first path, checked (selectors, cache directory): a bad value is
    reported before anything is linted."""
    from sessionlint.cache import check_cache_dir

    settings = configuration.for_path(anchor)
    select_rules(settings.effective_select, settings.ignore)
    if environment_cache_dir:
        check_cache_dir(settings.cache_dir, "SESSIONLINT_CACHE_DIR", settings.root, paths)
    elif settings.config_file:
        check_cache_dir(settings.cache_dir, settings.config_file, settings.root, paths)
    return settings


def _clean(settings: Settings) -> None:
    from sessionlint.cache import clean as clean_cache
    from sessionlint.cache import clean_legacy_user_files

    removed, refused = clean_cache(settings.cache_dir)
    for path in removed + clean_legacy_user_files():
        click.echo(f"Removed {path}", err=True)
    if refused is not None:
        _fail(refused)
    if not removed:
        click.echo(f"No cache at {settings.cache_dir}", err=True)


def _show_settings(configuration: Configuration, path: str) -> None:
    import dataclasses

    try:
        settings = configuration.for_path(path)
    except ConfigError as error:
        _fail(str(error))
    from sessionlint.discovery import project_root
    from sessionlint.project.versions import sqlalchemy_target

    root = project_root(path, settings)
    click.echo(f"Settings for: {path}")
    click.echo(f"Configuration file: {settings.config_file or '(none: defaults)'}")
    click.echo(f"Project root: {root or '(none)'}")
    enabled = [info.code for info in select_rules(settings.effective_select, settings.ignore)]
    click.echo(f"enabled = {enabled!r}")
    for item in dataclasses.fields(settings):
        if item.name == "config_file":
            continue
        value = getattr(settings, item.name)
        if item.name == "target_sqlalchemy":
            target = sqlalchemy_target(root, value, settings.config_file)
            click.echo(f"target-sqlalchemy = {str(target)!r} ({target.source})")
            continue
        click.echo(f"{item.name.replace('_', '-')} = {value!r}")


def _show_files(configuration: Configuration, paths: Sequence[str]) -> None:
    from sessionlint.discovery import discover

    try:
        found = discover([p for p in paths if p != "-"], configuration)
    except ConfigError as error:
        _fail(str(error))
    for path in sorted(found.files):
        click.echo(display_path(path))
    for problem in found.errors:
        click.echo(f"sessionlint: error: {problem}", err=True)
    if found.errors:
        sys.exit(EXIT_ERROR)


def _lint(
    paths: Tuple[str, ...],
    configuration: Configuration,
    settings: Settings,
    output_format: str,
    output_file: Optional[str],
    statistics: bool,
    stdin_filename: Optional[str],
    baseline_file: Optional[str],
    write_baseline_file: Optional[str],
    quiet: bool,
    exit_zero: bool,
    fix_mode: Optional[str] = None,
    diff: bool = False,
    unsafe: bool = False,
    verbose: bool = False,
) -> None:
    from sessionlint.runner import run

    stdin = None
    if "-" in paths:
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
        stdin = (stdin_filename or "-", data)
    known = None
    if baseline_file:
        from sessionlint.baseline import BaselineError, read

        try:
            known = read(baseline_file)
        except BaselineError as error:
            _fail(str(error))
    for target in (output_file, write_baseline_file):
        if target:
            from sessionlint.fixes.files import remove_stale_temporaries

            remove_stale_temporaries(os.path.dirname(os.path.abspath(target)) or ".", os.path.basename(target))
    # SARIF carries each finding's fix: compute them (as --diff does), report the original.
    sarif = output_format == "sarif" and not statistics and fix_mode is None and not write_baseline_file
    try:
        result = run(paths, configuration, stdin=stdin, progress=_progress_bar(), fix=("unsafe" if unsafe else "safe") if sarif else fix_mode)
    except ConfigError as error:
        _fail(str(error))
    fixed = {path: (original, new) for path, (original, new, _) in result.fixes.items()}
    if sarif:
        for path in fixed:
            result.keep_original(path)
        result.fix_problems = []
    if verbose:
        for root, config in result.projects:
            click.echo(f"sessionlint: project {root or '(files outside any project)'}: configuration {config or '(none: defaults)'}", err=True)
    for problem in result.usage_errors:
        click.echo(f"sessionlint: error: {problem}", err=True)
    for warning in result.warnings:
        _warn(warning)
    for file_error in result.errors:
        if file_error.kind in (ErrorKind.IO, ErrorKind.INTERNAL):
            click.echo(f"sessionlint: error: {display_path(file_error.path)}: {file_error.message}", err=True)
    if write_baseline_file:
        from sessionlint.baseline import write

        try:
            count = write(write_baseline_file, result.diagnostics, result.sources, settings.relative)
        except OSError as error:
            _fail(f"{write_baseline_file}: cannot write baseline: {error.strerror or error}")
        click.echo(f"Wrote {count} findings to {write_baseline_file}", err=True)
        sys.exit(EXIT_ERROR if exit_code(result) == EXIT_ERROR else EXIT_OK)
    for path, problem in result.fix_problems:
        click.echo(f"sessionlint: error: {display_path(path)}: internal error: {problem} (please report it with this file)", err=True)
    if diff:
        _print_diff(result)
        sys.exit(EXIT_ERROR if result.fix_problems else (EXIT_FINDINGS if result.fixes else EXIT_OK))
    if fix_mode is not None:
        _write_fixes(result, skip=stdin[0] if stdin is not None else None)
        if stdin is not None:
            # `-` with --fix: the (fixed) source goes to stdout, the report to stderr.
            fixed = result.fixes.get(stdin[0], (stdin[1], stdin[1], {}))[1]
            if hasattr(sys.stdout, "buffer"):
                sys.stdout.buffer.write(fixed)
            else:
                sys.stdout.write(fixed.decode("utf-8", errors="replace"))
            _report(result, output_format, output_file, statistics, quiet, unsafe, stream=sys.stderr)
            sys.exit(exit_code(result, exit_zero))
    if known is not None:
        from sessionlint.baseline import apply_to_run

        covered = apply_to_run(result, known, settings.relative)
        if covered and output_format == "text" and not quiet:
            click.echo(f"{covered} findings recorded in {baseline_file} not shown", err=True)
    _report(result, output_format, output_file, statistics, quiet, unsafe, fixed=fixed if sarif else None)
    sys.exit(exit_code(result, exit_zero))


def _add_noqa(paths: Tuple[str, ...], configuration: Configuration) -> None:
    """Write a `# noqa` directive for every finding; exit 0, or 2 when a file could not be
    written or a finding could not get one (a line that ends inside a string)."""
    from sessionlint.fixes.files import WriteError, digest, write_fixed
    from sessionlint.noqa import add_noqa
    from sessionlint.runner import run

    try:
        result = run(paths, configuration, progress=_progress_bar())
    except ConfigError as error:
        _fail(str(error))
    for problem in result.usage_errors:
        click.echo(f"sessionlint: error: {problem}", err=True)
    by_path: Dict[str, list] = {}
    for diagnostic in result.diagnostics:
        by_path.setdefault(diagnostic.path, []).append(diagnostic)
    added, failed = 0, bool(result.usage_errors)
    for path, diagnostics in sorted(by_path.items()):
        original = result.sources.get(path)
        if original is None:
            continue
        fixed, count, unplaced = add_noqa(original, diagnostics)
        for line in unplaced:
            click.echo(f"sessionlint: error: {display_path(path)}:{line}: no `# noqa` can be placed for this finding", err=True)
        failed = failed or bool(unplaced)
        if fixed == original:
            continue
        try:
            write_fixed(path, fixed, digest(original))
        except WriteError as error:
            click.echo(f"sessionlint: error: {display_path(path)}: {error}", err=True)
            failed = True
            continue
        added += count
    click.echo(f"Added {added} noqa {'directive' if added == 1 else 'directives'}.", err=True)
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


def _write_fixes(result: RunResult, skip: Optional[str] = None) -> None:
    """Write every fixed file atomically; a file that changed on disk meanwhile, or cannot be
    written, keeps its original bytes and becomes an I/O error of the run. `skip`: the
    stdin pseudo-path, whose fixed text goes to stdout instead."""
    from sessionlint.diagnostics import FileError, FileResult
    from sessionlint.fixes.files import (
        WriteError,
        digest,
        remove_stale_temporaries,
        write_fixed,
    )

    for path, (original, fixed, _) in sorted(result.fixes.items()):
        if path == skip:
            continue
        target = os.path.realpath(path)
        remove_stale_temporaries(os.path.dirname(target), os.path.basename(target))  # a killed run's
        try:
            write_fixed(path, fixed, digest(original))
        except WriteError as error:
            click.echo(f"sessionlint: error: {display_path(path)}: {error}", err=True)
            result.keep_original(path)
            result.files.append(FileResult(path, error=FileError(ErrorKind.IO, path, str(error))))


def _print_diff(result: RunResult) -> None:
    import difflib

    for path, (original, fixed, _) in sorted(result.fixes.items()):
        before = original.decode("utf-8", errors="replace").splitlines(keepends=True)
        after = fixed.decode("utf-8", errors="replace").splitlines(keepends=True)
        shown = display_path(path)
        sys.stdout.writelines(difflib.unified_diff(before, after, f"a/{shown}", f"b/{shown}"))
    if result.fixes:
        count = result.fixed_count
        click.echo(f"Would fix {count} {'error' if count == 1 else 'errors'}.", err=True)


def _report(
    result: RunResult,
    output_format: str,
    output_file: Optional[str],
    statistics: bool,
    quiet: bool,
    unsafe: bool = False,
    stream: Any = None,
    fixed: Optional[Dict[str, Tuple[bytes, bytes]]] = None,
) -> None:
    import importlib
    import io

    name = "statistics" if statistics else ("concise" if output_format == "text" and quiet else output_format)
    reporter = importlib.import_module(f"sessionlint.reporters.{name}")
    options: Dict[str, Any] = {"quiet": quiet, "sources": result.sources, "unsafe": unsafe, "fixed": fixed or {}}
    if name == "sarif":
        from sessionlint.rules._docs import pages

        options["rule_pages"] = pages()
    if output_file is None:
        out = stream or sys.stdout
        reporter.render(result, out, color=_use_color() and name in ("text", "concise") and out is sys.stdout, **options)
        return
    buffer = io.StringIO()
    reporter.render(result, buffer, color=False, **options)
    from sessionlint.fixes.files import write_atomically

    try:
        write_atomically(output_file, buffer.getvalue().encode("utf-8"))
    except OSError as error:
        _fail(f"{output_file}: cannot write report: {error.strerror or error}")


def _progress_bar() -> Any:
    """A rich progress bar on stderr for large runs on a terminal (never in CI logs or when
    stderr is piped); None otherwise."""
    if not sys.stderr.isatty() or os.environ.get("CI") or os.environ.get("NO_COLOR"):
        return None
    state: dict = {}

    def update(done: int, total: int) -> None:
        if total < PROGRESS_THRESHOLD:
            return
        if "bar" not in state:
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=True)
            state["bar"] = bar
            state["task"] = bar.add_task("Linting", total=total)
            bar.start()
        state["bar"].update(state["task"], completed=done)
        if done >= total:
            state["bar"].stop()

    return update


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as an interrupt: the run stops its workers and exits."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def entry(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """The `sessionlint` console script: the click command, then a hard exit once the output
    is flushed (the run has written and closed everything it writes; the interpreter's
    teardown would only free memory, as mypy's `hard_exit` reasons). Ctrl-C and SIGTERM end
    the run at once (130, 143); an internal error is one line and exit 2 (a traceback with
    `--verbose`), never exit 1, which means findings."""
    arguments = list(argv) if argv is not None else sys.argv[1:]
    if arguments[:1] == ["server"]:  # the language server (`./server` lints a directory of that name)
        from sessionlint.server import serve

        hard_exit(serve(arguments[1:]))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    code: Any
    try:
        code = main.main(args=list(argv) if argv is not None else None, prog_name="sessionlint", standalone_mode=False)
    except click.exceptions.Exit as stop:
        code = stop.exit_code
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as stop:
        # Click turns an interrupt into Abort; SIGTERM is Terminated. A normal exit, not the
        # hard one: the pool's queues and semaphores are released as the interpreter ends.
        terminated = isinstance(stop, Terminated) or isinstance(stop.__context__, Terminated)
        if not terminated:
            sys.stderr.write("sessionlint: interrupted\n")
        # The pool's manager thread may still write to pipes the interrupt closed; Python
        # 3.13 prints that as "Exception ignored on threading shutdown". Nothing is lost.
        sys.unraisablehook = _quiet_teardown
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except SystemExit as stop:
        code = stop.code
    except BrokenPipeError:
        code = EXIT_ERROR
    except Exception as error:  # a bug in sessionlint: one line, exit 2
        if "-v" in sys.argv or "--verbose" in sys.argv or os.environ.get("SESSIONLINT_STRICT") == "1":
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"sessionlint: internal error: {type(error).__name__}: {error} (please report it; --verbose shows the traceback)\n")
        code = EXIT_ERROR
    hard_exit(code)


def _quiet_teardown(unraisable: Any) -> None:
    """An interrupted run's teardown: closed pipes and queues are expected, anything else
    is reported as Python would."""
    if not isinstance(unraisable.exc_value, (OSError, EOFError)):
        sys.__unraisablehook__(unraisable)


def hard_exit(code: Any) -> NoReturn:
    """Exit as `sys.exit(code)` would, without the interpreter's teardown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        sys.stderr.write(f"{code}\n")
        status = EXIT_ERROR
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`sessionlint | head`) or stream
            if stream is sys.stdout and status == 0:
                status = 120  # what Python itself exits with when stdout cannot be flushed
    os._exit(status)
