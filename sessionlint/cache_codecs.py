"""The shapes the result cache stores (sessionlint.cache): every table's entries encoded to
plain JSON values and decoded back, each decoded value checked for the shape this version
writes; anything else raises CacheError, and the cache file is then not used."""

from typing import Any, Callable, Dict, List, Optional, Tuple

from sessionlint.diagnostics import (
    Applicability,
    Confidence,
    Diagnostic,
    ErrorKind,
    FileError,
    FileResult,
    Fix,
    Location,
)
from sessionlint.knowledge import FAILING_METHODS, HELPER_STATEMENTS


class CacheError(ValueError):
    """A stored entry does not have the shape this version writes."""



# --- the stored shapes: every entry is checked when it is read ---------------------------


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise CacheError(what)


def _string(value: Any) -> str:
    _expect(type(value) is str, "a string")
    return value


def _int(value: Any) -> int:
    _expect(type(value) is int and 0 <= value < 1 << 31, "a small integer")
    return value


def _bool(value: Any) -> bool:
    _expect(type(value) is bool, "a boolean")
    return value


def _list(value: Any, length: Optional[int] = None) -> List[Any]:
    _expect(type(value) is list and (length is None or len(value) == length), "a list")
    return value


def _strings(value: Any) -> Tuple[str, ...]:
    _expect(type(value) is list and all(type(item) is str for item in value), "a list of strings")
    return tuple(value)


def _dict(value: Any) -> Dict[str, Any]:
    _expect(type(value) is dict, "an object")
    return value


def _encode_result(result: Any) -> List[Any]:
    diagnostics = [
        [
            d.code, d.name, d.message, d.path, d.start.line, d.start.column, d.end.line, d.end.column,
            d.help, None if d.fix is None else [d.fix.applicability.value, d.fix.title], d.confidence.value,
        ]
        for d in result.diagnostics
    ]
    error = result.error
    stored_error = None if error is None else [error.kind.value, error.path, error.message, error.line, error.column]
    return [result.path, diagnostics, stored_error, result.parsed]


def _decode_result(value: Any) -> FileResult:
    path, diagnostics, error, parsed = _list(value, 4)
    found = []
    for item in _list(diagnostics):
        code, name, message, where, line, column, end_line, end_column, help_text, fix, confidence = _list(item, 11)
        decoded_fix = None
        if fix is not None:
            applicability, title = _list(fix, 2)
            decoded_fix = Fix(Applicability(_string(applicability)), _string(title))
        found.append(
            Diagnostic(
                _string(code), _string(name), _string(message), _string(where),
                Location(_int(line), _int(column)), Location(_int(end_line), _int(end_column)),
                _string(help_text), decoded_fix, Confidence(_string(confidence)),
            )
        )
    decoded_error = None
    if error is not None:
        kind, where, message, line, column = _list(error, 5)
        decoded_error = FileError(ErrorKind(_string(kind)), _string(where), _string(message), _int(line), _int(column))
    return FileResult(_string(path), tuple(found), decoded_error, _bool(parsed))


def _encode_file_entry(entry: Tuple[str, str, Any]) -> List[Any]:
    run_key, digest, result = entry
    return [run_key, digest, _encode_result(result)]


def _decode_file_entry(value: Any) -> Tuple[str, str, Any]:
    run_key, digest, result = _list(value, 3)
    return _string(run_key), _string(digest), _decode_result(result)


def _encode_scan(scan: Any) -> List[Any]:
    factories, imports, returned_calls, aliases, registries, yielded_calls, star_imports, released, builds, holders, opened_calls = scan
    return [
        {name: [f.kind.value, f.is_async, f.origin.name, f.detail] for name, f in factories.items()},
        {name: [b.module, b.level, b.original] for name, b in imports.items()},
        {name: [[callee, is_async] for callee, is_async in calls] for name, calls in returned_calls.items()},
        dict(aliases),
        sorted(registries),
        {name: [[callee, is_async] for callee, is_async in calls] for name, calls in yielded_calls.items()},
        [[module, level] for module, level in star_imports],
        list(released),
        list(builds),
        dict(holders),
        {name: [[callee, is_async] for callee, is_async in calls] for name, calls in opened_calls.items()},
    ]


def _decode_scan(value: Any) -> Any:
    from sessionlint.knowledge import FactoryKind, Origin
    from sessionlint.project.model import Factory, ImportBinding

    factories, imports, returned_calls, aliases, registries, yielded_calls, star_imports, released, builds, holders, opened_calls = _list(value, 11)
    decoded_factories = {}
    for name, factory in _dict(factories).items():
        kind, is_async, origin, detail = _list(factory, 4)
        _expect(_string(origin) in Origin.__members__, "a factory origin")
        decoded_factories[name] = Factory(FactoryKind(_string(kind)), _bool(is_async), Origin[origin], _string(detail))
    decoded_imports = {}
    for name, binding in _dict(imports).items():
        module, level, original = _list(binding, 3)
        decoded_imports[name] = ImportBinding(_string(module), _int(level), _string(original))
    decoded_aliases = {name: _bool(is_async) for name, is_async in _dict(aliases).items()}
    decoded_registries = {_string(name) for name in _list(registries)}
    decoded_stars = []
    for pair in _list(star_imports):
        module, level = _list(pair, 2)
        decoded_stars.append((_string(module), _int(level)))
    return (
        decoded_factories, decoded_imports, _decode_calls(returned_calls), decoded_aliases, decoded_registries,
        _decode_calls(yielded_calls), tuple(decoded_stars), _strings(released),
        _strings(builds),
        {name: _bool(closes) for name, closes in _dict(holders).items()},
        _decode_calls(opened_calls),
    )


