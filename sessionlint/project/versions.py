"""Which versions of the frameworks whose behaviour decides a finding a project runs on, read
from its dependency declarations at the project root: a lock file's exact version (uv.lock,
poetry.lock, Pipfile.lock, pdm.lock), else the range its pyproject.toml, setup.cfg, Pipfile or
requirements files allow. Nothing is imported or executed; a file that does not parse is
skipped.

`sqlalchemy_target` turns them into the one SQLAlchemy version the fixes and the advice are
written for: the oldest one the project supports (a fix must work on every one of them)."""

import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

Version = Tuple[int, ...]

# the packages whose version a rule asks about
PACKAGES = ("fastapi", "sqlalchemy")
_MAX_BYTES = 4 * 1024 * 1024  # a dependency file larger than this is not read


@dataclass(frozen=True)
class VersionRange:
    """The versions a project allows: `low` <= v < `high` (None: unbounded)."""

    low: Optional[Version] = None
    high: Optional[Version] = None

    @property
    def exact(self) -> bool:
        return self.low is not None and self.high is not None and self.high == _next(self.low)

    def within(self, low: Version, high: Version) -> bool:
        """Whether every allowed version lies in [low, high)."""
        return self.low is not None and self.high is not None and self.low >= low and self.high <= high

    def __str__(self) -> str:
        if self.exact:
            return ".".join(map(str, self.low or ()))
        parts = []
        if self.low is not None:
            parts.append(">=" + ".".join(map(str, self.low)))
        if self.high is not None:
            parts.append("<" + ".".join(map(str, self.high)))
        return ",".join(parts) or "any"


def parse_version(text: str) -> Optional[Version]:
    """`0.115.6` -> (0, 115, 6); pre-release and local parts are dropped."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if match is None:
        return None
    return tuple(int(p) for p in match.group(1).split("."))


def _next(version: Version) -> Version:
    """The smallest version above every release `version` names exactly (`0.115.6` ->
    `0.115.7`)."""
    return version[:-1] + (version[-1] + 1,)


def _pad(version: Version) -> Version:
    return version + (0,) * (3 - len(version)) if len(version) < 3 else version


def range_of(specifier: str) -> VersionRange:
    """The range a PEP 440 specifier set allows (`>=0.100,<0.120`, `==0.115.*`, `~=0.110`,
    `^0.110` as Poetry writes it)."""
    low: Optional[Version] = None
    high: Optional[Version] = None
    for part in specifier.split(","):
        part = part.strip()
        match = re.match(r"(===|==|>=|<=|~=|!=|>|<|\^|~)?\s*(.+)", part)
        if match is None:
            continue
        operator, text = match.group(1) or "==", match.group(2).strip()
        wildcard = text.endswith(".*")
        version = parse_version(text[:-2] if wildcard else text)
        if version is None:
            continue
        if operator in ("==", "===") and wildcard:
            lower, upper = version, version[:-1] + (version[-1] + 1,)
        elif operator in ("==", "==="):
            lower, upper = _pad(version), _next(_pad(version))
        elif operator == ">=":
            lower, upper = version, None
        elif operator == ">":
            lower, upper = _next(_pad(version)), None
        elif operator == "<":
            lower, upper = None, version
        elif operator == "<=":
            lower, upper = None, _next(_pad(version))
        elif operator == "~=" and len(version) > 1:
            lower, upper = version, version[:-2] + (version[-2] + 1,)
        elif operator == "^":
            first = next((i for i, p in enumerate(version) if p), len(version) - 1)
            lower, upper = version, version[:first] + (version[first] + 1,)
        elif operator == "~":
            lower, upper = version, (version[:1] + (version[1] + 1,)) if len(version) > 1 else (version[0] + 1,)
        else:
            continue
        if lower is not None and (low is None or lower > low):
            low = lower
        if upper is not None and (high is None or upper < high):
            high = upper
    return VersionRange(low, high)


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(\(?[^;#@]*\)?)")


def _requirement(line: str) -> Optional[Tuple[str, str]]:
    """`fastapi[all]>=0.100 ; python_version>"3.8"` -> ("fastapi", ">=0.100")."""
    match = _REQUIREMENT.match(line)
    if match is None:
        return None
    return match.group(1).lower().replace("_", "-"), match.group(2).strip().strip("()").strip()


def _toml(text: str) -> Dict[str, Any]:
    """The table of a TOML text; empty when it does not parse."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on older Pythons only
        import tomli as tomllib  # type: ignore[import-not-found]  # the backport, on 3.9 and 3.10 only
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return {}


