"""The trial side of MLflow tracking: a Sink that continues the trial's child run and, once the trial has
trained to its last step, runs the final evaluation (sweeper.final_eval) and uploads its results.

`MlflowSinkFactory` is what the runner hands to every trial (see sweeper.hooks): a small frozen dataclass,
so Ray can pickle it. MLflow itself is reached only through sweeper.tracking.Tracker.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from sweeper import faults, final_eval, plots
from sweeper.baselines import config_key, config_label
from sweeper.hooks import TrialContext
from sweeper.tracking import (TAG_NUMBER, TAG_PARENT, TAG_ROLE, TAG_SWEEP, Store, Tracker, flat_params,
                              host, keep_metrics)

RUN_ID_FILE = "mlflow_run_id"
LOGGED_MARK = "mlflow_logged"


def trial_match(sweep: str, number: int) -> dict[str, str]:
    """The tags that identify a trial's run."""
    return {TAG_SWEEP: sweep, TAG_ROLE: "trial", TAG_NUMBER: str(number)}


def parent_run_id(tracker: Tracker, sweep_dir: Path) -> str | None:
    """The sweep's parent run: from the sweep dir, else by tags; None if the sweep has none yet."""
    path = Path(sweep_dir) / "mlflow" / "parent_run_id"
    if path.is_file():
        return path.read_text().strip()
    found = tracker.find({TAG_SWEEP: tracker.experiment, TAG_ROLE: "sweep"})
    return found[0].info.run_id if found else None


def ensure_trial_run(tracker: Tracker, sweep_dir: Path, work_dir: Path, number: int, seed: int,
                     trial_id: str) -> str:
    """The trial's child run (created once, ever), RUNNING, linked to the sweep's parent run."""
    parent = parent_run_id(tracker, sweep_dir)
    tags = {"sweeper.seed": str(seed), "sweeper.trial_id": trial_id, **({TAG_PARENT: parent} if parent else {})}
    run_id = tracker.ensure_run(Path(work_dir) / RUN_ID_FILE, trial_match(tracker.experiment, number), tags,
                                name=f"t{number:04d}")
    tracker.log(run_id, tags=tags)  # a re-attached trial may have a new Ray trial id
    return run_id


@dataclass(frozen=True, kw_only=True)
class MlflowSinkFactory:
    """SinkFactory for sweeper.hooks: `factory(ctx)` -> MlflowSink, inside the trial's worker."""

    uri: str
    """Absolute tracking URI."""
    artifact_root: str | None
    """Artifact root of the embedded store (None for a server)."""
    sweep: str
    """Sweep name = experiment name."""
    swept: tuple[str, ...] = ()
    """Swept parameter names, for the run's configuration label."""
    final_eval: bool = True
    """Run the final evaluation when the trial has trained to its last step."""

    def __call__(self, ctx: TrialContext) -> "MlflowSink":
        return MlflowSink(self, ctx)


class MlflowSink:
    """Logs the trainer's namespaced metrics to the trial's child run; see the module docstring."""

    def __init__(self, factory: MlflowSinkFactory, ctx: TrialContext):
        self.factory, self.ctx = factory, ctx
        self.tracker = Tracker(Store(factory.uri, factory.artifact_root, "sweep"), factory.sweep)
        self.run_id = ensure_trial_run(self.tracker, ctx.sweep_dir, ctx.work_dir, ctx.number, ctx.seed, ctx.trial_id)
        config_file = Path(ctx.work_dir) / "config.yaml"
        config_file.write_text(yaml.safe_dump(ctx.config, sort_keys=False))
        self.tracker.log_new_params(self.run_id, {**flat_params(ctx.config), "seed": str(ctx.seed)})
        self.tracker.log(self.run_id, tags={
            "sweeper.config": config_label(ctx.config, factory.swept), "sweeper.config_key": config_key(ctx.config),
            "sweeper.params": json.dumps(ctx.params, sort_keys=True, default=str)[:5000],
            "sweeper.host": host(), "sweeper.device": ctx.config.get("device", "?"),
            "sweeper.threads": str(ctx.config.get("threads")), "sweeper.resumed": str(ctx.resumed).lower()})

    def log(self, metrics: dict[str, float], step: int) -> None:
        kept = keep_metrics(metrics)
        faults.point("mlflow_log", self.ctx.sweep_dir, self.ctx.number)
        if kept:
            self.tracker.log(self.run_id, kept, step)

    def on_eval(self, metrics: dict[str, float], step: int, checkpoint_dir: Path | None) -> None:
        self.log(metrics, step)

    def close(self) -> None:
        """If the trial trained to its last step: final evaluation (once), final/* metrics, artifacts."""
        work = Path(self.ctx.work_dir)
        steps = int(self.ctx.config["steps"])
        ckpt = final_eval.final_checkpoint(work / "checkpoints", steps)
        if ckpt is None or not self.factory.final_eval or (work / LOGGED_MARK).is_file():
            return
        if not final_eval.is_done(work):
            final_eval.run_final(self.ctx.config, ckpt, work, device=self.ctx.config.get("device", "auto"))
        publish_final(self.tracker, self.run_id, work, steps)


def publish_final(tracker: Tracker, run_id: str, work: Path, steps: int) -> None:
    """Upload a finished final evaluation of trial dir `work`: final/* metrics at `steps`, learning curves,
    config, results, per-puzzle correctness and plots; then mark the trial dir so it happens once."""
    results = final_eval.load_results(work)
    tracker.log(run_id, final_eval.final_metrics(results), step=steps)
    out = final_eval.final_dir(work)
    curves = tracker.history(run_id, [k for group in plots.CURVE_GROUPS for k in group])
    plots.learning_curves(curves, out / "plots" / "learning_curves.png")
    tracker.artifacts(run_id, [work / "config.yaml", out / final_eval.RESULTS, out / final_eval.PER_PUZZLE])
    tracker.artifacts(run_id, sorted((out / "plots").glob("*.png")), "plots")
    (work / LOGGED_MARK).write_text(run_id)