def _decode_calls(value: Any) -> Dict[str, Tuple[Tuple[str, bool], ...]]:
    decoded = {}
    for name, calls in _dict(value).items():
        pairs = []
        for pair in _list(calls):
            callee, is_async = _list(pair, 2)
            pairs.append((_string(callee), _bool(is_async)))
        decoded[name] = tuple(pairs)
    return decoded


def _encode_text(text: Any) -> List[Any]:
    imported, depends, can_bind, serves, committers, (runners, lazy, properties, closers), defines = text
    return [
        list(imported), list(depends), can_bind, serves, [[name, [[position, param] for position, param in where], method] for name, (where, method) in committers],
        [[[name, position] for name, position in runners], list(lazy), list(properties), [[name, list(positions), list(names)] for name, positions, names in closers]],
        list(defines),
    ]


def _decode_text(value: Any) -> Any:
    imported, depends, can_bind, serves, committers, runner_facts, defines = _list(value, 7)
    decoded = []
    for entry in _list(committers):
        name, where, method = _list(entry, 3)
        params = []
        for pair in _list(where):
            position, param = _list(pair, 2)
            _expect(type(position) is int and -1 <= position < 1 << 31, "a parameter position")  # -1: keyword-only
            params.append((position, _string(param)))
        _expect(_string(method) in FAILING_METHODS | HELPER_STATEMENTS, "a commit method")
        decoded.append((_string(name), (tuple(params), _string(method))))
    runners_value, lazy, properties, closers_value = _list(runner_facts, 4)
    closers = []
    for entry in _list(closers_value):
        name, positions, names = _list(entry, 3)
        for position in _list(positions):
            _expect(type(position) is int and 0 <= position < 1 << 31, "a parameter position")
        closers.append((_string(name), tuple(_list(positions)), _strings(names)))
    runners = []
    for entry in _list(runners_value):
        name, position = _list(entry, 2)
        _expect(type(position) is int and 0 <= position < 1 << 31, "a parameter position")
        runners.append((_string(name), position))
    return (
        _strings(imported), _strings(depends), _bool(can_bind), _bool(serves),
        tuple(decoded), (tuple(runners), _strings(lazy), _strings(properties), tuple(closers)),
        _strings(defines),
    )


def _encode_check(reason: Any) -> List[Any]:
    attribute, modules = reason
    return [attribute, [[module, level] for module, level in modules]]


def _decode_check(value: Any) -> Any:
    from sessionlint.project.builder import NO_REASON

    attribute, modules = _list(value, 2)
    pairs = []
    for pair in _list(modules):
        module, level = _list(pair, 2)
        pairs.append((_string(module), _int(level)))
    reason = (_bool(attribute), tuple(pairs))
    return NO_REASON if reason == NO_REASON else reason


def _encode_sites(sites: Any) -> List[Any]:
    return [[caller, timing, reason, callee, list(binding)] for caller, timing, reason, callee, binding in sites]


def _decode_sites(value: Any) -> Any:
    sites = []
    for site in _list(value):
        caller, timing, reason, callee, binding = _list(site, 5)
        module, level, original = _list(binding, 3)
        _expect(type(level) is int and -1 <= level < 64, "an import level, or -1 for the module's own")
        sites.append((_string(caller), _string(timing), _string(reason), _string(callee), (_string(module), level, _string(original))))
    return sites


def _encode_requests(found: Any) -> List[Any]:
    return [[path, qualified, why] for (path, qualified), why in sorted(found.items())]


def _decode_requests(value: Any) -> Any:
    found = {}
    for entry in _list(value):
        path, qualified, why = _list(entry, 3)
        found[(_string(path), _string(qualified))] = _string(why)
    return found


def _encode_stamp(entry: Any) -> List[Any]:
    stamp, digest, mark = entry
    return [*stamp, digest, mark]


def _decode_stamp(value: Any) -> Any:
    *stamp, digest, mark = _list(value, 7)
    for number in stamp:
        _expect(type(number) is int and -(1 << 63) <= number < 1 << 64, "a file's status number")
    return tuple(stamp), _string(digest), _bool(mark)


def _encode_state(summary: Any) -> List[Any]:
    index_key, own = summary
    return [index_key, [[path, key] for path, key in sorted(own.items())]]


def _decode_state(value: Any) -> Any:
    index_key, own = _list(value, 2)
    found = {}
    for pair in _list(own):
        path, key = _list(pair, 2)
        found[_string(path)] = _string(key)
    return _string(index_key), found


# table -> (encode an entry, decode an entry); the keys of `checks` and `calls` are
# (names, digest)
_CODECS: Dict[str, Tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "files": (_encode_file_entry, _decode_file_entry),
    "stamps": (_encode_stamp, _decode_stamp),
    "states": (_encode_state, _decode_state),
    "scans": (_encode_scan, _decode_scan),
    "texts": (_encode_text, _decode_text),
    "checks": (_encode_check, _decode_check),
    "calls": (_encode_sites, _decode_sites),
    "requests": (_encode_requests, _decode_requests),
}
_KEY_SEPARATOR = "\x00"
_PAIR_KEYED = ("checks", "calls")


def _encode_key(table: str, key: Any) -> str:
    return _KEY_SEPARATOR.join(key) if table in _PAIR_KEYED else key


def _decode_key(table: str, key: str) -> Any:
    if table in _PAIR_KEYED:
        names, separator, digest = key.rpartition(_KEY_SEPARATOR)
        _expect(bool(separator), "a (names, digest) key")
        return names, digest
    return key
