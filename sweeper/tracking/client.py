"""MLflow's client, with the few operations a sweep needs. With store.py the only modules that import mlflow
(lazily, so `sweeper --help` stays fast).

Runs are found again by tags (`sweeper.sweep`, `sweeper.sweep_id`, `sweeper.role`, `sweeper.trial_number`)
and by the run id kept in a file next to what they describe (trials/tNNNN/mlflow_run_id,
sweeps/<name>/mlflow/*_run_id), under a file lock, so neither a resume nor a kill -9 at any moment creates a
second run. Every call passes experiment_id explicitly: $MLFLOW_EXPERIMENT_ID is never consulted. Metrics go
in one log_batch per report (a single log_metric costs ~20 ms on SQLite).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from filelock import FileLock

from sweeper.errors import UserError
from sweeper.tracking.runs_view import KIND, KIND_TAG
from sweeper.tracking.store import Store
from sweeper.util.files import write_text
from sweeper.util.names import nearest

METRIC_PREFIXES = ("train/", "eval/", "cost/", "perf/", "final/", "vs/", "vs_", "baseline/")
"""Only these metrics are logged; anything else (Ray's training_iteration, time_this_iter_s, ...) is dropped."""
PARAM_VALUE_MAX = 500
"""Longer parameter values are cut (MLflow 3 allows 6000, older servers 500); full files are artifacts."""
TAG_SWEEP, TAG_ROLE, TAG_NUMBER, TAG_ID = "sweeper.sweep", "sweeper.role", "sweeper.trial_number", "sweeper.sweep_id"
TAG_STATE, TAG_REASON, TAG_PARENT = "sweeper.state", "sweeper.end_reason", "mlflow.parentRunId"
END_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
"""Trial state -> MLflow run status (a pruned trial ran as it should; its tag says it was stopped)."""


def flat_params(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dict -> {'a.b': 'value'} as strings (lists as JSON), each cut to PARAM_VALUE_MAX chars."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flat_params(v, key + "."))
        else:
            text = v if isinstance(v, str) else json.dumps(v, default=str) if isinstance(v, (list, tuple, Mapping)) else str(v)
            out[key] = text[:PARAM_VALUE_MAX]
    return out


def keep_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The namespaced numeric metrics of `metrics` (see METRIC_PREFIXES); booleans and others dropped."""
    return {k: float(v) for k, v in metrics.items()
            if k.startswith(METRIC_PREFIXES) and isinstance(v, (int, float)) and not isinstance(v, bool)}


class Tracker:
    """MlflowClient with the few operations a sweep needs; all run lookups are scoped to one experiment."""

    def __init__(self, store: Store, experiment: str, experiment_tags: Mapping[str, str] | None = None):
        """`experiment_tags`: set when this creates the experiment (default: it is the sweep `experiment`'s)."""
        import logging

        from mlflow import MlflowClient

        # MLflow announces each schema migration of a new SQLite store at INFO, into the live table.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.store, self.experiment = store, experiment
        self.client = MlflowClient(tracking_uri=store.uri)
        tags = {TAG_SWEEP: experiment} if experiment_tags is None else dict(experiment_tags)
        self.experiment_id = self._experiment_id(experiment, {**tags, KIND_TAG: KIND})

    def _experiment_id(self, name: str, tags: Mapping[str, str]) -> str:
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            location = f"{self.store.artifact_root}/{name}" if self.store.artifact_root else None
            try:
                return self.client.create_experiment(name, artifact_location=location, tags=tags)
            except MlflowException:  # created by another process in between
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            raise UserError(f"MLflow experiment '{name}' in {self.store.uri} is deleted; restore it "
                            f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or rename the sweep")
        return exp.experiment_id

    # -- runs -------------------------------------------------------------------------------------

    def find(self, tags: Mapping[str, str], status: str | None = None) -> list:
        """Active runs of this experiment with all `tags` (and `status`), oldest first."""
        clauses = [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
        if status:
            clauses.append(f"attributes.status = '{status}'")
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], " and ".join(clauses), max_results=50000,
                                           order_by=["attributes.start_time ASC"], page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def ensure_run(self, id_file: Path, match: Mapping[str, str], tags: Mapping[str, str], name: str) -> str:
        """The run recorded in `id_file`, else the oldest with tags `match`, else a new one; RUNNING.

        Under a lock next to `id_file`, so the driver and a trial worker asking at once get one run.
        """
        id_file = Path(id_file)
        id_file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(id_file.with_name(".mlflow.lock"))):
            run_id = self._recorded(id_file)
            if run_id is None:
                found = self.find(match)
                run_id = found[0].info.run_id if found else \
                    self.client.create_run(self.experiment_id, tags={**match, **tags}, run_name=name).info.run_id
                write_text(id_file, run_id)
        if self.client.get_run(run_id).info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        return run_id

    def _recorded(self, id_file: Path) -> str | None:
        from mlflow.exceptions import MlflowException

        if not id_file.is_file():
            return None
        run_id = id_file.read_text().strip()
        try:
            run = self.client.get_run(run_id)
        except MlflowException:  # a different store, or the run was removed: look it up by tags instead
            return None
        ok = run.info.experiment_id == self.experiment_id and run.info.lifecycle_stage == "active"
        return run_id if ok else None

    def log(self, run_id: str, metrics: Mapping[str, float] | None = None, step: int = 0,
            params: Mapping[str, str] | None = None, tags: Mapping[str, Any] | None = None) -> None:
        """One log_batch per chunk of MLflow's limits (1000 metrics, 100 params, 100 tags)."""
        from mlflow.entities import Metric, Param, RunTag

        ts = int(time.time() * 1000)
        m = [Metric(k, float(v), ts, int(step)) for k, v in (metrics or {}).items() if not math.isnan(float(v))]
        p = [Param(k, str(v)) for k, v in (params or {}).items()]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        while m or p or t:  # MLflow's limits: 100 params, 100 tags, 1000 entities in all per batch
            pp, p, tt, t = p[:100], p[100:], t[:100], t[100:]
            room = 1000 - len(pp) - len(tt)
            mm, m = m[:room], m[room:]
            self.client.log_batch(run_id, metrics=mm, params=pp, tags=tt)

    def log_new_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log the params the run lacks; never changes one (MLflow forbids it; a resume may differ in
        threads or device, which the trial's tags record)."""
        have = self.client.get_run(run_id).data.params
        self.log(run_id, params={k: v for k, v in params.items() if k not in have})

    def tags(self, run_id: str) -> dict[str, str]:
        """The run's tags."""
        return dict(self.client.get_run(run_id).data.tags)

    def end(self, run_id: str, status: str, tags: Mapping[str, Any] | None = None) -> None:
        """Set `tags`, then terminate the run with MLflow status FINISHED, FAILED or KILLED."""
        if tags:
            self.log(run_id, tags=tags)
        self.client.set_terminated(run_id, status=status)

    def artifacts(self, run_id: str, paths: Iterable[Path], artifact_path: str | None = None) -> None:
        """Upload files (folders recursively) to the run."""
        for p in paths:
            p = Path(p)
            if p.is_dir():
                self.client.log_artifacts(run_id, str(p), f"{artifact_path}/{p.name}" if artifact_path else p.name)
            elif p.is_file():
                self.client.log_artifact(run_id, str(p), artifact_path)

    def history(self, run_id: str, keys: Iterable[str]) -> dict[str, list[tuple[int, float]]]:
        """metric -> [(step, value)] (the latest value per step, so a resumed stretch is not doubled)."""
        out = {}
        for key in keys:
            by_step = {}
            for m in sorted(self.client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
                by_step[m.step] = m.value
            out[key] = sorted(by_step.items())
        return out


def run_rows(tracker: Tracker) -> list[dict[str, Any]]:
    """Every run of the tracker's experiment as a plain dict (run_id, name, status, tags, params, metrics)."""
    return [{"run_id": r.info.run_id, "name": r.info.run_name, "status": r.info.status, "tags": dict(r.data.tags),
             "params": dict(r.data.params), "metrics": dict(r.data.metrics)}
            for r in tracker.find({TAG_SWEEP: tracker.experiment})]


def experiment_names(store: Store) -> list[str]:
    """Names of the active experiments in `store` (for 'did you mean')."""
    from mlflow import MlflowClient

    return [e.name for e in MlflowClient(tracking_uri=store.uri).search_experiments(max_results=50000)]


def open_existing(store: Store, name: str) -> Tracker:
    """A Tracker for an existing sweep experiment; UserError with the nearest name if there is none."""
    names = experiment_names(store)
    if name not in names:
        raise UserError(f"no sweep named '{name}' in {store.uri}{nearest(name, names)}")
    return Tracker(store, name)
