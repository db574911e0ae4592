"""W&B's parameter distributions, exactly, as a latent number Optuna samples and a map to the value.

The definitions are those of W&B's sampler (PyPI `sweeps` 0.3.0, `HyperParameter.ppf` in sweeps/params.py,
whose docs say the same): each value is a quantile function applied to a uniform draw u, then rounded to a
multiple of q for the q_ forms (`round(x / q) * q`, an int when q is written as an int). Here Optuna samples
a latent x and `forward` maps it to that value:

| W&B distribution            | latent Optuna samples         | value                                       |
|-----------------------------|-------------------------------|---------------------------------------------|
| uniform / q_uniform         | float in [min, max]           | x                                           |
| log_uniform / q_log_uniform | float in [min, max]           | exp(x): min and max are natural-log exponents |
| log_uniform_values (+ q_)   | float in [min, max], log      | x                                           |
| inv_log_uniform             | float in [min, max]           | exp(-x)                                     |
| inv_log_uniform_values      | float in [min, max], log      | x (W&B's exp(-U(-log max, -log min)) is log-uniform on [min, max]) |
| normal / q_normal           | probability u in [EPS, 1-EPS] | mu + sigma * Phi^-1(u)                      |
| log_normal / q_log_normal   | probability u in [EPS, 1-EPS] | exp(mu + sigma * Phi^-1(u))                 |
| beta / q_beta               | probability u in [0, 1]       | the u-quantile of Beta(a, b)                |
| categorical w/ probabilities| probability u in [0, 1]       | the value whose cumulative band holds u     |

A latent that is the value itself (uniform, log-uniform) keeps TPE, GP and CMA-ES modelling the value's
own scale; a probability latent is the only exact way to sample a distribution Optuna lacks.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:
    from sweeper.spec.param import Param

EPS = 1e-12
"""normal and log_normal (and their q_ forms) sample u in [EPS, 1 - EPS]: the distribution truncated at
+-7.03 sigma (2e-12 of its mass left out). W&B draws u from [0, 1), where u = 0 would give -inf; the
bounded latent also keeps GP and CMA-ES, which propose the ends of a range, on finite values."""
DEFAULTS = {"q": 1.0, "mu": 0.0, "sigma": 1.0, "a": 1.0, "b": 1.0}
"""W&B's schema defaults (q is a float, so q_ values are floats unless q is written as an int)."""
QUANTISED = {"q_uniform": "uniform", "q_log_uniform": "log_uniform", "q_log_uniform_values": "log_uniform_values",
             "q_normal": "normal", "q_log_normal": "log_normal", "q_beta": "beta"}
"""The q_ forms and the distribution they round."""
RANGES = ("uniform", "log_uniform", "log_uniform_values", "inv_log_uniform", "inv_log_uniform_values")
"""Distributions with min and max (besides int_uniform)."""
KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("value",), "categorical": ("values", "probabilities"),
    "categorical_w_probabilities": ("values", "probabilities"), "int_uniform": ("min", "max", "q"),
    **{d: ("min", "max") for d in RANGES}, "normal": ("mu", "sigma"), "log_normal": ("mu", "sigma"),
    "beta": ("a", "b"),
    **{q: ("min", "max", "q") for q in ("q_uniform", "q_log_uniform", "q_log_uniform_values")},
    "q_normal": ("mu", "sigma", "q"), "q_log_normal": ("mu", "sigma", "q"), "q_beta": ("a", "b", "q"),
}
"""Keys each W&B distribution takes besides `distribution` (int_uniform's q, a grid step, is ours)."""
WANDB = tuple(KEYS)
"""Every distribution of W&B's sweep schema; `range` (Hydra's stepped float range) is the one extra here."""


@dataclass(frozen=True, kw_only=True)
class Latent:
    """What Optuna samples for one parameter; sweeper.sweep.space turns it into an Optuna distribution."""

    kind: Literal["categorical", "int", "float"]
    """Optuna CategoricalDistribution, IntDistribution or FloatDistribution."""
    choices: tuple = ()
    """The choices of a categorical latent."""
    low: float | int | None = None
    """Lower bound (inclusive) of an int or float latent."""
    high: float | int | None = None
    """Upper bound (inclusive)."""
    log: bool = False
    """Sample uniformly in log space."""
    step: float | int | None = None
    """Grid step (int ranges, Hydra's stepped float ranges)."""


