"""Which versions of the frameworks whose behaviour decides a finding a project runs on, read
from its dependency declarations at the project root: a lock file's exact version (uv.lock,
poetry.lock, Pipfile.lock, pdm.lock), else the range its pyproject.toml or requirements files
allow. Nothing is imported or executed; a file that does not parse is skipped."""

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
                    found.setdefault(key, VersionRange(_pad(version), _next(_pad(version))))
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
                        found.setdefault(key.lower(), range_of(value["version"]))
    return found


def _declared(root: str) -> Iterable[Tuple[str, str]]:
    """(package, specifier) of the requirements declared at `root`."""
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
                    yield found


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
