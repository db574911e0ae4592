"""`Param`: one parameter of a sweep in a single normal form, however the file spelled it.

Its interface to the search (sweeper.sweep.space) is two calls: `latent(grid)`, what Optuna samples, and
`value(x, grid)`, the trainer value of a sampled latent x; `latent_of(value)` goes back (baselines). The
distribution math is in distributions.py.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from sweeper.spec import distributions as dist
from sweeper.spec.distributions import Latent

GRID_CAP = 10**18
"""grid_size() of a range too fine to count (inf values) is reported as this; MAX_GRID refuses it anyway."""


@dataclass(frozen=True, kw_only=True)
class Param:
    """A swept or constant parameter; fields a distribution does not use are None."""

    name: str
    """Dotted trainer key."""
    distribution: str
    """A W&B distribution name (distributions.WANDB) or `range`, Hydra's stepped float range."""
    values: tuple = ()
    """The choices of constant / categorical (a constant has one)."""
    probabilities: tuple[float, ...] | None = None
    """Weights of the choices (W&B's categorical with probabilities); None: equally likely."""
    low: float | int | None = None
    """W&B's min (an exponent for log_uniform and inv_log_uniform) or the start of a range."""
    high: float | int | None = None
    """W&B's max, or the last value of a stepped range (moved down onto its grid)."""
    step: float | int | None = None
    """Grid step of int_uniform and of Hydra's stepped ranges (every value is low + k * step)."""
    q: float | int | None = None
    """Quantum of the q_ distributions: values are round(x / q) * q (ints when q is an int)."""
    mu: float | None = None
    """Mean of normal, or of log(value) for log_normal."""
    sigma: float | None = None
    """Standard deviation of normal, or of log(value) for log_normal."""
    a: float | None = None
    """First shape parameter (alpha) of beta."""
    b: float | None = None
    """Second shape parameter (beta) of beta."""

    @property
    def kind(self) -> Literal["constant", "values", "int", "float"]:
        """constant; values (a list of choices); int (an integer range); float (any other distribution)."""
        if self.distribution == "constant":
            return "constant"
        if self.distribution in ("categorical", "categorical_w_probabilities"):
            return "values"
        return "int" if self.distribution == "int_uniform" else "float"

    @property
    def log(self) -> bool:
        """Whether the value is spread evenly in log space (log-uniform in all its spellings)."""
        return dist.QUANTISED.get(self.distribution, self.distribution) in (
            "log_uniform", "log_uniform_values", "inv_log_uniform", "inv_log_uniform_values")

    @property
    def enumerable(self) -> bool:
        """Whether a grid can list the values: W&B's grid takes categorical (without probabilities),
        int_uniform and q_uniform; Hydra's range() is listed too."""
        return (self.distribution in ("constant", "int_uniform", "q_uniform", "range")
                or self.distribution == "categorical" and self.probabilities is None)

    def grid_size(self) -> int:
        """How many values a grid lists, counted without listing them (a range may be astronomically long)."""
        if self.distribution in ("constant", "categorical"):
            return len(self.values)
        if self.distribution == "int_uniform":
            return (self.high - self.low) // self.step + 1
        n = (self.high - self.low) / (self.step if self.distribution == "range" else self.q)
        if not math.isfinite(n) or n >= GRID_CAP:
            return GRID_CAP
        # range: the top is already on the grid; q_uniform: numpy.arange(min, max, q) has ceil(n) values
        return round(n) + 1 if self.distribution == "range" else math.ceil(n)

    def grid_values(self) -> list:
        """Every value, in order; call only after grid_size() is known to be small."""
        if self.distribution in ("constant", "categorical"):
            return list(self.values)
        if self.distribution == "int_uniform":
            return list(range(self.low, self.high + 1, self.step))
        if self.distribution == "range":
            return [round(self.low + i * self.step, 12) for i in range(self.grid_size())]
        return [float(f"{self.low + i * self.q:.15g}") for i in range(self.grid_size())]  # W&B: arange

    def latent(self, grid: bool = False) -> Latent:
        """What Optuna samples for this parameter (see distributions.py for each distribution)."""
        return dist.latent(self, grid)

    def value(self, x: Any, grid: bool = False) -> Any:
        """The trainer value of latent x, as W&B's sampler defines the distribution."""
        return dist.forward(self, x, grid)

    def latent_of(self, value: Any, grid: bool = False) -> Any | None:
        """A latent whose value() is `value`, or None when the space cannot give that value."""
        return dist.inverse(self, value, grid)

    def extremes(self, grid: bool = False) -> tuple:
        """Trainer values that bound what this parameter can give (every listed value, or both ends)."""
        return dist.extremes(self, grid)

    def corners(self, grid: bool = False, limit: int = 16) -> tuple:
        """Trainer values to try a resource formula on: every value of a short list or grid (at most
        `limit`, counted before listing), else the extremes."""
        if self.enumerable and self.grid_size() <= limit and (grid or self.distribution != "q_uniform"):
            return tuple(self.grid_values())
        return self.extremes(grid)

    def describe(self) -> str:
        """Short human text of the values or the distribution and the range of values it gives."""
        d = self.distribution
        if self.probabilities is not None:
            return ", ".join(f"{v} (p={w:g})" for v, w in zip(self.values, self.probabilities))
        if d in ("constant", "categorical"):
            return ", ".join(str(v) for v in self.values)
        if d in ("int_uniform", "range"):
            step = f" step {self.step}" if self.step not in (None, 1) else ""
            return f"[{self.low}, {self.high}]{step}"
        fields = {"normal": ("mu", "sigma"), "log_normal": ("mu", "sigma"), "beta": ("a", "b")}.get(
            dist.QUANTISED.get(d, d), ("low", "high"))
        text = ", ".join(f"{'min' if f == 'low' else 'max' if f == 'high' else f} {getattr(self, f):g}" for f in fields)
        text += f", q {self.q:g}" if d in dist.QUANTISED else ""
        lo, hi = sorted(self.extremes())
        return text if (lo, hi) == (self.low, self.high) else f"{text} -> values {lo:.4g} to {hi:.4g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the spec hash)."""
        out = dataclasses.asdict(self)
        out["values"] = list(self.values)
        out["probabilities"] = None if self.probabilities is None else list(self.probabilities)
        return out
