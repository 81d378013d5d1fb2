"""Effective settings of a run: `[tool.sessionlint]` in the nearest `pyproject.toml` (searched
upward from the linted paths) or `--config FILE`, then the command line on top.

An unknown key or a bad value raises `ConfigError(key, file, problem)`: one line on stderr and
exit code 2, never a traceback.
"""

import fnmatch
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple


class ConfigError(Exception):
    """A bad setting: becomes one line on stderr and exit code 2."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        where = f"{source}: `{key}`: " if key else f"{source}: "
        super().__init__(where + problem)
        self.key = key
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class Settings:
    select: Optional[Tuple[str, ...]] = None  # None: the default selection
    ignore: Tuple[str, ...] = ()
    extend_select: Tuple[str, ...] = ()
    # (glob, codes): codes ignored in files whose path matches the glob
    per_file_ignores: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    exclude: Tuple[str, ...] = ()  # replaces nothing built in: added to the defaults
    extend_exclude: Tuple[str, ...] = ()
    force_exclude: bool = False  # apply excludes to files named on the command line too
    respect_gitignore: bool = True
    session_factories: Tuple[str, ...] = ()  # extra names taken to be session factories
    engine_factories: Tuple[str, ...] = ()  # extra names taken to be engines / engine getters
    request_decorators: Tuple[str, ...] = ()  # extra decorators marking per-request functions
    prefilter: bool = True  # skip parsing files that cannot contain a finding
    jobs: int = 0  # worker processes; 0: one per core
    cache: bool = True
    cache_dir: str = ".sessionlint_cache"
    max_file_size: int = 4 << 20  # larger files are not linted (a notice says so)
    # the oldest SQLAlchemy version fixes and advice must work on, e.g. (1, 3); None: what
    # the project declares (project.versions.sqlalchemy_target), else 2.0
    target_sqlalchemy: Optional[Tuple[int, ...]] = None
    config_file: Optional[str] = None  # where the file settings came from
    root: str = field(default_factory=os.getcwd)  # globs are relative to this directory

    @property
    def effective_select(self) -> Optional[Tuple[str, ...]]:
        if not self.extend_select:
            return self.select
        from sessionlint.registry import DEFAULT_SELECT

        return tuple(self.select or DEFAULT_SELECT) + self.extend_select

    def relative(self, path: str) -> str:
        """`path` relative to the project root, with forward slashes, for glob matching."""
        try:
            relative = os.path.relpath(os.path.abspath(path), self.root)
        except ValueError:  # another drive on Windows
            relative = os.path.abspath(path)
        return relative.replace(os.sep, "/")

    def is_excluded(self, path: str) -> bool:
        return matches_any(self.relative(path), self.exclude + self.extend_exclude)

    def ignored_codes(self, path: str) -> Tuple[str, ...]:
        relative = self.relative(path)
        found: List[str] = []
        for pattern, codes in self.per_file_ignores:
            if matches_any(relative, (pattern,)):
                found.extend(codes)
        return tuple(found)


def matches_any(relative: str, patterns: Iterable[str]) -> bool:
    """Ruff-style globs: a pattern matches the relative path, any of its leading directories,
    or (without a `/`) any single component: `tests/`, `migrations`, `*/alembic/*.py`."""
    parts = relative.split("/")
    for pattern in patterns:
        cleaned = pattern.strip().rstrip("/")
        if cleaned.startswith("./"):
            cleaned = cleaned[2:]
        if not cleaned:
            continue
        if fnmatch.fnmatchcase(relative, cleaned):
            return True
        if "/" in cleaned:
            prefixes = ("/".join(parts[:i]) for i in range(1, len(parts)))
            if any(fnmatch.fnmatchcase(prefix, cleaned) for prefix in prefixes):
                return True
        elif any(fnmatch.fnmatchcase(part, cleaned) for part in parts):
            return True
    return False


# --- reading the file ----------------------------------------------------------------------

# key in the file -> (field, kind)
_KEYS: Dict[str, Tuple[str, str]] = {
    "select": ("select", "codes"),
    "ignore": ("ignore", "codes"),
    "extend-select": ("extend_select", "codes"),
    "per-file-ignores": ("per_file_ignores", "mapping"),
    "exclude": ("exclude", "strings"),
    "extend-exclude": ("extend_exclude", "strings"),
    "force-exclude": ("force_exclude", "bool"),
    "respect-gitignore": ("respect_gitignore", "bool"),
    "session-factories": ("session_factories", "names"),
    "engine-factories": ("engine_factories", "names"),
    "request-decorators": ("request_decorators", "names"),
    "cache-dir": ("cache_dir", "string"),
    "max-file-size": ("max_file_size", "size"),
    "target-sqlalchemy": ("target_sqlalchemy", "version"),
}
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20, "gb": 1 << 30, "gib": 1 << 30}


def _load_toml(path: str) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on older Pythons only
        import tomli as tomllib  # type: ignore[import-not-found]  # the backport, on 3.9 and 3.10 only
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError("", path, f"cannot read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError("", path, f"invalid TOML: {error}") from None


def _section(path: str, data: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """`[tool.sessionlint]` of a pyproject.toml; the whole file for any other name."""
    if os.path.basename(path) == "pyproject.toml":
        tool = data.get("tool", {})
        section = tool.get("sessionlint") if isinstance(tool, dict) else None
        if section is not None and not isinstance(section, dict):
            raise ConfigError("tool.sessionlint", path, "must be a table")
        return section
    return data


def find_config(paths: Sequence[str]) -> Optional[str]:
    """The nearest pyproject.toml with a `[tool.sessionlint]` table, upward from the first
    linted path (or the current directory)."""
    start = paths[0] if paths and paths[0] != "-" else "."
    directory = os.path.abspath(start)
    if not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    return _nearest_config(directory, {})


def _nearest_config(directory: str, known: Dict[str, Optional[str]]) -> Optional[str]:
    """The nearest pyproject.toml with a `[tool.sessionlint]` table in `directory` or above
    it; `known` remembers the answer per directory."""
    return nearest_upward(directory, known, _sessionlint_pyproject)


def _sessionlint_pyproject(directory: str) -> Optional[str]:
    candidate = os.path.join(directory, "pyproject.toml")
    if not os.path.isfile(candidate):
        return None
    try:
        with open(candidate, "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    if b"sessionlint" in text and _section(candidate, _load_toml(candidate)) is not None:
        return candidate
    return None


def nearest_upward(directory: str, known: Dict[str, Optional[str]], found_in: Callable[[str], Optional[str]]) -> Optional[str]:
    """The first answer of `found_in` for `directory` and the directories above it, up to the
    root; `known` remembers the answer for every directory on the way."""
    seen = []
    found: Optional[str] = None
    while True:
        if directory in known:
            found = known[directory]
            break
        seen.append(directory)
        found = found_in(directory)
        if found is not None:
            break
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for directory in seen:
        known[directory] = found
    return found


def _check(key: str, kind: str, value: Any, source: str) -> Any:
    def strings() -> Tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, source, "must be a list of strings")
        return tuple(value)

    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, source, "must be true or false")
        return value
    if kind == "string":
        if not isinstance(value, str) or not value:
            raise ConfigError(key, source, "must be a non-empty string")
        if "\0" in value:
            raise ConfigError(key, source, "must not contain a NUL character")
        return value
    if kind == "size":
        return parse_size(key, value, source)
    if kind == "version":
        return parse_target_version(key, value, source)
    if kind == "codes":
        codes = strings()
        _check_selectors(key, codes, source)
        return codes
    if kind == "names":
        names = strings()
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ConfigError(key, source, f"`{name}` is not a name or dotted name")
        return names
    if kind == "strings":
        return strings()
    if kind == "mapping":
        if not isinstance(value, dict):
            raise ConfigError(key, source, "must be a table of glob = [codes]")
        pairs = []
        for pattern, codes in value.items():
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise ConfigError(f"{key}.{pattern}", source, "must be a list of rule codes")
            _check_selectors(f"{key}.{pattern}", codes, source)
            pairs.append((pattern, tuple(codes)))
        return tuple(pairs)
    raise AssertionError(kind)


def parse_size(key: str, value: Any, source: str) -> int:
    """A size in bytes: a whole number, or a string such as "4MB", "512 KiB" (0: no limit)."""
    if isinstance(value, bool):
        raise ConfigError(key, source, "must be a size in bytes or a string such as \"4MB\"")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(digits) :]
        try:
            number = float(digits)
        except ValueError:
            number = -1
        if number >= 0 and unit in _SIZE_UNITS:
            return int(number * _SIZE_UNITS[unit])
    raise ConfigError(key, source, "must be a size in bytes or a string such as \"4MB\"")


def parse_target_version(key: str, value: Any, source: str) -> Tuple[int, ...]:
    """A SQLAlchemy release as a string: "1.3", "1.4.0", "2.0" -> (1, 3), (1, 4, 0), (2, 0)."""
    problem = 'must be a SQLAlchemy version as a string, such as "1.3" or "2.0"'
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem += f" (write it quoted: \"{value}\")"
        raise ConfigError(key, source, problem)
    parts = value.strip().split(".")
    if not 2 <= len(parts) <= 3 or not all(part.isdigit() and part.isascii() for part in parts):
        raise ConfigError(key, source, f"{problem}, not {value!r}")
    version = tuple(int(part) for part in parts)
    if not (0, 1) <= version < (3,):
        raise ConfigError(key, source, f"{problem}: SQLAlchemy {value} does not exist")
    return version


def _check_selectors(key: str, codes: Sequence[str], source: str) -> None:
    from sessionlint.registry import UnknownSelector, validate_selectors

    try:
        validate_selectors(codes)
    except UnknownSelector as error:
        raise ConfigError(key, source, f"unknown rule selector `{error.selector}`") from None


def read_file_settings(path: str) -> Dict[str, Any]:
    """The settings a config file gives, as Settings field values (validated)."""
    section = _section(path, _load_toml(path))
    if section is None:
        raise ConfigError("tool.sessionlint", path, "no [tool.sessionlint] table in this file")
    values: Dict[str, Any] = {}
    prefix = "tool.sessionlint." if os.path.basename(path) == "pyproject.toml" else ""
    for key, value in section.items():
        spec = _KEYS.get(key)
        if spec is None:
            known = ", ".join(sorted(_KEYS))
            raise ConfigError(prefix + key, path, f"unknown setting (known: {known})")
        field_name, kind = spec
        values[field_name] = _check(prefix + key, kind, value, path)
    return values


def load_settings(paths: Sequence[str], config_file: Optional[str] = None, **overrides: Any) -> Settings:
    """File settings (explicit or discovered from the first path), with the command line's
    `overrides` on top (only the ones given: None means "not on the command line")."""
    return settings_from(config_file if config_file is not None else find_config(paths), overrides)


def settings_from(path: Optional[str], overrides: Mapping[str, Any]) -> Settings:
    """The settings of the configuration file `path` (None: the defaults), with the command
    line's `overrides` on top."""
    values: Dict[str, Any] = {}
    if path is not None:
        values = read_file_settings(path)
        values["config_file"] = path
        values["root"] = os.path.dirname(os.path.abspath(path))
        cache_dir = values.get("cache_dir")
        if cache_dir is not None and not os.path.isabs(cache_dir):
            values["cache_dir"] = os.path.join(values["root"], cache_dir)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    return Settings(**values)


