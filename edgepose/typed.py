"""Mappings (YAML / JSON) -> frozen dataclasses: unknown keys rejected with a close-match suggestion, missing
required keys named, values checked against the field defaults (numbers, strings, lists -> tuples)."""
from __future__ import annotations

import dataclasses
import typing

from .errors import ConfigError, did_you_mean


def from_mapping(cls, data, where: str = "", error: type[Exception] = ConfigError):
    """Build dataclass `cls` from `data`, recursing into dataclass-typed fields; `where` prefixes key names."""
    label = where or cls.__name__
    if not isinstance(data, dict):
        raise error(f"'{label}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else key
        if key not in fields:
            raise error(f"unknown key '{full}'.{did_you_mean(key, fields)} Valid keys: {sorted(fields)}")
        if dataclasses.is_dataclass(hints[key]):
            values[key] = from_mapping(hints[key], value, full, error)
        else:
            values[key] = _coerce(value, _default(fields[key]), full, error)
    missing = [n for n, f in fields.items() if n not in values and _default(f) is dataclasses.MISSING]
    if missing:
        raise error(f"'{label}' is missing required key(s) {missing}")
    return cls(**values)


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _coerce(value, default, where: str, error: type[Exception]):
    if isinstance(default, bool) or default is None or default is dataclasses.MISSING:
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise error(f"'{where}' must be a list, got {value!r}")
        return tuple(value)
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or (isinstance(default, int) and isinstance(value, float) and value != int(value)):
            raise error(f"'{where}' must be a {'whole number' if isinstance(default, int) else 'number'}, got {value!r}")
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            raise error(f"'{where}' must be a number, got {value!r}") from None
    if isinstance(default, str) and not isinstance(value, str):
        raise error(f"'{where}' must be a string, got {value!r}")
    return value
