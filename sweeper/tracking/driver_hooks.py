"""The driver side of MLflow tracking: a SweepHooks implementation that owns the run lifecycle and logs what
the driver has written to the sweep folder. It computes nothing: comparisons, the baseline summary and the
report tables come from sweeper.results (as records), Optuna figures from the session.

    sweep_started  parent run (created once, reattached on resume) with the spec as params and provenance
                   tags; the baseline run; children of this sweep left RUNNING by a killed driver end KILLED
                   (a resumed trial reopens its own run); records not yet logged are logged; the
                   experiment's saved runs view (tracking/runs_view.py)
    trial_started  the trial's child run exists and is RUNNING
    trial_ended    COMPLETE/PRUNED -> FINISHED, FAIL -> FAILED, with sweeper.state and sweeper.end_reason;
                   new comparisons are logged
    sweep_ended    children still RUNNING -> KILLED; the report folder is uploaded; the parent ends FINISHED
                   ('finished'), KILLED ('stopped') or FAILED
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from sweeper.hooks import NullHooks, SweepInfo, TrialInfo
from sweeper.results import final_eval, records
from sweeper.tracking.client import (
    END_STATUS,
    TAG_ID,
    TAG_PARENT,
    TAG_REASON,
    TAG_ROLE,
    TAG_STATE,
    TAG_SWEEP,
    Tracker,
    flat_params,
)
from sweeper.tracking.runs_view import install_view, sweep_state
from sweeper.tracking.store import Store
from sweeper.tracking.trial_sink import LOGGED_MARK, RUN_ID_FILE, MlflowSinkFactory, ensure_trial_run, publish_final
from sweeper.util.files import read_json, write_json
from sweeper.util.names import trial_name
from sweeper.util.provenance import provenance

SWEEP_STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}
SYNC_FILE = "mlflow_synced.json"
"""Per trial: the record last logged, so a record is logged again only when it changed."""


class MlflowHooks(NullHooks):
    """See the module docstring. Tracking errors are reported (warning + mlflow/errors.log), never allowed to
    end a sweep that may have hours of training left, unless `strict` (tests)."""

    def __init__(self, sweep_dir: Path, store: Store, sweep_id: str, strict: bool = False):
        self.sweep_dir, self.store, self.sweep_id, self.strict = Path(sweep_dir), store, sweep_id, strict
        self.folder = self.sweep_dir / "mlflow"
        self._tracker: Tracker | None = None
        self.parent: str | None = None
        self.baseline_run: str | None = None
        self.errors: list[str] = []

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = Tracker(self.store, self.sweep_dir.name)
        return self._tracker

    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # reported below; see the class docstring for why it does not propagate
            if self.strict:
                raise
            line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}: {type(e).__name__}: {e}"
            self.errors.append(line)
            warnings.warn(f"MLflow tracking: {line}", stacklevel=2)
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / "errors.log", "a") as f:
                f.write(line + "\n")

    def _match(self, role: str) -> dict[str, str]:
        return {TAG_SWEEP: self.tracker.experiment, TAG_ID: self.sweep_id, TAG_ROLE: role}

    # -- SweepHooks -------------------------------------------------------------------------------

    def sweep_started(self, sweep: SweepInfo, resumed: bool) -> None:
        self._guard("sweep_started", self._started, sweep)

    def trial_started(self, trial: TrialInfo) -> None:
        self._guard(f"trial {trial.number} started", ensure_trial_run, self.tracker, self.sweep_dir, self.sweep_id,
                    trial.work_dir, trial.number, trial.seed, trial.trial_id)

    def trial_ended(self, trial: TrialInfo, state: str, reason: str | None) -> None:
        self._guard(f"trial {trial.number} ended", self._ended, trial, state, reason)

    def sweep_ended(self, sweep: SweepInfo, status: str, reason: str | None) -> None:
        self._guard("sweep_ended", self._sweep_ended, status, reason)

    # -- lifecycle --------------------------------------------------------------------------------

    def _started(self, sweep: SweepInfo) -> None:
        t, name = self.tracker, self.tracker.experiment
        self.parent = t.ensure_run(self.folder / "parent_run_id", self._match("sweep"), {}, name)
        t.log_new_params(self.parent, flat_params(sweep.spec))
        tags = {f"sweeper.{k}": v for k, v in provenance().items()}
        tags["mlflow.source.git.commit"] = tags.pop("sweeper.git_commit")
        t.log(self.parent, tags={**tags, "sweeper.status": "running", "sweeper.preset": sweep.preset,
                                 "sweeper.spec_hash": sweep.spec_hash, "sweeper.total_trials": str(sweep.total_trials),
                                 "mlflow.note.content": sweep.spec.get("description") or f"sweep {name}"})
        if (self.sweep_dir / "spec.yaml").is_file():
            t.artifacts(self.parent, [self.sweep_dir / "spec.yaml"])
        install_view(t, sweep_state(sweep.spec, self.sweep_id))  # the runs page `sweeper ui` opens on
        self.baseline_run = t.ensure_run(self.folder / "baseline_run_id", self._match("baseline"),
                                         {TAG_PARENT: self.parent}, "baseline-tta")
        # No trial of this session runs yet, so a RUNNING child was left by a killed driver.
        self._end_running("KILLED", "the sweep's driver ended while the trial ran; resuming the sweep continues this run")
        self._sync()

    def _ended(self, trial: TrialInfo, state: str, reason: str | None) -> None:
        run = ensure_trial_run(self.tracker, self.sweep_dir, self.sweep_id, trial.work_dir, trial.number, trial.seed,
                               trial.trial_id)
        plan = (read_json(Path(trial.work_dir) / "trial.json") or {}).get("plan") or {}
        if state != "COMPLETE" and self.baseline_run and plan.get("baseline"):
            # A baseline trial that did not train to the end gives no TTA baseline; say so where users look.
            self.tracker.log(self.baseline_run, tags={"sweeper.baseline_problem": (
                f"{trial_name(trial.number)} {state}: {reason or 'no reason given'}; the comparison with TTA needs a "
                "baseline trial that trains to the end (a scheduler may stop it)")[:5000]})
        self._sync()
        tags = {TAG_STATE: state, **({TAG_REASON: reason[:5000]} if reason else {})}
        self.tracker.end(run, END_STATUS.get(state, "FAILED"), tags)

    def _sweep_ended(self, status: str, reason: str | None) -> None:
        has_baseline = self._sync()
        self._end_running("KILLED", f"the sweep {status}" + (f": {reason}" if reason else ""))
        report = self.sweep_dir / "report"
        if report.is_dir():
            self.tracker.artifacts(self.parent, sorted(p for p in report.iterdir() if not p.name.startswith(".")), "report")
            table = report / "comparison.md"
            if table.is_file():  # the parent's description in the UI shows the table
                self.tracker.log(self.parent, tags={"mlflow.note.content": table.read_text()[:5000]})
        end = SWEEP_STATUS.get(status, "FAILED")
        tags = {"sweeper.status": status, **({TAG_REASON: reason[:5000]} if reason else {})}
        if self.baseline_run:
            if has_baseline:
                self.tracker.end(self.baseline_run, end, tags)
            else:
                problem = self.tracker.tags(self.baseline_run).get("sweeper.baseline_problem")
                why = problem or "no trial of the baseline configuration ran to the end"
                self.tracker.log(self.parent, tags={"sweeper.vs_tta": f"unavailable: {why}"[:5000]})
                self.tracker.end(self.baseline_run, "FAILED" if status == "finished" else end, {TAG_REASON: why})
        self.tracker.end(self.parent, end, tags)

    def _end_running(self, status: str, reason: str) -> None:
        for run in self.tracker.find(self._match("trial"), status="RUNNING"):
            self.tracker.end(run.info.run_id, status, {TAG_REASON: reason, TAG_STATE: "INTERRUPTED"})

    # -- records ----------------------------------------------------------------------------------

    def _sync(self) -> bool:
        """Log every record the driver wrote that MLflow does not have yet; True if a baseline exists."""
        has_baseline = False
        for rec in records.sweep_records(self.sweep_dir):
            if rec["tags"]["sweeper.role"] == "baseline":
                has_baseline = True
                self._log_baseline(rec)
            else:
                self._log_trial(rec)
        return has_baseline

    def _log_trial(self, rec: dict[str, Any]) -> None:
        work = self.sweep_dir / "trials" / rec["name"]
        if not (work / RUN_ID_FILE).is_file():
            return
        run = (work / RUN_ID_FILE).read_text().strip()
        if not (work / LOGGED_MARK).is_file():  # the trial's own sink could not publish (an MLflow error)
            publish_final(self.tracker, run, work, _steps(work))
        synced = final_eval.final_dir(work) / SYNC_FILE
        if read_json(synced) == rec:
            return
        vs = {k: v for k, v in rec["metrics"].items() if k.startswith("vs")}
        self.tracker.log(run, vs, step=_steps(work), tags=rec["tags"])
        write_json(synced, rec)

    def _log_baseline(self, rec: dict[str, Any]) -> None:
        synced = self.folder / SYNC_FILE
        if not self.baseline_run or read_json(synced) == rec:
            return
        trials = rec["tags"]["sweeper.baseline_trials"].split(",")
        config = (read_json(self.sweep_dir / "trials" / trials[0] / "trial.json") or {}).get("config") or {}
        self.tracker.log_new_params(self.baseline_run, flat_params({k: v for k, v in config.items() if k != "seed"}))
        self.tracker.log(self.baseline_run, rec["metrics"], step=len(trials), tags=rec["tags"])
        write_json(synced, rec)


def _steps(work: Path) -> int:
    return int(((read_json(work / "trial.json") or {}).get("plan") or {}).get("config", {}).get("steps", 0))


def hooks_for(spec, sweep_dir: Path, sweep_id: str, cli_uri: str | None = None):
    """(hooks, sink_factories) for a RunRequest: MLflow on both sides of the sweep `spec`.

    Resolves the store, creates the experiment and records the store in the sweep folder, so a bad URI
    fails here, before any trial starts.
    """
    from sweeper.tracking.store import record_store, resolve_store

    store = resolve_store(cli_uri, spec.tracking_uri, sweep_dir)
    Tracker(store, spec.name)
    record_store(store, sweep_dir)
    factory = MlflowSinkFactory(uri=store.uri, artifact_root=store.artifact_root, sweep=spec.name, sweep_id=sweep_id)
    return [MlflowHooks(Path(sweep_dir), store, sweep_id)], [factory]

