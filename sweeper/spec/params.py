"""Parameter forms: one `parameters` entry of a sweep file -> `Param`, its single normal form.

An entry may be a W&B dict (`{distribution: normal, mu: .., sigma: ..}`, `{values: [..], probabilities:
[..]}`, `{value: ..}`, `{min: .., max: ..}`), a Hydra sweep string (`choice(..)`, `range(..)`,
`interval(..)`, `tag(log, interval(..))`, `int(interval(..))`) or a plain scalar (a constant), so both
spellings of one space compare equal. Every value a parameter can take is checked against the trainer
(trainer_keys.py) at both ends of its range.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

from sweeper.spec import distributions as dist
from sweeper.spec.param import Param
from sweeper.spec.problems import Problem, Raw, nearest, short, validate_model
from sweeper.spec.trainer_keys import check_key, config_for, field_kind, normalise_value

_HYDRA = ("choice", "range", "interval", "tag", "int")
_SCALARS = (str, int, float, bool, type(None))
MAX_VALUES = 1000
"""Listed values per parameter; each is resolved against the trainer, so this bounds load time."""
MAX_INT = 2**63
"""Integers in a space stay below this in size (what torch and numpy can hold)."""
MAX_EXP = 709.0
"""exp() of more than this overflows a float: the bound on log_uniform's max and inv_log_uniform's -min."""


class _ParamRaw(Raw):
    values: list[Any] | None = None
    """The choices (categorical)."""
    value: Any = None
    """A fixed value (constant)."""
    distribution: str | None = None
    """A W&B distribution (inferred from the other keys when absent, as W&B does)."""
    min: Any = None
    """Lower bound (an exponent for log_uniform and inv_log_uniform)."""
    max: Any = None
    """Upper bound (an exponent for log_uniform and inv_log_uniform)."""
    q: Any = None
    """Quantum of the q_ distributions (default 1.0); the grid step of int_uniform (ours)."""
    probabilities: list[Any] | None = None
    """Weight of each of `values` (W&B's categorical_w_probabilities)."""
    mu: Any = None
    """Mean of normal / log_normal (default 0)."""
    sigma: Any = None
    """Standard deviation of normal / log_normal (default 1)."""
    a: Any = None
    """Beta's first shape parameter (default 1)."""
    b: Any = None
    """Beta's second shape parameter (default 1)."""


def parse_param(name: str, raw: Any, overrides: Mapping[str, Any], presets: tuple[str, ...], grid: bool = False) -> Param:
    """One `parameters` entry -> Param, checked against the trainer at every value it can take (`grid`:
    the sweep's method is grid, where q_uniform lists W&B's grid values)."""
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
    if param.kind == "float" and kind == "int" and not _whole(param):
        raise Problem(f"{where}: {name} is an integer; use int_uniform, int(interval(..)), range(), values, "
                      "or a q_ distribution with a whole-number q")
    if grid and not param.enumerable:
        raise Problem(f"{where}: method grid needs listed values, choice(), range(), int_uniform or q_uniform, "
                      f"not {param.distribution}" + (" (W&B's grid refuses probabilities too)" if param.probabilities else ""))
    try:
        ends = param.extremes(grid)
    except (OverflowError, ValueError, ZeroDivisionError) as e:
        raise Problem(f"{where}: its values cannot be computed ({e})") from None
    for value in ends:
        value = normalise_value(name, value)
        for preset in presets:
            config_for(preset, {**overrides, name: value}, where)
    return param


def _whole(p: Param) -> bool:
    """A float form whose values are all whole numbers: a q_ distribution with a whole-number q."""
    return p.distribution in dist.QUANTISED and float(p.q).is_integer()


def _wandb(name: str, p: _ParamRaw, where: str) -> Param:
    given = p.model_fields_set - {"distribution"}
    d = p.distribution if p.distribution is not None else _infer(p, given, where)
    if d not in dist.KEYS:
        raise Problem(f"{where}.distribution: unknown distribution {short(d)}{nearest(d, dist.KEYS)}")
    extra = sorted(given - set(dist.KEYS[d]))
    if extra and d in ("constant", "categorical", "categorical_w_probabilities"):
        raise Problem(f"{where}: `{dist.KEYS[d][0]}` sets the choices; drop {', '.join(extra)}")
    if extra:
        raise Problem(f"{where}.{extra[0]}: distribution {d} does not take `{extra[0]}` "
                      f"(it takes {', '.join(dist.KEYS[d])})")
    if d == "constant":
        return _choices(name, [p.value], where, constant=True) if "value" in given else _need(where, d, "value")
    if d in ("categorical", "categorical_w_probabilities"):
        if p.values is None:
            _need(where, d, "values")
        param = _choices(name, p.values, where)
        if p.probabilities is None:
            return param if d == "categorical" else _need(where, d, "probabilities")
        weights = _weights(where, p.probabilities, len(param.values))
        return Param(name=name, distribution="categorical_w_probabilities", values=param.values, probabilities=weights)
    if d in ("int_uniform", "q_uniform", *dist.RANGES, "q_log_uniform", "q_log_uniform_values"):
        if p.min is None or p.max is None:
            raise Problem(f"{where}: distribution {d} needs both `min` and `max`")
        low, high = _num(f"{where}.min", p.min), _num(f"{where}.max", p.max)
        if d == "int_uniform":
            return _range(name, "int", low, high, where, step=1 if p.q is None else _num(f"{where}.q", p.q))
        return _bounded(name, d, low, high, where, _q(where, p, d))
    fields = {f: _num(f"{where}.{f}", getattr(p, f)) if f in given else dist.DEFAULTS[f] for f in dist.KEYS[d]}
    if fields.get("sigma", 1) <= 0:
        raise Problem(f"{where}.sigma: must be > 0, got {fields['sigma']} (sigma 0 gives NaN in W&B; use `value`)")
    if min(fields.get("a", 1), fields.get("b", 1)) <= 0:
        raise Problem(f"{where}: beta needs a > 0 and b > 0 (0 gives NaN in W&B), got a {fields['a']}, b {fields['b']}")
    if fields.get("q", 1) <= 0:
        raise Problem(f"{where}.q: must be > 0, got {fields['q']}")
    return Param(name=name, distribution=d, **{k: (v if k == "q" else float(v)) for k, v in fields.items()})


def _infer(p: _ParamRaw, given: set[str], where: str) -> str:
    """W&B's inference when `distribution` is absent (the first schema that matches)."""
    if "value" in given:
        return "constant"
    if "values" in given:
        return "categorical_w_probabilities" if "probabilities" in given else "categorical"
    if {"min", "max"} <= given and not given & {"mu", "sigma", "a", "b", "q", "probabilities"}:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (p.min, p.max))
        return "int_uniform" if ints else "uniform"
    if given & {"mu", "sigma", "a", "b", "q"}:
        raise Problem(f"{where}: name the `distribution` that takes {', '.join(sorted(given & {'mu', 'sigma', 'a', 'b', 'q'}))}")
    raise Problem(f"{where}: give `values`, `value`, both `min` and `max`, or a `distribution`")