def latent(p: Param, grid: bool) -> Latent:
    """The latent of `p`. Under a grid, q_uniform lists W&B's grid values (numpy.arange(min, max, q): max
    excluded), which differ from what its sampler draws; every other grid parameter keeps its latent."""
    d = p.distribution
    if grid and d == "q_uniform":
        return Latent(kind="categorical", choices=tuple(p.grid_values()))
    if d in ("constant", "categorical") and p.probabilities is None:
        return Latent(kind="categorical", choices=p.values)
    if d == "int_uniform":
        return Latent(kind="int", low=p.low, high=p.high, step=p.step)
    if d == "range":
        return Latent(kind="float", low=p.low, high=p.high, step=p.step)
    base = QUANTISED.get(d, d)
    if base in RANGES:
        return Latent(kind="float", low=float(p.low), high=float(p.high), log=base.endswith("_values"))
    if base in ("normal", "log_normal"):
        return Latent(kind="float", low=EPS, high=1.0 - EPS)
    return Latent(kind="float", low=0.0, high=1.0)  # beta, categorical with probabilities


def forward(p: Param, x: Any, grid: bool) -> Any:
    """The value W&B's sampler gives for latent x (the grid's own value under a grid)."""
    d = p.distribution
    if p.probabilities is not None:
        cum = _cumulative(p.probabilities)
        i = bisect.bisect_right(cum, x)  # the first band whose upper end is above u, as W&B's ppf
        if i >= len(cum):  # u at the very top: the last value with weight
            i = max(j for j, w in enumerate(p.probabilities) if w > 0)
        return p.values[i]
    if d in ("constant", "categorical", "int_uniform", "range") or grid and d == "q_uniform":
        return x
    value = _base(p)[0](x)
    return _quantise(value, p.q) if d in QUANTISED else value


def inverse(p: Param, value: Any, grid: bool) -> Any | None:
    """A latent whose value is `value`, or None when no latent gives it (a baseline value outside the
    space). Each candidate is checked by mapping it forward again."""
    lat = latent(p, grid)
    if lat.kind == "categorical":
        return value if any(value == c and type(value) is type(c) for c in lat.choices) else None
    if p.probabilities is not None:
        if value not in p.values:
            return None
        i = p.values.index(value)
        cum = [0.0, *_cumulative(p.probabilities)]
        return (cum[i] + cum[i + 1]) / 2 if p.probabilities[i] > 0 else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        x = _base(p)[1](value)
    except (ValueError, OverflowError):  # log of a non-positive value: outside the support
        return None
    x = min(max(x, lat.low), lat.high)
    if lat.kind == "int":
        x = round(x)
    if lat.step is not None:  # a stepped range holds only low + k * step
        k = (x - lat.low) / lat.step
        if not math.isclose(k, round(k), abs_tol=1e-9):
            return None
    got = forward(p, x, grid)
    return x if math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12) else None


def extremes(p: Param, grid: bool) -> tuple:
    """Values to check against the trainer: every listed value, or the values at both ends of the latent
    (the maps are monotone, so a trainer bound that holds at both ends holds in between). Computed, never
    listed: a grid is checked before its size is."""
    if p.probabilities is not None:
        return tuple(v for v, w in zip(p.values, p.probabilities) if w > 0)
    if p.distribution in ("constant", "categorical"):
        return p.values
    if grid and p.distribution == "q_uniform":  # W&B's grid: arange(min, max, q), the first and last value
        return p.low, float(f"{p.low + (max(p.grid_size(), 1) - 1) * p.q:.15g}")
    lat = latent(p, grid)
    return forward(p, lat.low, grid), forward(p, lat.high, grid)


def _base(p: Param) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """(quantile map, its inverse) of the continuous distribution under p (before any rounding)."""
    base = QUANTISED.get(p.distribution, p.distribution)
    if base == "log_uniform":
        return math.exp, math.log
    if base == "inv_log_uniform":
        return (lambda x: math.exp(-x)), (lambda v: -math.log(v))
    if base in ("normal", "log_normal"):
        n = NormalDist(p.mu, p.sigma)
        if base == "normal":
            return n.inv_cdf, n.cdf
        return (lambda u: math.exp(n.inv_cdf(u))), (lambda v: n.cdf(math.log(v)))
    if base == "beta":
        from scipy import special  # imported here: only beta needs it, and it costs a noticeable import

        a, b = p.a, p.b
        return (lambda u: float(special.betaincinv(a, b, u))), (lambda v: float(special.betainc(a, b, v)))
    return (lambda x: x), (lambda v: v)


def _quantise(value: float, q: float | int) -> float | int:
    """W&B's round(value / q) * q: round half to even (Python's round, like numpy's), an int for an int q.
    A float result is tidied to 15 significant digits (0.30000000000000004 -> 0.3): a change far below
    anything a trainer setting can feel, so configurations read and hash as written."""
    k = round(value / q)
    if isinstance(q, int):
        return k * q
    return float(f"{k * q:.15g}")


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    """Cumulative weights scaled to end at 1. W&B uses the raw cumulative sum, which its schema lets end
    anywhere within 1e-5 of 1, so a draw above the sum gave the first value; scaling removes that edge."""
    total, run, out = math.fsum(weights), 0.0, []
    for w in weights:
        run += w
        out.append(run / total)
    return out
