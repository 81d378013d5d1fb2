"""Command line: options -> Settings, run the engine, pick a reporter, exit code.

Only this module and `reporters/` write to the user. libcst and rich are imported lazily so
that `--version`, `--help` and `--list-rules` start fast.
"""

import logging
import os
import sys
from typing import Optional, Sequence, Tuple

import click

from sessionlint import __version__
from sessionlint.config import ConfigError, Settings
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
@click.option("--ignore", multiple=True, metavar="CODES", help="Rule codes or prefixes to disable (comma-separated).")
@click.option("-q", "--quiet", is_flag=True, help="Print only one line per violation.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when violations are found.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("--explain", metavar="CODE", help="Show the documentation of one rule and exit.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default="one per core", help="Worker processes.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
@click.option("--clean", is_flag=True, help="Remove the result cache and exit.")
@click.option("--no-prefilter", is_flag=True, hidden=True, help="Parse every file (for testing).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress and show tracebacks of internal errors.")
@click.version_option(__version__, "--version", prog_name="sessionlint", message="%(prog)s %(version)s")
def main(
    paths: Tuple[str, ...],
    select: Tuple[str, ...],
    ignore: Tuple[str, ...],
    quiet: bool,
    exit_zero: bool,
    list_rules: bool,
    explain: Optional[str],
    jobs: int,
    no_cache: bool,
    clean: bool,
    no_prefilter: bool,
    verbose: bool,
) -> None:
    """Find SQLAlchemy session misuse in PATHS (default: the current directory)."""
    if list_rules:
        _list_rules()
        return
    if explain:
        _explain(explain)
        return
    cache_dir = os.environ.get("SESSIONLINT_CACHE_DIR") or ".sessionlint_cache"
    if clean:
        from sessionlint.cache import clean as clean_cache

        removed = clean_cache(cache_dir)
        click.echo(f"Removed {cache_dir}" if removed else f"No cache at {cache_dir}", err=True)
        return
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        settings = Settings(
            select=_split(select) or None,
            ignore=_split(ignore),
            prefilter=not no_prefilter,
            jobs=jobs,
            cache=not no_cache,
            cache_dir=cache_dir,
        )
        select_rules(settings.select, settings.ignore)
    except UnknownSelector as error:
        _fail(f"unknown rule selector `{error.selector}` (see `sessionlint --list-rules`)")
        return
    except ConfigError as error:
        _fail(str(error))
        return
    from sessionlint.engine import run

    result = run(paths or (".",), settings)
    for problem in result.usage_errors:
        click.echo(f"sessionlint: error: {problem}", err=True)
    for error in result.errors:
        if error.kind in (ErrorKind.IO, ErrorKind.INTERNAL):
            click.echo(f"sessionlint: error: {error.path}: {error.message}", err=True)
    from sessionlint.reporters.text import render

    render(result, sys.stdout, color=_use_color(), quiet=quiet, sources=result.sources)
    sys.exit(exit_code(result, exit_zero))
