"""SweepSpec -> Optuna: the search space (distributions), the sampler, trial counts, and the values a
sampled trial gives its trainer keys. With study.py the only modules that import Optuna's samplers.

Constants (`value:` / plain scalars) are not part of the Optuna space: trial.trial_config applies them.
"""
from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any, Mapping

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweeper.errors import UserError
from sweeper.spec import SweepSpec, normalise_value


def build_distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """Optuna distribution of every swept parameter, keyed by dotted trainer key: the parameter's latent
    (Param.latent), which is the value itself for most distributions and a probability for W&B's normal,
    log_normal, beta and weighted categorical (Param.value maps it; see sweeper/spec/distributions.py)."""
    out: dict[str, BaseDistribution] = {}
    grid = spec.method == "grid"
    for p in spec.swept:
        lat = p.latent(grid)
        if lat.kind == "categorical":
            out[p.name] = CategoricalDistribution(list(lat.choices))
        elif lat.kind == "int":
            out[p.name] = IntDistribution(lat.low, lat.high, step=lat.step or 1)
        else:
            out[p.name] = FloatDistribution(lat.low, lat.high, log=lat.log, step=lat.step)
    return out


def grid_space(spec: SweepSpec) -> dict[str, list]:
    """Every value of every swept parameter (the GridSampler's search space); needs enumerable params
    and a grid the spec has already bounded (MAX_GRID, counted without listing)."""
    missing = [p for p in spec.swept if not p.enumerable]
    if missing:
        raise UserError(f"parameters.{missing[0].name}: {missing[0].distribution} has no grid")
    return {p.name: p.grid_values() for p in spec.swept}


def grid_size(spec: SweepSpec) -> int | None:
    """Number of distinct configurations, or None when a parameter is continuous (unbounded); counted
    arithmetically, so a range of 10**12 values costs nothing."""
    if any(not p.enumerable for p in spec.swept):
        return None
    return math.prod(p.grid_size() for p in spec.swept)


def trial_count(spec: SweepSpec) -> int:
    """Trials the sweep runs: (baseline configurations + searched configurations) x seeds, capped by run_cap.

    A grid runs every configuration; the other methods have no natural end, so run_cap (required by
    the spec for them) is the count. The default baseline is one configuration: the base config.
    """
    if spec.method != "grid":
        return spec.run_cap
    baselines = 1 if spec.baseline is None else len(spec.baseline)
    total = (baselines + grid_size(spec)) * len(spec.seeds)
    return min(total, spec.run_cap) if spec.run_cap else total


def directions(spec: SweepSpec) -> list[str]:
    """Optuna study directions, one per metric ('maximize' / 'minimize')."""
    return [m.goal for m in spec.metrics]


def make_sampler(spec: SweepSpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for spec.method, seeded with `seed` (default: spec.sampler_seed)."""
    seed = spec.sampler_seed if seed is None else seed
    samplers = optuna.samplers
    with warnings.catch_warnings():
        # QMCSampler and GPSampler are flagged experimental; that is not the user's concern here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.method == "grid":
            return samplers.GridSampler(grid_space(spec), seed=seed)
        if spec.method == "random":
            return samplers.RandomSampler(seed=seed)
        if spec.method == "tpe":
            return samplers.TPESampler(seed=seed)
        if spec.method == "gp":
            return samplers.GPSampler(seed=seed)
        if spec.method == "cmaes":
            # Optuna imports cmaes lazily and would fail at the first trial; fail before starting instead.
            if importlib.util.find_spec("cmaes") is None:
                raise UserError("method: cmaes needs the 'cmaes' package, which is not installed (pip install cmaes)")
            return samplers.CmaEsSampler(seed=seed)
        if spec.method == "nsga2":
            return samplers.NSGAIISampler(seed=seed)
        if spec.method == "qmc":
            # Scrambling makes the seed matter; unscrambled Sobol points are the same for every seed.
            return samplers.QMCSampler(seed=seed, scramble=True)
    raise UserError(f"method: {spec.method!r} has no sampler")


def trainer_values(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer-key values of sampled Optuna `params` (the only place sampled values become config):
    each latent through its Param.value, so W&B's distributions get their exact values. Keys that are
    not swept parameters pass through as they are."""
    swept, grid = {p.name: p for p in spec.swept}, spec.method == "grid"
    return {key: normalise_value(key, swept[key].value(value, grid) if key in swept else value)
            for key, value in params.items()}


def shown_values(spec: SweepSpec, row: dict[str, Any]) -> dict[str, Any]:
    """A journal row's trainer values (its params through trainer_values, baseline overrides on top): what
    tables show, since a latent param (a probability) means nothing to a reader."""
    return {**trainer_values(spec, row.get("params") or {}), **(row.get("overrides") or {})}
