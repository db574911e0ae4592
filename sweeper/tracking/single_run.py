"""One-off runs in the store sweeps use: `sweeper train --track` and `sweeper eval --track` each log one MLflow run,
in an experiment named for the command ('train', 'eval') unless --experiment names another, so they appear in
`sweeper ui` beside the sweeps.

    train  params: the resolved TrainConfig; metrics: the trainer's, as it trains (the sink);
           artifacts: the run folder's config.json and metrics.jsonl. The run id is kept in the run folder
           (mlflow_run_id), so `sweeper train --resume` continues the same MLflow run.
    eval   params: the evaluation settings, the checkpoints and the data; metrics: final/<mode>/<key> (the names a
           sweep's final evaluation uses, so the same columns compare them); artifacts: results.json/.csv and
           per_puzzle.csv; description: the results table.

The run ends FINISHED, FAILED (an exception) or KILLED (Ctrl-C). A tracking error during training does not stop the
training: one warning line, then the run's sink goes quiet.
"""
from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from sweeper.tracking.client import TAG_ROLE, Tracker, flat_params, keep_metrics
from sweeper.tracking.runs_view import ensure_view
from sweeper.tracking.store import resolve_store
from sweeper.tracking.trial_sink import RUN_ID_FILE
from sweeper.util.provenance import provenance


class TrackedRun:
    """One MLflow run of `role` ('train' or 'eval') in `experiment`; `sink` is its trm_core Sink."""

    def __init__(self, role: str, experiment: str, uri: str | None, name: str, params: Mapping[str, Any],
                 run_dir: Path | None = None):
        store = resolve_store(uri)
        self.tracker = Tracker(store, experiment, experiment_tags={})
        ensure_view(self.tracker)  # not a sweep: the one-off runs' view
        tags = {**{f"sweeper.{k}": v for k, v in provenance().items()}, "sweeper.host": socket.gethostname()}
        tags["mlflow.source.git.commit"] = tags.pop("sweeper.git_commit")
        if run_dir is None:
            self.run_id = self.tracker.client.create_run(self.tracker.experiment_id, tags={TAG_ROLE: role, **tags},
                                                         run_name=name).info.run_id
        else:  # one run per run folder, found again on --resume
            match = {TAG_ROLE: role, "sweeper.run_dir": str(Path(run_dir).resolve())}
            self.run_id = self.tracker.ensure_run(Path(run_dir) / RUN_ID_FILE, match, tags, name)
        self.tracker.log_new_params(self.run_id, flat_params(params))
        self.sink = _RunSink(self)
        self.where = f"{store.uri}, experiment '{experiment}', run {self.run_id}"

    def finish(self, metrics: Mapping[str, Any] | None = None, step: int = 0, files: Iterable[Path] = (),
               description: str | None = None) -> None:
        """Log the final `metrics` at `step`, upload `files`, set the run's description."""
        self.tracker.log(self.run_id, keep_metrics(metrics or {}), step,
                         tags={"mlflow.note.content": description[:5000]} if description else None)
        self.tracker.artifacts(self.run_id, [Path(f) for f in files])


class _RunSink:
    """The trainer's metrics, as they come, to the run (a failing store: one warning, then nothing)."""

    def __init__(self, run: TrackedRun | None):
        self.run = run

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.tracker.log(self.run.run_id, keep_metrics(metrics), step)
        except Exception as e:  # the training is worth more than its tracking
            print(f"warning: MLflow tracking stopped ({type(e).__name__}: {e}); the training goes on", file=sys.stderr)
            self.run = None

    def on_eval(self, metrics: dict[str, float], step: int, checkpoint_dir: Path | None) -> None:
        self.log(metrics, step)

    def close(self) -> None:
        pass


class _Untracked:
    """What `tracked_run` gives without --track: a sink and a finish that do nothing."""

    def __init__(self):
        self.sink = _RunSink(None)

    def finish(self, *args, **kwargs) -> None:
        pass


@contextlib.contextmanager
def tracked_run(track: bool, role: str, experiment: str, uri: str | None, name: str, params: Mapping[str, Any],
                run_dir: Path | None = None) -> Iterator[TrackedRun | _Untracked]:
    """A TrackedRun (or, without `track`, a stand-in that logs nothing), ended by how the block ends."""
    if not track:
        yield _Untracked()
        return
    run = TrackedRun(role, experiment, uri, name, params, run_dir)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        run.tracker.end(run.run_id, status)
        print(f"tracked in MLflow: {run.where}", file=sys.stderr)


def track_evaluation(res, experiment: str, uri: str | None, name: str, params: Mapping[str, Any],
                     out: Path | None = None) -> None:
    """Log `res` (trm_core EvalResults) as one finished run: final/<mode>/<key> metrics, its files (those in
    `out` when it was written there, else written for the upload), the table as the description."""
    import json
    import tempfile

    from sweeper.results.final_eval import final_metrics

    with tracked_run(True, "eval", experiment, uri, name, params) as run, tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out is not None else Path(tmp)
        if out is None:
            res.to_json(folder / "results.json")
            res.to_csv(folder / "results.csv")
            res.per_puzzle_csv(folder / "per_puzzle.csv")
        results = json.loads((folder / "results.json").read_text())
        run.finish(final_metrics(results), files=[folder / n for n in ("results.json", "results.csv", "per_puzzle.csv")],
                   description=f"```\n{res.to_table()}\n```")

