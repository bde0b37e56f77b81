"""Mappings (YAML / JSON) -> frozen dataclasses: unknown keys rejected with a close-match suggestion, missing
required keys named, values checked against the field defaults (numbers, strings, lists -> tuples) and against the
numeric range a field declares (`field(default=..., metadata=at_least(1))`) or the names a string field allows
(`metadata=one_of("exact", "aligned")`)."""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

from .errors import ConfigError, did_you_mean


def read_utf8(path, what: str, error: type[Exception] = ConfigError) -> str:
    """The text of a YAML/JSON settings file, or `error` naming it when it is not UTF-8 text (a binary or a file
    saved in another encoding)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} '{path}' is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None


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
            check_range(fields[key], values[key], full, error)
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
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise error(f"'{where}' must be true or false, got {value!r}")
        return value
    if default is None or default is dataclasses.MISSING:
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise error(f"'{where}' must be a list, got {value!r}")
        return tuple(value)
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or (isinstance(default, int) and isinstance(value, float)
                                       and (not math.isfinite(value) or value != int(value))):
            raise error(f"'{where}' must be a {'whole number' if isinstance(default, int) else 'number'}, got {value!r}")
        try:
            return type(default)(value)
        except (TypeError, ValueError, OverflowError):
            raise error(f"'{where}' must be a number, got {value!r}") from None
    if isinstance(default, str) and not isinstance(value, str):
        raise error(f"'{where}' must be a string, got {value!r}")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise error(f"'{where}' must be a mapping, got {value!r}")
    return value


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric field (or of every element of a tuple field): lo..hi, each end open or closed,
    always finite; `whole` asks for integers."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    whole: bool = False

    def holds(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.whole and value != int(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __str__(self) -> str:
        parts = []
        if self.lo != -math.inf:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi != math.inf:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        kind = "a whole number" if self.whole else "a finite number"
        return f"{kind} {' and '.join(parts)}" if parts else kind


def at_least(lo: float, whole: bool = False) -> dict:
    """Field metadata: value >= lo."""
    return {"range": Range(lo=lo, whole=whole)}


def above(lo: float) -> dict:
    """Field metadata: value > lo."""
    return {"range": Range(lo=lo, lo_open=True)}


def between(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False, whole: bool = False) -> dict:
    """Field metadata: lo <= value <= hi (either end open when asked)."""
    return {"range": Range(lo, hi, lo_open, hi_open, whole)}


def one_of(*choices: str) -> dict:
    """Field metadata: a string that must be one of `choices`."""
    return {"choices": tuple(choices)}


def check_range(field: dataclasses.Field, value, where: str, error: type[Exception] = ConfigError) -> None:
    """Raise `error` naming the key, the value and the valid range (or names) when `value` (each element of a tuple)
    is outside what `field` declares in its metadata; None passes for optional fields."""
    choices = field.metadata.get("choices")
    if choices is not None and value is not None and value not in choices:
        raise error(f"'{where}' = {value!r} is not one of {', '.join(choices)}.{did_you_mean(str(value), choices)}")
    rng = field.metadata.get("range")
    if rng is None or value is None:
        return
    for item in value if isinstance(value, (tuple, list)) else (value,):
        if not rng.holds(item):
            each = "each entry " if isinstance(value, (tuple, list)) else ""
            raise error(f"'{where}' = {value!r} is out of range: {each}must be {rng}")


def check_ranges(obj, where: str = "", error: type[Exception] = ConfigError) -> None:
    """check_range over every field of dataclass `obj`, recursing into nested dataclasses (for objects built in
    Python rather than through from_mapping)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        full = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            check_ranges(value, full, error)
        else:
            check_range(f, value, full, error)
