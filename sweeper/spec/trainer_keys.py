"""Trainer keys: dotted names are checked against trm_core.config.TrainConfig, and values by resolving
a real config from each preset a trial may start from, so a bad key or value fails at load time.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import re
import types
import typing
from typing import Any, Mapping

from sweeper.spec.problems import Problem, nearest
from trm_core.config import TrainConfig, from_dict, preset_dict, preset_names, set_dotted

AUTO_PRESETS = {True: "paper", False: "cpu-sweep"}
"""profile: auto picks the paper preset on a GPU and the CPU sweep preset otherwise."""
EXPR_ALIASES = {"K": "model.k"}
"""Short names usable in resource expressions, besides every numeric trainer key."""


@functools.cache
def _leaves() -> dict[str, Any]:
    """Every dotted value key of TrainConfig -> its type (Optional unwrapped)."""
    out: dict[str, Any] = {}

    def walk(cls: type, prefix: str) -> None:
        for key, tp in typing.get_type_hints(cls).items():
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(inner) == 1:
                tp = inner[0]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{key}.")
            else:
                out[prefix + key] = tp
    walk(TrainConfig, "")
    return out


def field_kind(key: str) -> str:
    """'int', 'float', 'bool' or 'other' for a dotted trainer key."""
    tp = _leaves().get(key)
    return {int: "int", float: "float", bool: "bool"}.get(tp, "other")


@functools.cache
def expr_names() -> frozenset[str]:
    """Names a resource expression may use: numeric trainer keys and EXPR_ALIASES."""
    return frozenset([k for k in _leaves() if field_kind(k) in ("int", "float")] + list(EXPR_ALIASES))


def check_key(key: str, where: str, what: str) -> None:
    """Raise Problem unless `key` names a value of TrainConfig (seed is the `seeds` key's job)."""
    if key == "seed":
        raise Problem(f"{where}: seeds come from the top-level `seeds` key (each configuration runs once per seed)")
    if key not in _leaves():
        sections = {k.split(".")[0] for k in _leaves() if "." in k}
        if key in sections:
            example = next(k for k in _leaves() if k.startswith(key + "."))
            raise Problem(f"{where}: '{key}' is a section; name one of its values, e.g. '{example}'")
        raise Problem(f"{where}: unknown {what}{nearest(key, _leaves())}")


def normalise_value(key: str, value: Any) -> Any:
    """Give numbers the field's type, so `4`, `4.0` and `'4'` spell one configuration and hash alike."""
    kind = field_kind(key)
    if kind in ("int", "float") and isinstance(value, str):
        # PyYAML follows YAML 1.1, which reads 1e-4 (no dot) as a string; numbers are meant.
        try:
            value = float(value)
        except (ValueError, OverflowError):
            return value
    if isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int) and abs(value) < 2**1000:  # larger ones: trm_core refuses them
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@functools.cache
def _preset(name: str) -> dict:
    return preset_dict(name)


def presets_to_check(base_preset: str | None, profile: str) -> tuple[str, ...]:
    """The presets a trial may start from: base.preset if given, else the profile's (both, for auto)."""
    names = preset_names()
    if profile != "auto" and profile not in names:
        raise Problem(f"profile: unknown profile {profile!r}{nearest(profile, ['auto', *names])}")
    if base_preset is not None:
        if base_preset not in names:
            raise Problem(f"base.preset: unknown preset {base_preset!r}{nearest(base_preset, names)}")
        return (base_preset,)
    return tuple(AUTO_PRESETS.values()) if profile == "auto" else (profile,)


def config_for(preset: str, overrides: Mapping[str, Any], where: str) -> TrainConfig:
    """Resolve preset + overrides like trm_core.config.resolve, turning its errors into a Problem."""
    d = copy.deepcopy(_preset(preset))
    try:
        for key, value in overrides.items():
            set_dotted(d, key, value)
        return from_dict(TrainConfig, d)
    except (ValueError, OverflowError) as e:  # ConfigError; int(nan) / int(inf) in trm_core raise these
        msg = re.sub(r"^[\w.]+: ", "", str(e))
        raise Problem(f"{where}: {msg} (with preset '{preset}')") from None
