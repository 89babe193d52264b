"""Typed values from a file's plain data (YAML mappings): dataclasses built field by field,
with every problem collected as a one-line `key: message` and values never shown in full."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any


def build_dataclass(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    """Instantiate dataclass `cls` from `raw`, appending 'key: message' problems."""
    if not isinstance(raw, dict):
        problems.append(
            f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {describe(raw)}"
        )
        return cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = _suggest(str(key), names)
            hint = (
                f" (did you mean {prefix}{close[0]}?)" if close else f" (valid: {', '.join(names)})"
            )
            problems.append(f"{prefix}{key}: unknown key{hint}")
    values = {}
    for name in names:
        if name not in raw:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = build_dataclass(hint, raw[name], f"{prefix}{name}.", problems)
        else:
            ok, value = _coerce(raw[name], hint)
            if ok:
                values[name] = value
            else:
                problems.append(
                    f"{prefix}{name}: expected {_type_name(hint)}, got {describe(raw[name])}"
                )
    try:
        return cls(**values)
    except TypeError:
        return cls()


def _suggest(key: str, names: list[str]) -> list[str]:
    """The valid key a typo most likely meant: its initials (learning_rate -> lr), else difflib."""
    initials = "".join(part[:1] for part in key.lower().split("_") if part)
    if len(initials) > 1 and initials in names:
        return [initials]
    return difflib.get_close_matches(key, names, n=1, cutoff=0.5)


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """(True, value as `hint`) or (False, None); ints pass as floats, '1e-3' as a float."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None
        for arg in args:
            if arg is not type(None):
                ok, out = _coerce(value, arg)
                if ok:
                    return True, out
        return False, None
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        coerced = [_coerce(v, args[0]) for v in items]
        return (all(ok for ok, _ in coerced), tuple(v for _, v in coerced))
    if hint is bool:
        return (True, value) if isinstance(value, bool) else (False, None)
    if hint is int:
        return (
            (True, value)
            if isinstance(value, int) and not isinstance(value, bool)
            else (False, None)
        )
    if hint is float:
        return _coerce_float(value)
    if hint is str:
        return (True, value) if isinstance(value, str) else (False, None)
    return False, None


def _coerce_float(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, None
    if isinstance(value, (int, float)):
        return True, float(value)
    if isinstance(value, str):
        try:
            return True, float(value)
        except ValueError:
            return False, None
    return False, None


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return f"a list of {args[0].__name__}"
    if args:
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    return getattr(hint, "__name__", str(hint))


def describe(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {short(value)}"


def short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters without building the repr of a huge container."""
    if isinstance(value, list | tuple | dict | set) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = (
        repr(value)
        if not isinstance(value, str) or len(value) <= 4 * limit
        else repr(value[: 4 * limit])
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."
