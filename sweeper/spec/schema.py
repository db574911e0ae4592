"""The sweep file's schema: the raw (pydantic) models of the YAML keys and the frozen `SweepSpec`.

A sweep file is a superset of the W&B sweep schema plus project keys (base preset, seeds, profile,
resources, scheduler, ...). `sweeper.spec.load` turns a file into a SweepSpec; the parameter forms
live in params.py, the dotted trainer keys in trainer_keys.py, the one-line problems in problems.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from pydantic import Field

from sweeper.spec.params import Param
from sweeper.spec.problems import Raw

KNOWN_METRICS = ("eval/puzzle_acc", "eval/cell_acc", "eval/mean_halt_step", "train/loss", "cost/chain_steps")
"""Metric keys the trainer reports (a typo here would make every trial look failed)."""
METHODS = ("grid", "random", "tpe", "gp", "cmaes", "nsga2", "qmc")
"""Search methods; W&B's `bayes` is read as tpe."""

MAX_BYTES = 1_000_000
"""Sweep files larger than this are refused (they are hand-written; this bounds parse work)."""
MAX_GRID = 100_000
"""Grids with more configurations are refused: Optuna's GridSampler materialises every one."""


class MetricRaw(Raw):
    name: str
    """A metric the trainer reports, e.g. eval/puzzle_acc."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether larger (maximize) or smaller (minimize) is better."""


class BaseRaw(Raw):
    preset: str | None = None
    """Trainer preset every trial starts from (wins over `profile`)."""
    overrides: dict[str, Any] = {}
    """Dotted trainer keys applied on top of the preset for every trial."""


class SchedulerRaw(Raw):
    type: Literal["asha", "hyperband", "median", "none"] = "asha"
    """Ray Tune trial scheduler that stops weak trials early (none = run every trial to the end)."""
    grace_period: int = Field(1, ge=1)
    """Evaluations (reports) a trial gets before it can be stopped."""
    reduction_factor: float = Field(3.0, gt=1)
    """Keep 1/reduction_factor of the trials at each rung."""
    max_t: int | None = Field(None, ge=1)
    """Evaluations of a full trial (null: derived from steps / eval_every by the runner)."""
    brackets: int = Field(1, ge=1)
    """ASHA brackets (W&B's `s`)."""


class EarlyTerminateRaw(Raw):
    """W&B's early_terminate; it is converted to the equivalent ASHA scheduler."""

    type: Literal["hyperband"]
    min_iter: int | None = Field(None, ge=1)
    max_iter: int | None = Field(None, ge=1)
    s: int = Field(1, ge=1)
    eta: float = Field(3.0, gt=1)


class ResourcesRaw(Raw):
    gpu: Any = None
    """GPU fraction per trial: a number or an expression over parameters such as `0.125 * K`."""
    trials_per_gpu: int | None = Field(None, ge=1)
    """Alternative to `gpu`: this many trials share one GPU."""


class TrackingRaw(Raw):
    uri: str | None = None
    """MLflow tracking URI (null: the embedded store of the sweep directory)."""


class SpecRaw(Raw):
    name: str | None = None
    description: str = ""
    method: str = "grid"
    metric: MetricRaw | None = None
    metrics: list[MetricRaw] | None = None
    parameters: dict[str, Any] = {}
    early_terminate: EarlyTerminateRaw | None = None
    run_cap: int | None = Field(None, ge=1)
    base: BaseRaw = BaseRaw()
    seeds: list[int] = [0]
    profile: str = "auto"
    resources: ResourcesRaw = ResourcesRaw()
    cpus: Any = 1
    concurrency: int | None = Field(None, ge=1)
    time_budget: Any = None
    max_failures: int | None = Field(None, ge=0)
    trial_retries: int = Field(0, ge=0)
    scheduler: SchedulerRaw | None = None
    baseline: list[dict[str, Any]] | None = None
    tracking: TrackingRaw = TrackingRaw()
    sampler_seed: int = 0


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    """Metric key reported by the trainer."""
    goal: Literal["maximize", "minimize"]
    """Direction of improvement."""


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    type: Literal["asha", "hyperband", "median"]
    """Ray Tune scheduler kind."""
    grace_period: int
    """Evaluations before a trial may be stopped."""
    reduction_factor: float
    """Fraction 1/reduction_factor survives each rung."""
    max_t: int | None
    """Evaluations of a full trial (null: the runner derives it)."""
    brackets: int
    """ASHA brackets."""


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
    """Seed of the Optuna sampler."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict of the normalised spec."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["metrics"] = [dataclasses.asdict(m) for m in self.metrics]
        out["parameters"] = [p.to_dict() for p in self.parameters]
        out["base_overrides"] = dict(self.base_overrides)
        out["scheduler"] = dataclasses.asdict(self.scheduler) if self.scheduler else None
        out["baseline"] = None if self.baseline is None else [dict(b) for b in self.baseline]
        out["seeds"] = list(self.seeds)
        return out

    @property
    def spec_hash(self) -> str:
        """Stable 16-hex-digit hash of what the spec runs: key order, spelling and description do not matter."""
        blob = json.dumps({**self.to_dict(), "description": None}, sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def swept(self) -> tuple[Param, ...]:
        """Parameters that vary (constants excluded)."""
        return tuple(p for p in self.parameters if p.kind != "constant")
