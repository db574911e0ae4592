"""The sweep file's schema: the raw (pydantic) models of the YAML keys, as written.

A sweep file is a superset of the W&B sweep schema (every key of W&B's schema is accepted; see
docs/SWEEP_FILE.md) plus project keys (base preset, seeds, profile, resources, scheduler, ...).
`sweeper.spec.load` turns them into a SweepSpec (sweepspec.py); the parameter forms live in params.py and param.py,
W&B's distributions in distributions.py, W&B-only keys in wandb.py, the dotted trainer keys in
trainer_keys.py, the one-line problems in problems.py.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sweeper.spec.problems import Raw

GOALS = {"eval/puzzle_acc": "maximize", "eval/cell_acc": "maximize", "eval/mean_halt_step": "minimize",
         "train/loss": "minimize", "cost/chain_steps": "minimize"}
"""Metric keys the trainer reports and the direction that is better for each (the default `goal`)."""
KNOWN_METRICS = tuple(GOALS)
"""Metric keys the trainer reports (a typo here would make every trial look failed)."""
METHODS = ("grid", "random", "tpe", "gp", "cmaes", "nsga2", "qmc")
"""Search methods; W&B's `bayes` is read as tpe."""

MAX_SEED = 2**31
"""Seeds and sampler_seed stay below this: Optuna adds the session count to sampler_seed, and NumPy's
legacy seeding (Optuna's samplers) refuses seeds from 2**32 on."""
MAX_GRID = 100_000
"""Grids with more configurations are refused: Optuna's GridSampler materialises every one."""


BIG = 10**9
"""Upper bound of every count in a sweep file: a 5,000-digit integer is a one-line error, not an overflow."""

class MetricRaw(Raw):
    name: str
    """A metric the trainer reports, e.g. eval/puzzle_acc."""
    goal: Literal["maximize", "minimize"] | None = None
    """Whether larger (maximize) or smaller (minimize) is better (default: the metric's better direction;
    W&B's default is always minimize)."""
    target: float | None = None
    """Stop starting trials once a trial reaches this value (W&B's metric.target)."""
    impute: Literal["latest", "best", "worst"] | None = None
    """W&B: the value given to failed runs in its bayes search; ignored here (failed trials are left out)."""
    impute_while_running: Literal["latest", "best", "worst", "false"] | None = None
    """W&B: impute values of running runs; ignored here."""


class BaseRaw(Raw):
    preset: str | None = None
    """Trainer preset every trial starts from (wins over `profile`)."""
    overrides: dict[str, Any] = {}
    """Dotted trainer keys applied on top of the preset for every trial."""


class SchedulerRaw(Raw):
    type: Literal["asha", "hyperband", "median", "none"] = "asha"
    """Ray Tune trial scheduler that stops weak trials early (none = run every trial to the end)."""
    grace_period: int = Field(1, ge=1, le=BIG)
    """Evaluations (reports) a trial gets before it can be stopped."""
    reduction_factor: float = Field(3.0, gt=1)
    """Keep 1/reduction_factor of the trials at each rung."""
    max_t: int | None = Field(None, ge=1, le=BIG)
    """Evaluations of a full trial (null: derived from steps / eval_every by the runner)."""
    brackets: int = Field(1, ge=1, le=BIG)
    """ASHA brackets (W&B's `s`)."""


class EarlyTerminateRaw(Raw):
    """W&B's early_terminate; it becomes a `wandb_hyperband` Scheduler with W&B's bands and rule."""

    type: Literal["hyperband"]
    """The only kind W&B has."""
    min_iter: int | None = Field(None, ge=1, le=BIG)
    """First band (in evaluations); later bands at min_iter * eta^k."""
    max_iter: int | None = Field(None, ge=1, le=BIG)
    """With s: bands at max_iter / eta^k, k = 1..s (wins over min_iter, as in W&B)."""
    s: int | None = Field(None, ge=1, le=BIG)
    """How many bands below max_iter."""
    eta: float = Field(3.0, gt=1)
    """At each band, trials outside the best 1/eta stop."""
    strict: bool = True
    """W&B's strict rule (its default): compare the value at the band; false: the best value so far."""


