"""A trial resolved once, in the driver (sweeper.sweep.resolve): its Optuna parameters -> one TrainConfig ->
a frozen TrialPlan, the type defined here.

    handout {number, params, seed, overrides} --resolve_trial--> TrialPlan --Ray config--> worker

The plan carries the fully resolved trainer config as a plain dict, the CPU and GPU shares and whether
the trial is a baseline, so the worker, the final evaluation, the sinks and `sweeper status` read it and
never rebuild it: this module imports nothing from the spec layer, and neither does the worker. Resolution is deterministic: a trial
handed out again after a crash gets the same plan. Device, threads and the data cache stay the worker's
decisions (they depend on where it runs).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from trm_core.config import flatten

MACHINE_KEYS = ("seed", "device", "threads", "data.cache_dir")
"""Config keys that do not make a configuration different (the seed is a sweep axis of its own)."""


@dataclass(frozen=True, kw_only=True)
class TrialPlan:
    """Everything about one trial that the driver decides; shipped to the worker in Ray's trial config."""

    number: int
    """Optuna trial number: the trial's stable key (folder trials/tNNNN, MLflow run)."""
    seed: int
    """Training seed."""
    params: dict[str, Any]
    """The swept parameters as the sampler drew them (Optuna's view)."""
    overrides: dict[str, Any]
    """Baseline values a distribution cannot hold; applied on top of `params`."""
    values: dict[str, Any]
    """The swept keys' trainer values (what `params` mean: equal to them except for W&B's latent
    distributions, whose params are probabilities)."""
    config: dict[str, Any]
    """The resolved TrainConfig (trm_core.config.to_dict), before the worker's device/threads/cache."""
    cpu: float
    """CPUs reserved (the worker's torch threads)."""
    gpu: float
    """GPU fraction reserved (0 on a machine or cluster without GPUs)."""
    baseline: bool
    """The configuration is a baseline configuration (never stopped early; its TTA is the reference)."""
    config_key: str
    """Hash of the configuration without MACHINE_KEYS: equal for the seeds of one configuration."""
    label: str
    """'model.k=2 optim.adam_lr=0.001': the swept keys' values."""

    def to_ray(self) -> dict[str, Any]:
        """Ray Tune's trial config: the plan as plain data (plus top-level shares for with_resources)."""
        return {"number": self.number, "cpu": self.cpu, "gpu": self.gpu, "plan": dataclasses.asdict(self)}

    @classmethod
    def from_ray(cls, config: Mapping[str, Any]) -> "TrialPlan":
        return cls(**config["plan"])


def config_key(flat: Mapping[str, Any]) -> str:
    """12-hex-digit hash of a flattened config without MACHINE_KEYS."""
    kept = {k: v for k, v in flatten(dict(flat)).items() if k not in MACHINE_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_label(flat: Mapping[str, Any], swept: list[str] | tuple[str, ...]) -> str:
    """'model.k=2 optim.adam_lr=0.001' for the swept keys of a flattened config ('base' when none)."""
    return " ".join(f"{k}={flat.get(k)}" for k in swept) or "base"
