"""Plain data that leaves the engine: diagnostics, fixes and per-file results.

Nothing here imports libcst, click or rich, so reporters and the CLI can use these types
without paying for the parser.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Tuple


def display_path(path: str) -> str:
    """`path` as text any output can hold: bytes of a file name that are not UTF-8 (kept by
    Python as surrogate escapes) are shown as `\\xNN`."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Applicability(Enum):
    """How safe a fix is: SAFE is applied by `--fix`, UNSAFE only with `--unsafe-fixes`."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    DISPLAY_ONLY = "display-only"


class FixAvailability(Enum):
    """Whether a rule can offer a fix: declared per rule, checked against what it emits."""

    NONE = "none"
    SOMETIMES = "sometimes"
    ALWAYS = "always"


class Confidence(Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Location:
    """A 1-based line and a 1-based column, as editors and Ruff show them."""

    line: int
    column: int


@dataclass(frozen=True)
class Fix:
    """A rewrite offered with a diagnostic. The edits live with the engine's tree; what
    crosses process boundaries is the title and the applicability."""

    applicability: Applicability
    title: str


def is_fixable(diagnostic: "Diagnostic", unsafe: bool) -> bool:
    """The one definition of "fixable", for every reporter and for `--fix`: a fix that
    `--fix` applies (a safe one), or with `--unsafe-fixes` (`unsafe`) an unsafe one too."""
    fix = diagnostic.fix
    if fix is None:
        return False
    return fix.applicability is Applicability.SAFE or (unsafe and fix.applicability is Applicability.UNSAFE)


@dataclass(frozen=True)
class Diagnostic:
    code: str
    name: str
    message: str
    path: str
    start: Location
    end: Location
    help: str = ""
    fix: Optional[Fix] = None
    confidence: Confidence = Confidence.HIGH

    @property
    def sort_key(self) -> Tuple[str, int, int, str]:
        return (self.path, self.start.line, self.start.column, self.code)


class ErrorKind(Enum):
    """Per-file problems that are not findings about the code's sessions."""

    SYNTAX = "syntax-error"
    IO = "io-error"
    ENCODING = "encoding-error"
    INTERNAL = "internal-error"


@dataclass(frozen=True)
class FileError:
    kind: ErrorKind
    path: str
    message: str
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class FileResult:
    path: str
    diagnostics: Tuple[Diagnostic, ...] = ()
    error: Optional[FileError] = None
    parsed: bool = False


@dataclass
class RunResult:
    files: list = field(default_factory=list)  # List[FileResult]
    usage_errors: list = field(default_factory=list)  # List[str]: bad paths, config
    warnings: list = field(default_factory=list)  # List[str]: one line each (a damaged cache)
    sources: dict = field(default_factory=dict)  # path -> bytes, for files with findings
    suppressed: int = 0  # findings hidden by `# noqa` / `# sessionlint: ignore`
    # --fix / --diff: path -> (original bytes, fixed bytes, {code: fixes applied})
    fixes: dict = field(default_factory=dict)
    fix_problems: list = field(default_factory=list)  # (path, message): a round that failed
    unfixed: dict = field(default_factory=dict)  # path -> FileResult of the original text
    # (project root or None, configuration file or None) of each project the run met
    projects: list = field(default_factory=list)

    def keep_original(self, path: str) -> None:
        """The fixed text of `path` was not written: report the original's findings."""
        original = self.fixes.pop(path)[0]
        self.sources[path] = original
        self.files = [self.unfixed.get(path, f) if f.path == path else f for f in self.files]

    @property
    def fixed_count(self) -> int:
        return sum(sum(counts.values()) for _, _, counts in self.fixes.values())

    @property
    def diagnostics(self) -> Tuple[Diagnostic, ...]:
        found = [d for result in self.files for d in result.diagnostics]
        return tuple(sorted(found, key=lambda d: d.sort_key))

    @property
    def errors(self) -> Tuple[FileError, ...]:
        return tuple(result.error for result in self.files if result.error is not None)

    @property
    def files_with_findings(self) -> int:
        return sum(1 for result in self.files if result.diagnostics)
