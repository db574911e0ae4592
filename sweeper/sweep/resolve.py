"""Resolving a trial: the one place a sweep turns a spec and sampled parameters into a TrainConfig, and the
CPU/GPU shares a trial reserves. Deterministic, so a trial handed out again gets the same plan.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from sweeper.errors import UserError
from sweeper.spec import AUTO_PRESETS, EXPR_ALIASES, SweepSpec, expr, normalise_value
from sweeper.sweep.space import trainer_values
from sweeper.sweep.trial import TrialPlan, config_key, config_label
from trm_core.config import TrainConfig, flatten, resolve, to_dict


def resolve_trial(spec: SweepSpec, handout: Mapping[str, Any], preset: str, has_gpu: bool,
                  baseline_keys: frozenset[str]) -> TrialPlan:
    """The plan of the trial the study handed out (number, params, seed, overrides)."""
    params, overrides = dict(handout["params"]), dict(handout.get("overrides") or {})
    values = {**trainer_values(spec, params), **overrides}
    cfg = to_dict(trial_config(spec, values, int(handout["seed"]), preset))
    flat = flatten(cfg)
    key = config_key(flat)
    swept = [p.name for p in spec.swept]
    return TrialPlan(number=int(handout["number"]), seed=int(handout["seed"]), params=params, overrides=overrides,
                     values={k: flat[k] for k in swept}, config=cfg, cpu=share(spec, "cpus", flat), gpu=share(spec, "resources.gpu", flat) if has_gpu else 0.0,
                     baseline=key in baseline_keys, config_key=key, label=config_label(flat, swept))


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


def trial_config(spec: SweepSpec, values: Mapping[str, Any], seed: int, preset: str) -> TrainConfig:
    """Preset, then base overrides, then constants, then `values` (trainer values of the swept keys: see
    space.trainer_values for sampled ones), then the seed. The one place a sweep builds a TrainConfig
    (errors are trm_core ConfigErrors)."""
    overrides: dict[str, Any] = dict(spec.base_overrides)
    overrides.update({p.name: p.values[0] for p in spec.parameters if p.kind == "constant"})
    overrides.update({key: normalise_value(key, value) for key, value in values.items()})
    overrides["seed"] = seed
    cfg = resolve(spec.base_preset or preset, overrides)
    if cfg.data.path and not Path(cfg.data.path).is_absolute():
        # Relative to where the sweep was started: trials run in Ray's working directories.
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(Path(cfg.data.path).resolve())))
    return cfg


def share(spec: SweepSpec, key: str, flat: Mapping[str, Any]) -> float:
    """The CPUs (`cpus`) or GPU fraction (`resources.gpu`) a trial with resolved config `flat` asks for."""
    amount = spec.cpus if key == "cpus" else spec.gpu
    if isinstance(amount, str):
        values = dict(flat)
        values.update({alias: values[target] for alias, target in EXPR_ALIASES.items()})
        try:
            amount = expr.parse(amount, values).evaluate(values)
        except expr.ExprError as e:
            raise UserError(f"{key}: {e}") from None
    amount = float(amount)
    if key == "cpus" and amount <= 0:
        raise UserError(f"cpus: {spec.cpus!r} gives {amount:g}; a trial needs more than 0 CPUs")
    if key != "cpus" and (amount < 0 or (amount > 1 and not amount.is_integer())):
        raise UserError(f"resources.gpu: {spec.gpu!r} gives {amount:g}; a trial needs a fraction up to 1 or a "
                        "whole number of GPUs")
    return amount