def _need(where: str, d: str, key: str) -> Param:
    raise Problem(f"{where}: distribution {d} needs `{key}`")


def _q(where: str, p: _ParamRaw, d: str) -> float | int | None:
    if d not in dist.QUANTISED:
        return None
    q = dist.DEFAULTS["q"] if p.q is None else _num(f"{where}.q", p.q)
    if q <= 0:
        raise Problem(f"{where}.q: must be > 0, got {q}")
    return q


def _bounded(name: str, d: str, low: float, high: float, where: str, q: float | int | None) -> Param:
    if not low < high:
        raise Problem(f"{where}: min {low} is not below max {high}; use a constant `value` for one value")
    if d.endswith("_values") and low <= 0:
        raise Problem(f"{where}: log ranges need min > 0, got {low}")
    base = dist.QUANTISED.get(d, d)
    if base == "log_uniform" and high > MAX_EXP or base == "inv_log_uniform" and -low > MAX_EXP:
        raise Problem(f"{where}: {d} takes natural-log exponents, and exp() of this range overflows; "
                      f"did you mean {d}_values (min and max as values)?")
    return Param(name=name, distribution=d, low=float(low), high=float(high), q=q)


def _weights(where: str, raw: list[Any], n: int) -> tuple[float, ...]:
    weights = tuple(float(_num(f"{where}.probabilities[{i}]", w)) for i, w in enumerate(raw))
    if len(weights) != n:
        raise Problem(f"{where}.probabilities: {len(weights)} probabilities for {n} values")
    if any(w < 0 for w in weights) or not math.isclose(math.fsum(weights), 1.0, rel_tol=0, abs_tol=1e-5):
        raise Problem(f"{where}.probabilities: expected non-negative numbers that sum to 1, got {short(raw)}")
    return weights