class WarmStartRaw(Raw):
    sweep: str
    """The earlier sweep (its name) whose finished trials start this one's search."""
    skip_existing: bool = False
    """Do not run again configurations that already ran there."""


class ControllerRaw(Raw):
    type: Literal["local", "cloud"]
    """W&B's controller kind; ignored here."""


class ResourcesRaw(Raw):
    gpu: Any = None
    """GPU fraction per trial: a number or an expression over parameters such as `0.125 * K`."""
    trials_per_gpu: int | None = Field(None, ge=1, le=BIG)
    """Alternative to `gpu`: this many trials share one GPU."""


class TrackingRaw(Raw):
    uri: str | None = None
    """MLflow tracking URI (null: the embedded store of the sweep directory)."""


class SpecRaw(Raw):
    program: str | None = None
    """W&B: the training script; ignored (every trial runs the TRM trainer), with a note."""
    command: list[Any] | None = None
    """W&B: the command line of a run; ignored, with a note."""
    project: str | None = None
    """W&B project; ignored (the MLflow experiment is the sweep name), with a note."""
    entity: str | None = None
    """W&B entity; ignored, with a note."""
    controller: ControllerRaw | None = None
    """W&B controller; ignored, with a note."""
    apiVersion: str | None = None  # noqa: N815 -- W&B's spelling
    """W&B metadata; ignored, with a note."""
    kind: Literal["sweep"] | None = None
    """W&B metadata (always `sweep`); ignored, with a note."""
    job: str | None = None
    """W&B Launch job; ignored, with a note."""
    image_uri: str | None = None
    """W&B Launch image; ignored, with a note."""
    warm_start: Any = None
    """An earlier sweep (a name, or WarmStartRaw's {sweep, skip_existing}) whose finished trials start the search."""
    name: str | None = None
    """Sweep name: its folder sweeps/<name>/ and MLflow experiment (default: the file name)."""
    description: str = ""
    """Free text, shown by `sweeper validate`."""
    method: str = "grid"
    """Search method: grid, random, bayes (= tpe), tpe, gp, cmaes, nsga2, qmc."""
    metric: MetricRaw | None = None
    """The one metric to optimise."""
    metrics: list[MetricRaw] | None = None
    """Several metrics (multi-objective search); instead of `metric`."""
    parameters: dict[str, Any] = {}
    """Dotted trainer key -> W&B dict, Hydra string or constant (nested W&B groups flatten)."""
    early_terminate: EarlyTerminateRaw | None = None
    """W&B's hyperband stopping; instead of `scheduler`."""
    run_cap: int | None = Field(None, ge=1, le=BIG)
    """At most this many trials (required for every method but grid)."""
    base: BaseRaw = BaseRaw()
    """Preset and dotted overrides every trial starts from."""
    seeds: list[Annotated[int, Field(ge=0, lt=MAX_SEED)]] = [0]
    """Each configuration runs once per seed (0 <= seed < 2**31)."""
    profile: str = "auto"
    """auto (paper preset on a GPU, cpu-sweep without) or a preset name."""
    resources: ResourcesRaw = ResourcesRaw()
    """GPU share per trial."""
    cpus: Any = 1
    """CPUs (torch threads) per trial: a number or an expression."""
    concurrency: int | None = Field(None, ge=1, le=BIG)
    """Trials at once (default: as many as resources allow)."""
    time_budget: Any = None
    """Wall time of the whole sweep: seconds or '90s', '15m', '2h', '1h30m'."""
    max_failures: int | None = Field(None, ge=0, le=BIG)
    """Stop the sweep (resumably) when more trials than this fail."""
    trial_retries: int = Field(0, ge=0, le=BIG)
    """Retries of a crashed trial from its last checkpoint."""
    scheduler: SchedulerRaw | None = None
    """Early stopping by a Ray Tune scheduler (asha, hyperband, median, none)."""
    baseline: list[dict[str, Any]] | None = None
    """Configurations run first; their TTA evaluation is the reference (default: the base config)."""
    tracking: TrackingRaw = TrackingRaw()
    """MLflow store."""
    sampler_seed: int = Field(0, ge=0, lt=MAX_SEED)
    """Seed of the Optuna sampler (0 <= seed < 2**31)."""
