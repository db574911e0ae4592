"""The trial side of MLflow tracking: a Sink that continues the trial's child run, and on close uploads the
trial's final evaluation (which the trainable ran; this module only logs).

`MlflowSinkFactory` is what every trial gets (see sweeper.hooks): a small frozen dataclass, so Ray can
pickle it. A tracking failure inside a trial (a server that is down, a full SQLite disk) never fails the
trial: it is written to trials/tNNNN/mlflow_errors.log and the sink goes quiet; the driver re-publishes what
is missing when it sees the trial end or the sweep resume.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from sweeper import faults
from sweeper.hooks import TrialContext
from sweeper.results import final_eval, plots
from sweeper.tracking.client import TAG_ID, TAG_NUMBER, TAG_PARENT, TAG_ROLE, TAG_SWEEP, Tracker, flat_params, keep_metrics
from sweeper.tracking.store import Store
from sweeper.util.files import write_text
from sweeper.util.names import trial_name

RUN_ID_FILE = "mlflow_run_id"
LOGGED_MARK = "mlflow_logged"
ERRORS_FILE = "mlflow_errors.log"


def trial_match(sweep: str, sweep_id: str, number: int) -> dict[str, str]:
    """The tags that identify a trial's run."""
    return {TAG_SWEEP: sweep, TAG_ID: sweep_id, TAG_ROLE: "trial", TAG_NUMBER: str(number)}


def parent_run_id(tracker: Tracker, sweep_dir: Path, sweep_id: str) -> str | None:
    """The sweep's parent run: from the sweep folder, else by tags; None if the sweep has none yet."""
    path = Path(sweep_dir) / "mlflow" / "parent_run_id"
    if path.is_file():
        return path.read_text().strip()
    found = tracker.find({TAG_SWEEP: tracker.experiment, TAG_ID: sweep_id, TAG_ROLE: "sweep"})
    return found[0].info.run_id if found else None


def ensure_trial_run(tracker: Tracker, sweep_dir: Path, sweep_id: str, work_dir: Path, number: int, seed: int,
                     trial_id: str) -> str:
    """The trial's child run (created once, ever), RUNNING, linked to the sweep's parent run."""
    parent = parent_run_id(tracker, sweep_dir, sweep_id)
    tags = {"sweeper.seed": str(seed), "sweeper.trial_id": trial_id, **({TAG_PARENT: parent} if parent else {})}
    run_id = tracker.ensure_run(Path(work_dir) / RUN_ID_FILE, trial_match(tracker.experiment, sweep_id, number), tags,
                                name=trial_name(number))
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
    sweep_id: str
    """The sweep folder's id (two sweeps of one name never share runs)."""

    def __call__(self, ctx: TrialContext) -> "MlflowSink":
        return MlflowSink(self, ctx)


class MlflowSink:
    """Logs the trainer's namespaced metrics to the trial's child run; see the module docstring."""

    def __init__(self, factory: MlflowSinkFactory, ctx: TrialContext):
        self.factory, self.ctx = factory, ctx
        self.tracker: Tracker | None = None
        self.run_id: str | None = None
        self._guard("start", self._start)

    def _start(self) -> None:
        ctx = self.ctx
        self.tracker = Tracker(Store(self.factory.uri, self.factory.artifact_root, "sweep"), self.factory.sweep)
        self.run_id = ensure_trial_run(self.tracker, ctx.sweep_dir, self.factory.sweep_id, ctx.work_dir, ctx.number,
                                       ctx.seed, ctx.trial_id)
        import socket

        self.tracker.log_new_params(self.run_id, {**flat_params(ctx.config), "seed": str(ctx.seed)})
        self.tracker.log(self.run_id, tags={
            "sweeper.config": ctx.label, "sweeper.config_key": ctx.config_key,
            "sweeper.params": json.dumps(ctx.params, sort_keys=True, default=str)[:5000],
            "sweeper.host": socket.gethostname(), "sweeper.device": ctx.config.get("device", "?"),
            "sweeper.threads": str(ctx.config.get("threads")), "sweeper.resumed": str(ctx.resumed).lower()})

    def _guard(self, what: str, fn, *args) -> None:
        """Run a tracking call; an error goes to the trial's mlflow_errors.log and silences the sink."""
        if what != "start" and self.run_id is None:
            return
        try:
            fn(*args)
        except Exception as e:  # tracking must not fail a trial (module docstring)
            self.run_id = None
            line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}: {type(e).__name__}: {e}\n"
            try:
                with open(Path(self.ctx.work_dir) / ERRORS_FILE, "a") as f:
                    f.write(line + "".join(traceback.format_exception_only(e)))
            except OSError:
                pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        kept = keep_metrics(metrics)
        faults.point("mlflow_log", self.ctx.sweep_dir, self.ctx.number)
        if kept:
            self._guard("log", lambda: self.tracker.log(self.run_id, kept, step))

    def on_eval(self, metrics: dict[str, float], step: int, checkpoint_dir: Path | None) -> None:
        self.log(metrics, step)

    def close(self) -> None:
        """Upload the final evaluation's files once, if the trial has one."""
        work = Path(self.ctx.work_dir)
        if final_eval.is_done(work) and not (work / LOGGED_MARK).is_file():
            self._guard("final", publish_final, self.tracker, self.run_id, work, int(self.ctx.config["steps"]))


def publish_final(tracker: Tracker, run_id: str, work: Path, steps: int) -> None:
    """Upload a finished final evaluation of trial folder `work`: final/* metrics at `steps`, learning curves,
    config, results, per-puzzle correctness and plots; then mark the folder so it happens once."""
    results = final_eval.load_results(work)
    tracker.log(run_id, final_eval.final_metrics(results), step=steps)
    out = final_eval.final_dir(work)
    curves = tracker.history(run_id, [k for group in plots.CURVE_GROUPS for k in group])
    plots.learning_curves(curves, out / "plots" / "learning_curves.png")
    tracker.artifacts(run_id, [work / "trial.json", out / final_eval.RESULTS, out / final_eval.PER_PUZZLE])
    tracker.artifacts(run_id, sorted((out / "plots").glob("*.png")), "plots")
    write_text(work / LOGGED_MARK, run_id)
