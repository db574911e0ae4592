"""Building blocks both spellings of a parameter share (W&B dicts in params.py, Hydra strings in
hydra.py): listed choices, numbers, and stepped or plain ranges, each checked and bounded.
"""
from __future__ import annotations

import math
from typing import Any

from sweeper.spec.param import Param
from sweeper.spec.problems import Problem, short
from sweeper.spec.trainer_keys import normalise_value

_SCALARS = (str, int, float, bool, type(None))
MAX_VALUES = 1000
"""Listed values per parameter; each is resolved against the trainer, so this bounds load time."""
MAX_INT = 2**63
"""Integers in a space stay below this in size (what torch and numpy can hold)."""


def choices(name: str, values: list, where: str, constant: bool = False) -> Param:
    if not values:
        raise Problem(f"{where}.values: empty; list at least one value")
    if len(values) > MAX_VALUES:
        raise Problem(f"{where}.values: {len(values)} values; at most {MAX_VALUES} (use a range or a distribution)")
    out: list = []
    for i, v in enumerate(values):
        if not isinstance(v, _SCALARS):
            raise Problem(f"{where}.values[{i}]: expected a number, string, boolean or null, got {type(v).__name__}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            number(f"{where}.values[{i}]", v)
        v = normalise_value(name, v)
        if any(v == o and type(v) is type(o) for o in out):
            raise Problem(f"{where}.values: {short(v)} is listed twice")
        out.append(v)
    return Param(name=name, distribution="constant" if constant else "categorical", values=tuple(out))


def number(where: str, value: Any) -> int | float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Problem(f"{where}: expected a finite number, got {short(value)}")
    if isinstance(value, int) and abs(value) >= MAX_INT:  # before isfinite, which overflows on such ints
        raise Problem(f"{where}: {short(value)} is out of range (integers stay below 2**63 in size)")
    if not math.isfinite(value):
        raise Problem(f"{where}: expected a finite number, got {short(value)}")
    return value


def num_range(name: str, kind: str, low: Any, high: Any, where: str, log: bool = False, step: Any = None) -> Param:
    if kind == "int":
        if not all(float(x).is_integer() for x in (low, high, step)):
            raise Problem(f"{where}: integer ranges need integer bounds and step, got {low}, {high}, step {step}")
        low, high, step = int(low), int(high), int(step)
        if max(abs(low), abs(high), step) >= MAX_INT:
            raise Problem(f"{where}: integer bounds and step stay below 2**63 in size")
    else:
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    if step is not None and step <= 0:
        raise Problem(f"{where}: the step must be positive, got {step}")
    if step is not None:  # Optuna keeps values on low + k*step; say the true top of the range
        if kind == "int":
            high = low + ((high - low) // step) * step
        else:
            n = math.floor((high - low) / step + 1e-9)
            high = round(low + n * step, 12)
    if not low < high:
        raise Problem(f"{where}: empty or single-value range [{low}, {high}]; use a constant `value`")
    if log and low <= 0:
        raise Problem(f"{where}: log ranges need min > 0, got {low}")
    d = "int_uniform" if kind == "int" else "range" if step is not None else "log_uniform_values" if log else "uniform"
    return Param(name=name, distribution=d, low=low, high=high, step=step)
