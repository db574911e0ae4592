"""Parameter forms: one `parameters` entry of a sweep file -> `Param`, its single normal form.

An entry may be a W&B dict (`{distribution: uniform, min: .., max: ..}`, `{values: [..]}`,
`{value: ..}`), a Hydra sweep string (`choice(..)`, `range(..)`, `interval(..)`,
`tag(log, interval(..))`, `int(interval(..))`) or a plain scalar (a constant), so both spellings of
a space compare equal. Every value is checked against the trainer (sweeper/trainer_keys.py).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from sweeper.spec.problems import Problem, Raw, nearest, validate_model
from sweeper.spec.trainer_keys import check_key, config_for, field_kind, normalise_value

DISTRIBUTIONS = ("uniform", "int_uniform", "log_uniform_values", "q_uniform", "categorical", "constant")
"""W&B distributions understood here; others are refused by name rather than approximated."""
UNSUPPORTED = ("normal", "q_normal", "log_normal", "q_log_normal", "log_uniform", "q_log_uniform",
               "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "beta", "q_beta")
_HYDRA = ("choice", "range", "interval", "tag", "int")
_SCALARS = (str, int, float, bool, type(None))


class _ParamRaw(Raw):
    values: list[Any] | None = None
    """The choices (categorical)."""
    value: Any = None
    """A fixed value (constant)."""
    distribution: str | None = None
    """One of DISTRIBUTIONS (inferred from the other keys when absent, as W&B does)."""
    min: Any = None
    """Lower bound (inclusive)."""
    max: Any = None
    """Upper bound (inclusive)."""
    q: Any = None
    """Step of q_uniform / int_uniform."""


@dataclass(frozen=True, kw_only=True)
class Param:
    """One parameter of the space in a single normal form, however the file spelled it."""

    name: str
    """Dotted trainer key."""
    kind: Literal["constant", "values", "float", "int"]
    """constant and values list `values`; float and int are ranges [low, high]."""
    values: tuple = ()
    """The choices (the single value for a constant)."""
    low: float | int | None = None
    """Range start (inclusive)."""
    high: float | int | None = None
    """Range end (inclusive; moved down onto the step grid)."""
    log: bool = False
    """Sample the float range uniformly in log space."""
    step: float | int | None = None
    """Grid step of a range (ints always have one)."""

    @property
    def distribution(self) -> str:
        """The W&B name of this distribution."""
        if self.kind in ("constant", "values"):
            return "constant" if self.kind == "constant" else "categorical"
        if self.kind == "int":
            return "int_uniform"
        return "log_uniform_values" if self.log else ("q_uniform" if self.step else "uniform")

    @property
    def enumerable(self) -> bool:
        """Whether the values can be listed (a grid can use it)."""
        return self.kind != "float" or self.step is not None

    def grid_values(self) -> list:
        """Every value, in order (only for enumerable parameters)."""
        if self.kind in ("constant", "values"):
            return list(self.values)
        n = round((self.high - self.low) / self.step) + 1
        if self.kind == "int":
            return list(range(self.low, self.high + 1, self.step))
        return [round(self.low + i * self.step, 12) for i in range(n)]

    def describe(self) -> str:
        """Short human text of the values or range."""
        if self.kind in ("constant", "values"):
            return ", ".join(str(v) for v in self.values)
        step = f" step {self.step}" if self.step not in (None, 1) else ""
        return f"[{self.low}, {self.high}]{step}{' (log)' if self.log else ''}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the spec hash)."""
        return {**dataclasses.asdict(self), "values": list(self.values)}


def parse_param(name: str, raw: Any, overrides: Mapping[str, Any], presets: tuple[str, ...]) -> Param:
    """One `parameters` entry (W&B dict, Hydra string or plain scalar) -> Param, checked against the trainer."""
    where = f"parameters.{name}"
    check_key(name, where, "parameter")
    if isinstance(raw, str):
        param = _hydra(name, raw, where)
    elif isinstance(raw, dict):
        param = _wandb(name, validate_model(_ParamRaw, raw, ("parameters", name)), where)
    elif isinstance(raw, list):
        raise Problem(f"{where}: a bare list is ambiguous; write {{values: [...]}} or 'choice(...)'")
    else:
        param = _choices(name, [raw], where, constant=True)
    kind = field_kind(name)
    if param.kind in ("int", "float") and kind not in ("int", "float"):
        raise Problem(f"{where}: {name} is not a number; list its `values`")
    if param.kind == "float" and kind == "int":
        raise Problem(f"{where}: {name} is an integer; use int_uniform, int(interval(..)), range() or values")
    for value in (param.values if param.kind in ("constant", "values") else (param.low, param.high)):
        for preset in presets:
            config_for(preset, {**overrides, name: value}, where)
    return param


