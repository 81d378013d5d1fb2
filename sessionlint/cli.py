"""Command line: options -> Settings, run the engine, pick a reporter, exit code.

Only this module and `reporters/` write to the user. libcst and rich are imported lazily so
that `--version`, `--help` and `--list-rules` start fast.
"""

import os
import sys
from typing import Optional, Sequence, Tuple

import click

from sessionlint import __version__
from sessionlint.config import ConfigError, check_cache_dir, load_settings
from sessionlint.diagnostics import ErrorKind, RunResult
from sessionlint.registry import RULES, UnknownSelector, by_code, select_rules

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def exit_code(run: RunResult, exit_zero: bool = False) -> int:
    """The one mapping from a run to an exit code: 2 for usage, I/O or internal errors,
    1 when findings (or files that do not parse) remain, 0 otherwise. `--exit-zero` turns
    1 into 0 but never hides an error."""
    if run.usage_errors or any(e.kind in (ErrorKind.IO, ErrorKind.INTERNAL) for e in run.errors):
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


def _fail(message: str) -> None:
    click.echo(f"sessionlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


FORMATS = ("text", "concise", "json", "sarif", "github", "junit")
# Show a progress bar on a terminal when more files than this are parsed.
PROGRESS_THRESHOLD = 200


def _list_rules() -> None:
    width = max(len(rule.name) for rule in RULES)
    click.echo(f"{'code':<6} {'name':<{width}} {'fix':<9} summary")
    for rule in RULES:
        click.echo(f"{rule.code:<6} {rule.name:<{width}} {rule.fix_availability:<9} {rule.summary}")


def _explain(code: str) -> None:
    import inspect

    info = by_code(code)
    if info is None:
        _fail(f"unknown rule `{code}` (see `sessionlint --list-rules`)")
        return
    from sessionlint.registry import rule_classes

    (rule,) = rule_classes([info])
    click.echo(f"# {rule.code} {rule.name}\n")
    click.echo(f"{rule.summary}. Fix: {rule.fix_availability.value}.\n")
    click.echo(inspect.cleandoc(rule.__doc__ or ""))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", multiple=True, metavar="CODES", help="Rule codes or prefixes to enable (comma-separated).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Rule codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule codes or prefixes to disable (comma-separated).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Read settings from FILE (pyproject.toml or a TOML file of sessionlint settings).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--exclude", multiple=True, metavar="GLOBS", help="Paths to skip (replaces the configured `exclude`).")
@click.option("--extend-exclude", multiple=True, metavar="GLOBS", help="Paths to skip on top of the configured ones.")
@click.option("--force-exclude", is_flag=True, default=None, help="Apply excludes to files named on the command line too (for pre-commit).")
@click.option("--no-respect-gitignore", is_flag=True, help="Lint files that .gitignore excludes.")
@click.option("--output-format", "--format", "output_format", type=click.Choice(FORMATS), default=None, help="How to print findings (default: text).")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, writable=True), help="Write the report to FILE instead of stdout.")
@click.option("--statistics", is_flag=True, help="Print counts per rule instead of the findings.")
@click.option("--stdin-filename", metavar="PATH", help="The path of the file read from stdin (`-`), for reporting and configuration.")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), help="Report only findings that FILE (from --write-baseline) does not record.")
@click.option("--write-baseline", "write_baseline_file", type=click.Path(dir_okay=False), help="Record today's findings in FILE and exit 0.")
@click.option("--fix", is_flag=True, help="Apply the safe fixes, rewriting the files.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply (and count as fixable) the unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and write nothing (exit 1 if there is one).")
@click.option("-q", "--quiet", is_flag=True, help="Print only one line per violation.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when violations are found.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("--explain", metavar="CODE", help="Show the documentation of one rule and exit.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, show_default="one per core", help="Worker processes.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
@click.option("--clean", is_flag=True, help="Remove the result cache (only the files sessionlint wrote there) and exit.")
@click.option("--no-prefilter", is_flag=True, hidden=True, help="Parse every file (for testing).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress and show tracebacks of internal errors.")
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
    quiet: bool,
    exit_zero: bool,
    list_rules: bool,
    explain: Optional[str],
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
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    paths = paths or (".",)
    config_paths = [stdin_filename] if paths == ("-",) and stdin_filename else list(paths)
    environment_cache_dir = os.environ.get("SESSIONLINT_CACHE_DIR") or None
    try:
        settings = _settings(
            config_paths,
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
        select_rules(settings.effective_select, settings.ignore)
        if environment_cache_dir:
            check_cache_dir(settings.cache_dir, "SESSIONLINT_CACHE_DIR", settings.root, config_paths)
        elif settings.config_file:
            check_cache_dir(settings.cache_dir, settings.config_file, settings.root, config_paths)
    except UnknownSelector as error:
        _fail(f"unknown rule selector `{error.selector}` (see `sessionlint --list-rules`)")
        return
    except ConfigError as error:
        _fail(str(error))
        return
    if clean:
        from sessionlint.cache import clean as clean_cache
        from sessionlint.cache import clean_legacy_user_files

        removed, refused = clean_cache(settings.cache_dir)
        for path in removed + clean_legacy_user_files():
            click.echo(f"Removed {path}", err=True)
        if refused is not None:
            _fail(refused)
        if not removed:
            click.echo(f"No cache at {settings.cache_dir}", err=True)
        return
    fix_mode = ("unsafe" if unsafe_fixes else "safe") if (fix or diff) else None
    _lint(paths, settings, output_format or "text", output_file, statistics, stdin_filename,
          baseline_file, write_baseline_file, quiet, exit_zero, fix_mode, diff, unsafe_fixes)


def _settings(paths, config_file, isolated, **overrides):
    if isolated:
        from sessionlint.config import Settings, with_overrides

        return with_overrides(Settings(), **overrides)
    return load_settings(paths, config_file, **overrides)


def _lint(
    paths: Tuple[str, ...],
    settings,
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
) -> None:
    from sessionlint.engine import run

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
    result = run(paths, settings, stdin=stdin, progress=_progress_bar(), fix=fix_mode)
    for problem in result.usage_errors:
        click.echo(f"sessionlint: error: {problem}", err=True)
    for warning in result.warnings:
        click.echo(f"sessionlint: warning: {warning}", err=True)
    for error in result.errors:
        if error.kind in (ErrorKind.IO, ErrorKind.INTERNAL):
            click.echo(f"sessionlint: error: {error.path}: {error.message}", err=True)
    if write_baseline_file:
        from sessionlint.baseline import write

        try:
            count = write(write_baseline_file, result.diagnostics, result.sources, settings.relative)
        except OSError as error:
            _fail(f"{write_baseline_file}: cannot write baseline: {error.strerror or error}")
        click.echo(f"Wrote {count} findings to {write_baseline_file}", err=True)
        sys.exit(EXIT_ERROR if exit_code(result) == EXIT_ERROR else EXIT_OK)
    for path, problem in result.fix_problems:
        click.echo(f"sessionlint: error: {path}: internal error: {problem} (please report it with this file)", err=True)
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
            sys.exit(EXIT_ERROR if result.fix_problems else exit_code(result, exit_zero))
    if known is not None:
        from sessionlint.baseline import apply_to_run

        covered = apply_to_run(result, known, settings.relative)
        if covered and output_format == "text" and not quiet:
            click.echo(f"{covered} findings recorded in {baseline_file} not shown", err=True)
    _report(result, output_format, output_file, statistics, quiet, unsafe)
    if result.fix_problems:
        sys.exit(EXIT_ERROR)
    sys.exit(exit_code(result, exit_zero))


def _write_fixes(result: RunResult, skip: Optional[str] = None) -> None:
    """Write every fixed file atomically; a file that changed on disk meanwhile, or cannot be
    written, keeps its original bytes and becomes an I/O error of the run. `skip`: the
    stdin pseudo-path, whose fixed text goes to stdout instead."""
    from sessionlint.diagnostics import FileError, FileResult
    from sessionlint.fixes.files import WriteError, digest, interrupts_held, write_fixed

    for path, (original, fixed, _) in sorted(result.fixes.items()):
        if path == skip:
            continue
        try:
            with interrupts_held():
                write_fixed(path, fixed, digest(original))
        except WriteError as error:
            click.echo(f"sessionlint: error: {path}: {error}", err=True)
            result.keep_original(path)
            result.files.append(FileResult(path, error=FileError(ErrorKind.IO, path, str(error))))


def _print_diff(result: RunResult) -> None:
    import difflib

    for path, (original, fixed, _) in sorted(result.fixes.items()):
        before = original.decode("utf-8", errors="replace").splitlines(keepends=True)
        after = fixed.decode("utf-8", errors="replace").splitlines(keepends=True)
        sys.stdout.writelines(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))
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
    stream=None,
) -> None:
    import importlib

    name = "statistics" if statistics else ("concise" if output_format == "text" and quiet else output_format)
    reporter = importlib.import_module(f"sessionlint.reporters.{name}")
    options = {"quiet": quiet, "sources": result.sources, "unsafe": unsafe}
    if output_file is None:
        out = stream or sys.stdout
        reporter.render(result, out, color=_use_color() and name in ("text", "concise") and out is sys.stdout, **options)
        return
    try:
        with open(output_file, "w", encoding="utf-8", newline="\n") as handle:
            reporter.render(result, handle, color=False, **options)
    except OSError as error:
        _fail(f"{output_file}: cannot write report: {error.strerror or error}")


def _progress_bar():
    """A rich progress bar on stderr for large runs on a terminal (never in CI logs or when
    stderr is piped); None otherwise."""
    if not sys.stderr.isatty() or os.environ.get("CI") or os.environ.get("NO_COLOR"):
        return None
    state = {}

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
