"""SweepSpec -> Optuna search space and sampler; trial parameters -> TrainConfig and resources.

This is the only module of the spec layer that imports Optuna, so an Optuna API change touches one
file. Constants (`value:` / plain scalars) are not part of the Optuna space: trial_config applies them.
"""
from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any, Mapping

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweeper.spec import expr
from sweeper.errors import UserError
from sweeper.spec import AUTO_PRESETS, EXPR_ALIASES, SweepSpec, normalise_value
from trm_core.config import TrainConfig, flatten, resolve, to_dict


def build_distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """Optuna distribution of every swept parameter, keyed by dotted trainer key."""
    out: dict[str, BaseDistribution] = {}
    for p in spec.swept:
        if p.kind == "values":
            out[p.name] = CategoricalDistribution(list(p.values))
        elif p.kind == "int":
            out[p.name] = IntDistribution(p.low, p.high, step=p.step)
        else:
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return out


def grid_space(spec: SweepSpec) -> dict[str, list]:
    """Every value of every swept parameter (the GridSampler's search space); needs enumerable params."""
    missing = [p.name for p in spec.swept if not p.enumerable]
    if missing:
        raise UserError(f"parameters.{missing[0]}: a continuous range has no grid")
    return {p.name: p.grid_values() for p in spec.swept}


def grid_size(spec: SweepSpec) -> int | None:
    """Number of distinct configurations, or None when a parameter is continuous (unbounded)."""
    if any(not p.enumerable for p in spec.swept):
        return None
    return math.prod(len(p.grid_values()) for p in spec.swept)


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


def resolve_profile(spec: SweepSpec, has_gpu: bool) -> tuple[str, str]:
    """(preset every trial starts from, a line announcing why) for this spec on this machine."""
    if spec.base_preset is not None:
        why = f"base.preset is set, so profile '{spec.profile}' is not used"
        return spec.base_preset, f"profile: preset '{spec.base_preset}' ({why})"
    if spec.profile == "auto":
        preset = AUTO_PRESETS[has_gpu]
        why = "a GPU is available" if has_gpu else "no GPU found, so trials use the CPU-sized preset"
        return preset, f"profile: auto -> preset '{preset}' ({why})"
    return spec.profile, f"profile: preset '{spec.profile}' (named in the spec)"


def trial_config(spec: SweepSpec, params: Mapping[str, Any], seed: int, profile_preset: str) -> TrainConfig:
    """The trial's TrainConfig: preset, then base overrides, then constants, then `params`, then seed.

    `profile_preset` is used unless the spec names base.preset; errors are trm_core ConfigErrors.
    """
    overrides: dict[str, Any] = dict(spec.base_overrides)
    overrides.update({p.name: p.values[0] for p in spec.parameters if p.kind == "constant"})
    overrides.update({key: normalise_value(key, value) for key, value in params.items()})
    overrides["seed"] = seed
    return resolve(spec.base_preset or profile_preset, overrides)


def gpu_share(spec: SweepSpec, params: Mapping[str, Any], profile_preset: str | None = None) -> float:
    """GPU fraction (or whole GPUs) one trial with `params` asks for.

    `profile_preset` fills trainer keys the expression reads but the spec does not set; by default it
    is the GPU profile, since the share only matters on a GPU.
    """
    share = _amount(spec, "resources.gpu", spec.gpu, params, profile_preset, has_gpu=True)
    if share < 0 or (share > 1 and not share.is_integer()):
        raise UserError(f"resources.gpu: {spec.gpu!r} gives {share:g} for {dict(params)}; a trial needs a "
                        "fraction up to 1 or a whole number of GPUs")
    return share


def cpu_share(spec: SweepSpec, params: Mapping[str, Any], profile_preset: str | None = None) -> float:
    """CPUs one trial with `params` asks for (`profile_preset` default: the CPU profile)."""
    share = _amount(spec, "cpus", spec.cpus, params, profile_preset, has_gpu=False)
    if share <= 0:
        raise UserError(f"cpus: {spec.cpus!r} gives {share:g} for {dict(params)}; a trial needs more than 0 CPUs")
    return share


def _amount(spec: SweepSpec, key: str, amount: float | str, params: Mapping[str, Any],
            profile_preset: str | None, has_gpu: bool) -> float:
    if not isinstance(amount, str):
        return float(amount)
    preset = profile_preset or resolve_profile(spec, has_gpu)[0]
    values = flatten(to_dict(trial_config(spec, params, 0, preset)))
    values.update({alias: values[target] for alias, target in EXPR_ALIASES.items()})
    try:
        return expr.parse(amount, values).evaluate(values)
    except expr.ExprError as e:
        raise UserError(f"{key}: {e}") from None