def _wandb(name: str, p: _ParamRaw, where: str) -> Param:
    given, dist = p.model_fields_set, p.distribution
    if dist is not None and dist not in DISTRIBUTIONS:
        if dist in UNSUPPORTED:
            raise Problem(f"{where}.distribution: {dist!r} is not supported and is not approximated "
                          f"(supported: {', '.join(DISTRIBUTIONS)})")
        raise Problem(f"{where}.distribution: unknown distribution {dist!r}{nearest(dist, DISTRIBUTIONS)}")
    if "value" in given or "values" in given:
        key, extra = ("value", "constant") if "value" in given else ("values", "categorical")
        clash = sorted(given - {key, "distribution"}) + ([] if dist in (None, extra) else ["distribution"])
        if clash:
            raise Problem(f"{where}: `{key}` sets the choices; drop {', '.join(clash)}")
        if key == "value":
            return _choices(name, [p.value], where, constant=True)
        return _choices(name, p.values or [], where)
    if dist in ("categorical", "constant"):
        raise Problem(f"{where}: distribution {dist} needs `{'values' if dist == 'categorical' else 'value'}`")
    if p.min is None or p.max is None:
        raise Problem(f"{where}: give `values`, `value`, or both `min` and `max`")
    low, high = _num(f"{where}.min", p.min), _num(f"{where}.max", p.max)
    if dist is None:  # W&B's inference: integer bounds mean int_uniform
        dist = "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform"
    if p.q is not None and dist not in ("q_uniform", "int_uniform"):
        raise Problem(f"{where}.q: only q_uniform and int_uniform take a step")
    if dist == "int_uniform":
        return _range(name, "int", low, high, where, step=1 if p.q is None else _num(f"{where}.q", p.q))
    if dist == "q_uniform":
        return _range(name, "float", low, high, where, step=1.0 if p.q is None else _num(f"{where}.q", p.q))
    return _range(name, "float", low, high, where, log=dist == "log_uniform_values")


def _choices(name: str, values: list, where: str, constant: bool = False) -> Param:
    if not values:
        raise Problem(f"{where}.values: empty; list at least one value")
    out: list = []
    for i, v in enumerate(values):
        if not isinstance(v, _SCALARS):
            raise Problem(f"{where}.values[{i}]: expected a number, string, boolean or null, got {type(v).__name__}")
        v = normalise_value(name, v)
        if any(v == o and type(v) is type(o) for o in out):
            raise Problem(f"{where}.values: {v!r} is listed twice")
        out.append(v)
    return Param(name=name, kind="constant" if constant else "values", values=tuple(out))


def _num(where: str, value: Any) -> int | float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Problem(f"{where}: expected a finite number, got {value!r}"[:200])
    return value


def _range(name: str, kind: str, low: Any, high: Any, where: str, log: bool = False, step: Any = None) -> Param:
    if kind == "int":
        if not all(float(x).is_integer() for x in (low, high, step)):
            raise Problem(f"{where}: integer ranges need integer bounds and step, got {low}, {high}, step {step}")
        low, high, step = int(low), int(high), int(step)
    else:
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    if step is not None and step <= 0:
        raise Problem(f"{where}: the step must be positive, got {step}")
    if step is not None:  # Optuna keeps values on low + k*step; say the true top of the range
        if kind == "int":
            high = low + ((high - low) // step) * step
        else:
            high = round(low + math.floor((high - low) / step + 1e-9) * step, 12)
    if not low < high:
        raise Problem(f"{where}: empty or single-value range [{low}, {high}]; use a constant `value`")
    if log and low <= 0:
        raise Problem(f"{where}: log ranges need min > 0, got {low}")
    return Param(name=name, kind=kind, low=low, high=high, log=log, step=step)


def _hydra(name: str, text: str, where: str) -> Param:
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", text, re.S)
    if not m and re.match(r"\s*[A-Za-z_]\w*\s*\(", text):
        raise Problem(f"{where}: malformed sweep function {text.strip()!r} (in a {{...}} mapping, quote it: "
                      "commas split YAML flow mappings)"[:300])
    if not m:  # a plain string is a constant, e.g. `model.swiglu: standard`
        return _choices(name, [text], where, constant=True)
    func, args = m.group(1), _split(m.group(2), where)
    if func == "choice":
        return _choices(name, [_scalar(a) for a in args], where)
    if func == "interval":
        return _range(name, "float", *_interval(text, where), where)
    if func == "tag":
        if [a.strip() for a in args[:-1]] != ["log"]:
            raise Problem(f"{where}: only tag(log, interval(a, b)) is understood, got {text!r}")
        return _range(name, "float", *_interval(args[-1], where), where, log=True)
    if func == "int" and len(args) == 1:
        return _range(name, "int", *_interval(args[0], where), where, step=1)
    if func == "range" and 1 <= len(args) <= 3:
        nums = [_num(where, _scalar(a)) for a in args]
        start, stop, step = ([0] + nums + [1])[:3] if len(nums) == 1 else (nums + [1])[:3]
        if not isinstance(step, (int, float)) or step <= 0:
            raise Problem(f"{where}: range() needs a positive step, got {text!r}")
        # Hydra's range follows Python's: the stop value is excluded.
        last = start + (math.ceil(round((stop - start) / step, 9)) - 1) * step
        integral = all(isinstance(x, int) for x in (start, stop, step))
        return _range(name, "int" if integral else "float", start, last, where, step=step)
    raise Problem(f"{where}: unknown or malformed sweep function {func}(){nearest(func, _HYDRA)}")


def _interval(text: str, where: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*interval\s*\((.*)\)\s*", text, re.S)
    args = _split(m.group(1), where) if m else []
    if len(args) != 2:
        raise Problem(f"{where}: expected interval(low, high), got {text.strip()!r}")
    return _num(where, _scalar(args[0])), _num(where, _scalar(args[1]))


def _split(inner: str, where: str) -> list[str]:
    """Split Hydra arguments on top-level commas (respecting parentheses and quotes)."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        if depth < 0:
            break
    parts.append(cur)
    if depth != 0 or quote or any(not p.strip() for p in parts):
        raise Problem(f"{where}: malformed arguments {inner.strip()!r}"[:200])
    return [p.strip() for p in parts]


def _scalar(token: str) -> Any:
    """A Hydra argument: quoted string, integer, float, true/false/null, else the bare string."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    for cast in (int, float):
        try:
            return cast(token)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(token.lower(), token)
