"""Parameter forms: one `parameters` entry of a sweep file -> `Param`, its single normal form.

An entry may be a W&B dict (`{distribution: normal, mu: .., sigma: ..}`, `{values: [..], probabilities:
[..]}`, `{value: ..}`, `{min: .., max: ..}`), a Hydra sweep string (`choice(..)`, `range(..)`,
`interval(..)`, `tag(log, interval(..))`, `int(interval(..))`) or a plain scalar (a constant), so both
spellings of one space compare equal. W&B dicts are read here, Hydra strings in hydra.py, both with the
building blocks of forms.py. Every value a parameter can take is checked against the trainer
(trainer_keys.py) at both ends of its range.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from sweeper.spec import distributions as dist
from sweeper.spec.forms import choices, num_range, number
from sweeper.spec.hydra import parse_hydra
from sweeper.spec.param import Param
from sweeper.spec.problems import Problem, Raw, nearest, short, validate_model
from sweeper.spec.trainer_keys import check_key, config_for, field_kind, normalise_value

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
        param = parse_hydra(name, raw, where)
    elif isinstance(raw, dict):
        param = _wandb(name, validate_model(_ParamRaw, raw, ("parameters", name)), where)
    elif isinstance(raw, list):
        raise Problem(f"{where}: a bare list is ambiguous; write {{values: [...]}} or 'choice(...)'")
    else:
        param = choices(name, [raw], where, constant=True)
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
        return choices(name, [p.value], where, constant=True) if "value" in given else _need(where, d, "value")
    if d in ("categorical", "categorical_w_probabilities"):
        if p.values is None:
            _need(where, d, "values")
        param = choices(name, p.values, where)
        if p.probabilities is None:
            return param if d == "categorical" else _need(where, d, "probabilities")
        weights = _weights(where, p.probabilities, len(param.values))
        return Param(name=name, distribution="categorical_w_probabilities", values=param.values, probabilities=weights)
    if d in ("int_uniform", "q_uniform", *dist.RANGES, "q_log_uniform", "q_log_uniform_values"):
        if p.min is None or p.max is None:
            raise Problem(f"{where}: distribution {d} needs both `min` and `max`")
        low, high = number(f"{where}.min", p.min), number(f"{where}.max", p.max)
        if d == "int_uniform":
            return num_range(name, "int", low, high, where, step=1 if p.q is None else number(f"{where}.q", p.q))
        return _bounded(name, d, low, high, where, _q(where, p, d))
    fields = {f: number(f"{where}.{f}", getattr(p, f)) if f in given else dist.DEFAULTS[f] for f in dist.KEYS[d]}
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
    q = dist.DEFAULTS["q"] if p.q is None else number(f"{where}.q", p.q)
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
    weights = tuple(float(number(f"{where}.probabilities[{i}]", w)) for i, w in enumerate(raw))
    if len(weights) != n:
        raise Problem(f"{where}.probabilities: {len(weights)} probabilities for {n} values")
    if any(w < 0 for w in weights) or not math.isclose(math.fsum(weights), 1.0, rel_tol=0, abs_tol=1e-5):
        raise Problem(f"{where}.probabilities: expected non-negative numbers that sum to 1, got {short(raw)}")
    return weights