def _table(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read(path: str) -> Optional[str]:
    try:
        if os.path.getsize(path) > _MAX_BYTES:
            return None
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None


def _from_lock(root: str) -> Dict[str, VersionRange]:
    found: Dict[str, VersionRange] = {}
    for package, allowed, _ in _locked(root):
        found.setdefault(package, allowed)
    return found


def _locked(root: str) -> Iterable[Tuple[str, VersionRange, str]]:
    """(package, the version locked, file name) of PACKAGES in the lock files at `root`."""
    for name in ("uv.lock", "poetry.lock", "pdm.lock"):
        text = _read(os.path.join(root, name))
        if text is None:
            continue
        data = _toml(text)
        for package in data.get("package", ()) if isinstance(data.get("package"), list) else ():
            if isinstance(package, dict) and isinstance(package.get("name"), str) and isinstance(package.get("version"), str):
                key = package["name"].lower().replace("_", "-")
                version = parse_version(package["version"])
                if key in PACKAGES and version is not None:
                    yield key, VersionRange(_pad(version), _next(_pad(version))), name
    text = _read(os.path.join(root, "Pipfile.lock"))
    if text is not None:
        try:
            lock = json.loads(text)
        except (ValueError, RecursionError):
            lock = None
        if isinstance(lock, dict):
            for section in ("default", "develop"):
                packages = lock.get(section)
                if not isinstance(packages, dict):
                    continue
                for key, value in packages.items():
                    if key.lower() in PACKAGES and isinstance(value, dict) and isinstance(value.get("version"), str):
                        yield key.lower(), range_of(value["version"]), "Pipfile.lock"


def _declared(root: str) -> Iterable[Tuple[str, str]]:
    """(package, specifier) of the requirements declared at `root`."""
    for package, specifier, _ in _declarations(root):
        yield package, specifier


def _declarations(root: str) -> Iterable[Tuple[str, str, str]]:
    """(package, specifier, file name) of the requirements declared at `root`."""
    for package, specifier in _from_pyproject(root):
        yield package, specifier, "pyproject.toml"
    for package, specifier in _from_setup_cfg(root):
        yield package, specifier, "setup.cfg"
    for package, specifier in _from_pipfile(root):
        yield package, specifier, "Pipfile"
    try:
        names = sorted(os.listdir(root))
    except OSError:
        names = []
    for name in names:
        if re.fullmatch(r"requirements[\w.-]*\.(?:txt|in)", name):
            text = _read(os.path.join(root, name))
            for line in (text or "").splitlines():
                found = _requirement(line) if not line.lstrip().startswith(("#", "-")) else None
                if found is not None:
                    yield found[0], found[1], name


def _from_pyproject(root: str) -> Iterable[Tuple[str, str]]:
    text = _read(os.path.join(root, "pyproject.toml"))
    if text is not None:
        data = _toml(text)
        project = _table(data.get("project"))
        lines: List[str] = [d for d in project.get("dependencies", ()) if isinstance(d, str)]
        optional = project.get("optional-dependencies")
        if isinstance(optional, dict):
            lines += [d for group in optional.values() if isinstance(group, list) for d in group if isinstance(d, str)]
        for line in lines:
            found = _requirement(line)
            if found is not None:
                yield found
        poetry = _table(_table(data.get("tool")).get("poetry"))
        for key, value in _table(poetry.get("dependencies")).items():
            spec = value.get("version") if isinstance(value, dict) else value
            if isinstance(spec, str):
                yield key.lower().replace("_", "-"), spec


def _from_setup_cfg(root: str) -> Iterable[Tuple[str, str]]:
    """`install_requires` and `extras_require` of setup.cfg's `[options]` (one requirement a
    line, or separated by `;` on one line as setuptools also reads them)."""
    text = _read(os.path.join(root, "setup.cfg"))
    if text is None:
        return
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except (configparser.Error, ValueError):
        return
    values: List[str] = []
    if parser.has_option("options", "install_requires"):
        values.append(parser.get("options", "install_requires"))
    if parser.has_section("options.extras_require"):
        values += [value for _, value in parser.items("options.extras_require")]
    for value in values:
        for line in value.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                found = _requirement(line)
                if found is not None:
                    yield found


def _from_pipfile(root: str) -> Iterable[Tuple[str, str]]:
    """`[packages]` and `[dev-packages]` of a Pipfile (TOML): `name = "spec"` or a table
    with `version`; `"*"` allows any version."""
    text = _read(os.path.join(root, "Pipfile"))
    if text is None:
        return
    data = _toml(text)
    for section in ("packages", "dev-packages"):
        for key, value in _table(data.get(section)).items():
            spec = value.get("version") if isinstance(value, dict) else value
            if isinstance(spec, str):
                yield key.lower().replace("_", "-"), spec


def project_versions(root: Optional[str]) -> Dict[str, VersionRange]:
    """The versions of PACKAGES the project at `root` runs on, where its files say."""
    if root is None or not os.path.isdir(root):
        return {}
    found = _from_lock(root)
    for package, specifier in _declared(root):
        if package in PACKAGES and package not in found:
            found[package] = range_of(specifier)
        elif package in PACKAGES and not found[package].exact:
            declared = range_of(specifier)
            current = found[package]
            low = max((v for v in (current.low, declared.low) if v is not None), default=None)
            high = min((v for v in (current.high, declared.high) if v is not None), default=None)
            found[package] = VersionRange(low, high)
    return found


# --- the SQLAlchemy version the fixes are written for ----------------------------------------

# When nothing is configured or declared: the current major release.
DEFAULT_SQLALCHEMY: Version = (2, 0)


@dataclass(frozen=True)
class SqlalchemyTarget:
    """The oldest SQLAlchemy version the project supports, which every fix and every piece
    of advice must work on, and where that came from (for `--show-settings`)."""

    version: Version = DEFAULT_SQLALCHEMY
    source: str = "default: nothing configured or declared"

    def at_least(self, *version: int) -> bool:
        return self.version >= version

    def __str__(self) -> str:
        return ".".join(map(str, self.version))


def sqlalchemy_target(root: Optional[str], configured: Optional[Version], config_file: Optional[str] = None) -> SqlalchemyTarget:
    """`target-sqlalchemy` when configured; else the lowest version the project's declared
    requirements admit (the lowest over all of them: a library's pyproject.toml may allow
    1.3 while its requirements-dev.txt pins 2.0, and the fix must work for its 1.3 users;
    a range with no lower bound admits the oldest releases, taken as 0); else the version a
    lock file holds; else DEFAULT_SQLALCHEMY. A requirement without any version bound
    (`sqlalchemy`) declares no version."""
    if configured is not None:
        return SqlalchemyTarget(configured, f"configured in {config_file}" if config_file else "configured")
    if root is None or not os.path.isdir(root):
        return SqlalchemyTarget()
    lowest: Optional[Tuple[Version, str]] = None
    for package, specifier, name in _declarations(root):
        if package != "sqlalchemy":
            continue
        allowed = range_of(specifier)
        if allowed.low is None and allowed.high is None:
            continue
        low = allowed.low if allowed.low is not None else (0,)
        if lowest is None or low < lowest[0]:
            lowest = (low, f"declared in {os.path.join(root, name)}: sqlalchemy {specifier.strip()}")
    if lowest is not None:
        return SqlalchemyTarget(lowest[0], lowest[1])
    for package, allowed, name in _locked(root):
        if package == "sqlalchemy" and allowed.low is not None:
            return SqlalchemyTarget(allowed.low, f"locked in {os.path.join(root, name)}: sqlalchemy {allowed}")
    return SqlalchemyTarget()
