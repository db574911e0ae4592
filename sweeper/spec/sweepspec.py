"""The validated sweep: frozen `SweepSpec` and its parts (Metric, Scheduler, WarmStart).

Built by sweeper.spec.load from the raw models of schema.py; every other package reads only these.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from sweeper.spec.param import Param


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    """Metric key reported by the trainer."""
    goal: Literal["maximize", "minimize"]
    """Direction of improvement."""
    target: float | None = None
    """Stop starting new trials once a trial reaches this value (>= for maximize, <= for minimize), as
    W&B's metric.target does; trials already running finish. None: no target."""


@dataclass(frozen=True, kw_only=True)
class WarmStart:
    sweep: str
    """Name of the earlier sweep whose finished trials are fed to this sweep's sampler first."""
    skip_existing: bool
    """Configurations that already ran there are not run again."""


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    type: Literal["asha", "hyperband", "median", "wandb_hyperband"]
    """Ray Tune scheduler kind; wandb_hyperband is W&B's hyperband stopping rule (from early_terminate)."""
    grace_period: int
    """Evaluations before a trial may be stopped."""
    reduction_factor: float
    """Fraction 1/reduction_factor survives each rung."""
    max_t: int | None
    """Evaluations of a full trial (null: the runner derives it)."""
    brackets: int
    """ASHA brackets."""
    rungs: tuple[int, ...] = ()
    """wandb_hyperband: W&B's bands, in evaluations. At each band, a trial whose value there is outside
    the best 1/eta of all trials' values there (the sorted value at index int(n / eta)) stops; it is
    checked at every report against the latest band it has passed."""
    strict: bool = True
    """wandb_hyperband: compare the trial's value at the band (W&B's default); false: its best value so far."""


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated sweep; build it with `load_spec`. Fields mirror the file after normalisation."""

    name: str
    """Safe directory name of the sweep."""
    description: str
    """Free text."""
    method: str
    """One of METHODS (bayes is stored as tpe)."""
    metrics: tuple[Metric, ...]
    """One metric, or several for multi-objective search."""
    parameters: tuple[Param, ...]
    """Swept and constant parameters, sorted by name."""
    run_cap: int | None
    """At most this many trials (configurations x seeds)."""
    base_preset: str | None
    """Explicit base preset (wins over profile)."""
    base_overrides: Mapping[str, Any]
    """Dotted overrides applied to every trial."""
    seeds: tuple[int, ...]
    """Each configuration runs once per seed."""
    profile: str
    """auto or a preset name."""
    gpu: float | str
    """GPU share per trial: a number or an expression (see sweeper.spec.expr)."""
    cpus: float | str
    """CPUs per trial: a number or an expression."""
    concurrency: int | None
    """Trials at once (null: as many as resources allow)."""
    time_budget: float | None
    """Seconds for the whole sweep (null: no limit)."""
    max_failures: int | None
    """Stop the sweep after this many failed trials (null: never)."""
    trial_retries: int
    """Retries of a failed trial."""
    scheduler: Scheduler | None
    """Early stopping (null: every trial runs to the end)."""
    baseline: tuple[Mapping[str, Any], ...] | None
    """Configurations evaluated first (null: the base config)."""
    tracking_uri: str | None
    """MLflow URI (null: embedded store)."""
    sampler_seed: int
    """Seed of the Optuna sampler (0 <= seed < 2**31)."""
    warm_start: WarmStart | None = None
    """Start the search from another sweep's finished trials (null: a fresh search)."""
    notes: tuple[str, ...] = ()
    """One line per key that was accepted but has no effect, or whose meaning differs from W&B's; shown by
    `sweeper validate` and `sweeper run`, and left out of the spec hash."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict of the normalised spec."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["metrics"] = [dataclasses.asdict(m) for m in self.metrics]
        out["parameters"] = [p.to_dict() for p in self.parameters]
        out["base_overrides"] = dict(self.base_overrides)
        out["scheduler"] = dataclasses.asdict(self.scheduler) if self.scheduler else None
        out["warm_start"] = dataclasses.asdict(self.warm_start) if self.warm_start else None
        out["notes"] = list(self.notes)
        out["baseline"] = None if self.baseline is None else [dict(b) for b in self.baseline]
        out["seeds"] = list(self.seeds)
        return out

    @property
    def spec_hash(self) -> str:
        """Stable 16-hex-digit hash of what the spec runs: key order, spelling, description and notes do not matter."""
        blob = json.dumps({**self.to_dict(), "description": None, "notes": None}, sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def swept(self) -> tuple[Param, ...]:
        """Parameters that vary (constants excluded)."""
        return tuple(p for p in self.parameters if p.kind != "constant")