def _choices(name: str, values: list, where: str, constant: bool = False) -> Param:
    if not values:
        raise Problem(f"{where}.values: empty; list at least one value")
    if len(values) > MAX_VALUES:
        raise Problem(f"{where}.values: {len(values)} values; at most {MAX_VALUES} (use a range or a distribution)")
    out: list = []
    for i, v in enumerate(values):
        if not isinstance(v, _SCALARS):
            raise Problem(f"{where}.values[{i}]: expected a number, string, boolean or null, got {type(v).__name__}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            _num(f"{where}.values[{i}]", v)
        v = normalise_value(name, v)
        if any(v == o and type(v) is type(o) for o in out):
            raise Problem(f"{where}.values: {short(v)} is listed twice")
        out.append(v)
    return Param(name=name, distribution="constant" if constant else "categorical", values=tuple(out))


def _num(where: str, value: Any) -> int | float:
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


def _range(name: str, kind: str, low: Any, high: Any, where: str, log: bool = False, step: Any = None) -> Param:
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


def _hydra(name: str, text: str, where: str) -> Param:
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", text, re.S)
    if not m and re.match(r"\s*[A-Za-z_]\w*\s*\(", text):
        raise Problem(f"{where}: malformed sweep function {short(text.strip())} (in a {{...}} mapping, quote it: "
                      "commas split YAML flow mappings)")
    if not m:  # a plain string is a constant, e.g. `model.swiglu: standard`
        return _choices(name, [text], where, constant=True)
    func, args = m.group(1), _split(m.group(2), where)
    if func == "choice":
        return _choices(name, [_scalar(a) for a in args], where)
    if func == "interval":
        return _range(name, "float", *_interval(text, where), where)
    if func == "tag":
        if [a.strip() for a in args[:-1]] != ["log"]:
            raise Problem(f"{where}: only tag(log, interval(a, b)) is understood, got {short(text)}")
        return _range(name, "float", *_interval(args[-1], where), where, log=True)
    if func == "int" and len(args) == 1:
        return _range(name, "int", *_interval(args[0], where), where, step=1)
    if func == "range" and 1 <= len(args) <= 3:
        nums = [_num(where, _scalar(a)) for a in args]
        start, stop, step = ([0] + nums + [1])[:3] if len(nums) == 1 else (nums + [1])[:3]
        if step <= 0:
            raise Problem(f"{where}: range() needs a positive step, got {short(text)}")
        count = (stop - start) / step
        if not math.isfinite(count):
            raise Problem(f"{where}: range() has too many values to count, got {short(text)}")
        # Hydra's range follows Python's: the stop value is excluded.
        last = start + (math.ceil(round(count, 9)) - 1) * step
        integral = all(isinstance(x, int) for x in (start, stop, step))
        return _range(name, "int" if integral else "float", start, last, where, step=step)
    raise Problem(f"{where}: unknown or malformed sweep function {func}(){nearest(func, _HYDRA)}")


def _interval(text: str, where: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*interval\s*\((.*)\)\s*", text, re.S)
    args = _split(m.group(1), where) if m else []
    if len(args) != 2:
        raise Problem(f"{where}: expected interval(low, high), got {short(text.strip())}")
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
        raise Problem(f"{where}: malformed arguments {short(inner.strip())}")
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
