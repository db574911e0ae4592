"""The generic dict <-> dataclass engine behind the trainer config: checked keys, coerced values, dotted paths.

Nothing here knows the schema: every function takes the dataclass it works on. Error messages name the
key path and the nearest valid name, and quote user values through `short_repr`, which never builds a
long string (a YAML alias bomb expands to gigabytes under plain `repr`: security review finding 4).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import reprlib
import types
import typing
from typing import Any, Literal

from trm_core.errors import ConfigError

_REPR = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
_REPR.maxlevel, _REPR.maxstring, _REPR.maxlong, _REPR.maxother = 2, 60, 40, 60
_REPR.maxtuple = _REPR.maxlist = _REPR.maxarray = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 4


def short_repr(value: Any, limit: int = 60) -> str:
    """repr(value) cut to about `limit` characters, built without expanding nested containers."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check(ok: bool, msg: str) -> None:
    """Raise ConfigError(msg) unless `ok` (the one-liner of every __post_init__ check)."""
    if not ok:
        raise ConfigError(msg)


def nearest_hint(key: str, options: list[str], prefix: str = "") -> str:
    """' (did you mean 'prefix.x'?)' for the closest option, else the list of valid names."""
    m = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    pre = f"{prefix}." if prefix else ""
    return f" (did you mean '{pre}{m[0]}'?)" if m else f" (valid: {', '.join(sorted(options))})"


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if not isinstance(value, (str, int, float, bool, type(None))) or value not in args:
            raise ConfigError(f"{path}: {short_repr(value)} is not one of {', '.join(map(str, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {short_repr(value)}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{path}: expected an integer, got {short_repr(value)}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {short_repr(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {short_repr(value)}")
        return str(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    return value


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a dataclass (cached: resolving them costs ~1 ms a call, paid on every key)."""
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from a (nested) dict; every key is checked, every value coerced."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {short_repr(data)}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        kp = f"{path}.{key}" if path else str(key)
        if key not in names:
            raise ConfigError(f"unknown key {short_repr(kp)}{nearest_hint(str(key), names, path)}")
        kwargs[key] = _coerce(value, hints[key], kp)
    try:
        return cls(**kwargs)
    except ConfigError as e:  # re-raised without the chain: the message is all the user needs
        raise ConfigError(str(e)) from None


def to_dict(cfg: Any) -> dict:
    """Dataclass tree -> plain nested dict (JSON- and YAML-safe for the schema's field types)."""
    return dataclasses.asdict(cfg)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {'model.hidden': 512, ...} (for logging as params)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def set_dotted(root: type, d: dict, key: str, value: Any) -> None:
    """Set d['a']['b'] = value for key 'a.b', checking every part against the dataclass tree of `root`."""
    cls = root
    parts = key.split(".")
    node = d
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            where = ".".join(parts[:i] + [part])
            raise ConfigError(f"unknown key {short_repr(where)}{nearest_hint(part, names, '.'.join(parts[:i]))}")
        tp = _hints(cls)[part]
        if i == len(parts) - 1:
            node[part] = value
            return
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{short_repr('.'.join(parts[:i + 1]))} is a value, not a section")
        node = node.setdefault(part, {})
        cls = tp


def parse_value(text: str) -> Any:
    """'0.02' -> 0.02, 'true' -> True, 'null' -> None, 'abc' -> 'abc' (YAML scalar rules)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def deep_update(dst: dict, src: dict) -> None:
    """Merge `src` into `dst` in place, recursing into dicts present in both."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_update(dst[k], v)
        else:
            dst[k] = v