class Configuration:
    """The settings of each linted file: those of the nearest `pyproject.toml` with a
    `[tool.sessionlint]` table above it (as Ruff does), or of one file for all (`--config`),
    or of none (`--isolated`), with the command line's overrides on top. Files are read once
    and their settings shared by every file under them. Raises ConfigError for a bad file
    when a linted file first needs it."""

    def __init__(self, config_file: Optional[str] = None, isolated: bool = False, **overrides: Any) -> None:
        self.explicit = config_file
        self.isolated = isolated
        self.overrides = {k: v for k, v in overrides.items() if v is not None}
        self._nearest: Dict[str, Optional[str]] = {}
        self._settings: Dict[Optional[str], Settings] = {}

    @classmethod
    def fixed(cls, settings: Settings) -> "Configuration":
        """The same settings for every file (scripts, tests)."""
        configuration = cls(isolated=True)
        configuration._settings[None] = settings
        return configuration

    def config_file_for(self, path: str, is_file: Optional[bool] = None) -> Optional[str]:
        if self.isolated:
            return None
        if self.explicit is not None:
            return self.explicit
        directory = os.path.abspath(path)
        if is_file or (is_file is None and not os.path.isdir(directory)):
            directory = os.path.dirname(directory)
        return _nearest_config(directory, self._nearest)

    def for_path(self, path: str, is_file: Optional[bool] = None) -> Settings:
        """The settings that apply to the file or directory `path` (`is_file`: whether the
        caller knows it is a file, as of a discovered one, or a directory; None: a stat
        tells)."""
        config = self.config_file_for(path, is_file)
        settings = self._settings.get(config)
        if settings is None:
            settings = self._settings[config] = settings_from(config, self.overrides)
        return settings

    @property
    def files_read(self) -> List[str]:
        return sorted(path for path in self._settings if path is not None)


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
