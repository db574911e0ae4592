"""The sweep plan: everything decided about a sweep before its first trial, checked once, typed.

`plan_sweep(spec, gpus, max_node_cpus)` is the one function `sweeper run`, `sweeper run --dry-run` and
`sweeper validate` use: the profile (preset), the base config, the trial count, the baselines (as Optuna
points and as configuration keys), the scheduler's max_t, and the CPU/GPU shares over the corners of the
space (so a share expression that is invalid somewhere in the space fails here, not mid-sweep).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from sweeper.errors import UserError
from sweeper.spec import SweepSpec
from sweeper.sweep import space
from sweeper.sweep.resolve import resolve_profile, share, trial_config
from sweeper.sweep.study import baseline_points
from sweeper.sweep.trial import config_key
from trm_core.config import flatten, to_dict

MAX_CORNERS = 256
"""Resource shares are evaluated on at most this many corner configurations of the space."""


@dataclass(frozen=True, kw_only=True)
class SweepPlan:
    """A sweep as it will run on this machine or cluster."""

    spec: SweepSpec
    """The validated spec."""
    preset: str
    """The trainer preset every trial starts from (after profile resolution)."""
    announce: str
    """One line saying which preset and why."""
    has_gpu: bool
    """Trials reserve GPU shares (the machine or cluster has GPUs)."""
    base_config: dict[str, Any]
    """The base TrainConfig (preset + base overrides + constants, first seed) as a dict."""
    total: int
    """Trials the sweep runs in all."""
    baselines: tuple[dict[str, Any], ...]
    """Per baseline configuration: {'params': Optuna params, 'overrides': values a distribution cannot hold}."""
    baseline_keys: frozenset[str]
    """config_key of each baseline configuration."""
    max_t: int
    """Evaluations of a full trial (the scheduler's max_t)."""
    cpu_range: tuple[float, float]
    """Lowest and highest CPUs a trial asks for over the space's corners."""
    gpu_range: tuple[float, float]
    """Lowest and highest GPU share over the corners (what trials reserve where GPUs exist; none otherwise)."""


def plan_sweep(spec: SweepSpec, gpus: float, max_node_cpus: float | None = None) -> SweepPlan:
    """The plan for `spec` where `gpus` GPUs exist; UserError for what would fail once trials start."""
    has_gpu = gpus > 0
    preset, announce = resolve_profile(spec, has_gpu)
    base = trial_config(spec, {}, spec.seeds[0], preset)
    if not has_gpu and base.device.startswith("cuda"):
        raise UserError(f"the trials ask for device '{base.device}' but there is no GPU; set device: auto "
                        "(or cpu), or run where a GPU is available")
    flat = flatten(to_dict(base))
    entries = spec.baseline if spec.baseline else ({},)
    keys = frozenset(config_key(flatten(to_dict(trial_config(spec, dict(e), spec.seeds[0], preset))))
                     for e in entries)
    cpus = [share(spec, "cpus", c) for c in _corner_configs(spec, preset)]
    gpu_shares = [share(spec, "resources.gpu", c) for c in _corner_configs(spec, preset)]  # checked even on a CPU
    if max_node_cpus is not None and max(cpus) > max_node_cpus:
        raise UserError(f"cpus: a trial asks for up to {max(cpus):g} CPUs but the largest Ray node has "
                        f"{max_node_cpus:g}")
    s = spec.scheduler
    max_t = s.max_t if s and s.max_t else math.ceil(base.steps / base.eval_every)
    return SweepPlan(spec=spec, preset=preset, announce=announce, has_gpu=has_gpu, base_config=to_dict(base),
                     total=space.trial_count(spec), baselines=tuple(baseline_points(spec, flat)),
                     baseline_keys=keys, max_t=max_t, cpu_range=(min(cpus), max(cpus)),
                     gpu_range=(min(gpu_shares), max(gpu_shares)))


def _corner_configs(spec: SweepSpec, preset: str) -> list[dict[str, Any]]:
    """Flattened configs at the ends of every swept range (listed values: all of them, up to 16), plus
    the baselines; resolved only when a share is an expression (a number needs no config)."""
    if not isinstance(spec.cpus, str) and not isinstance(spec.gpu, str):
        return [{}]
    axes = [[(p.name, v) for v in p.corners(spec.method == "grid")] for p in spec.swept]
    corners = [dict(c) for c in itertools.islice(itertools.product(*axes), MAX_CORNERS)]
    corners += [{}] if spec.baseline is None else [dict(b) for b in spec.baseline]
    return [flatten(to_dict(trial_config(spec, c, spec.seeds[0], preset))) for c in corners]
