"""One driver session of a sweep: the trial table, hooks, stop conditions and the outcome.

The searcher and the Tune callback get this object explicitly (it is never pickled with them). It never
imports Ray: Tune's Trial objects are only read (trial_id, status, config, last_result), so it can be
tested with stand-ins. A stop (sweeper stop, time budget, max_failures, Ctrl-C, metric target) first asks
the running trials to checkpoint their current step (the stop-request file they poll), waits until each
has said so in its attempts.jsonl (or STOP_WAIT_S passes), then ends the Tune run the way Ctrl-C does.

What follows a trial's start and end (comparisons, hooks) runs in sweeper.sweep.bookkeeping's thread.
"""
from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sweeper.errors import DISK_ERRNOS
from sweeper.hooks import SweepInfo, TrialInfo
from sweeper.results import pairing
from sweeper.sweep import space, study
from sweeper.sweep.bookkeeping import ENDED, Bookkeeping
from sweeper.sweep.live import LiveView
from sweeper.sweep.plan import SweepPlan
from sweeper.sweep.trial import TrialPlan
from sweeper.util.files import read_jsonl, write_json
from sweeper.util.names import trial_name

TICK_S = 0.5
"""How often the table, stop requests and the time budget are looked at."""
PENDING_S = 3.0
"""A trial pending longer than this gets a reason (a new trial is pending briefly while its actor starts)."""
WRITE_S = 2.0
"""How often live.json (read by `sweeper status`) is rewritten."""
STOP_WAIT_S = 180.0
"""How long a stop waits for the running trials to checkpoint their current step."""


@dataclass(kw_only=True)
class SweepOutcome:
    status: str
    """finished, stopped (resumable) or failed."""
    reason: str | None
    """Why it stopped or failed."""
    counts: dict[str, int] = field(default_factory=dict)
    """Optuna trial states (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    best: dict[str, Any] | None = None
    """The best trial so far (single objective)."""

    @property
    def exit_code(self) -> int:
        """0 when the sweep finished with no failed trial; 1 otherwise."""
        return 0 if self.status == "finished" and not self.counts.get("FAIL") else 1


def request_interrupt() -> None:
    """End the Tune run the way Ctrl-C does (Tune handles SIGUSR1 like SIGINT)."""
    os.kill(os.getpid(), signal.SIGUSR1)


class Session:
    def __init__(self, req, plan: SweepPlan, info: SweepInfo, free_resources: Callable[[], dict] | None = None):
        self.req, self.plan, self.info = req, plan, info
        self.sweep, self.spec = req.sweep, plan.spec
        self.metric = self.spec.metrics[0].name
        self.view = LiveView(self.metric, req.console, enabled=req.live)
        self.free_resources = free_resources or (lambda: {})
        self.stop_reason: str | None = None
        self.stopping_since: float | None = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.t0 = time.monotonic()
        self._tick = self._write = 0.0
        self.earlier = study.load_trials(self.sweep.journal, self.spec.name)
        """This sweep's trials as the session found them (read once: failures so far, unseen ends)."""
        self.failures = sum(t.state.name == "FAIL" for t in self.earlier)
        self.books = Bookkeeping(self.sweep, req.hooks)
        """Runs the work that follows a trial's start and end, off Tune's event loop."""

    # -- called by the searcher and the callback ---------------------------------------------------

    def started(self) -> None:
        self.view.say(self.plan.announce)
        for note in getattr(self.spec, "notes", ()):
            self.view.say(note)
        if len(self.spec.metrics) > 1:
            self.view.say("multi-objective sweep: no scheduler pruning, every trial runs to the end")
        pairing.update(self.sweep.path)
        for h in self.req.hooks:
            h.sweep_started(self.info, self.info.resumed)
        self.books.hand_over_unseen_ends(self.earlier)

    def planned(self, trial_id: str, trial: TrialPlan) -> None:
        self.rows[trial_id] = {"number": trial.number, "seed": trial.seed, "params": trial.values,
                               "need": {"cpu": trial.cpu, "gpu": trial.gpu}, "state": "PENDING"}

    def trial_started(self, trial) -> None:
        row = self._row(trial)
        row.update(state="RUNNING", note="")
        self.books.trial_started(self._info(trial))

    def result(self, trial, result: dict) -> None:
        row = self._row(trial)
        row.update(evals=result.get("evals"), step=result.get("step"), value=result.get(self.metric))
        target = getattr(self.spec.metrics[0], "target", None)
        value = result.get(self.metric)
        if target is not None and isinstance(value, (int, float)) and math.isfinite(value) and \
                (value >= target if self.spec.metrics[0].goal == "maximize" else value <= target):
            self.stop(f"{trial_name(row['number'])} reached the target {self.metric} = {target:g} ({value:.4g})")

    def ended(self, trial_id: str, number: int, state: str, reason: str | None) -> None:
        row = self.rows.setdefault(trial_id, {"number": number})
        row.update(state=state, note=reason or "")
        info = TrialInfo(number=number, trial_id=trial_id, seed=row.get("seed", 0), params=dict(row.get("params", {})),
                         work_dir=self.sweep.trial_dir(number), metrics=dict(row.get("last", {})))
        self.books.trial_ended(info, state, reason)
        if state == "FAIL":
            self.failures += 1
            limit = self.spec.max_failures
            if limit is not None and self.failures > limit:
                self.stop(f"{self.failures} trials failed, more than max_failures={limit}; fix the cause "
                          f"(see `sweeper status {self.sweep.name}`) and resume")

    def winding_down(self) -> None:
        """Every trial is handed out (the searcher says so): see Bookkeeping.winding_down."""
        self.books.winding_down()

    def tick(self, trials) -> None:
        now = time.monotonic()
        if now - self._tick < TICK_S:
            return
        self._tick = now
        self.books.check()
        reason = self.sweep.stop_requested()
        if reason:
            self.stop(reason)
        budget = self.spec.time_budget
        if budget is not None and now - self.t0 > budget:
            self.stop(f"time budget of {budget:.0f}s reached; `sweeper resume {self.sweep.name}` continues")
        self._refresh(trials)
        if self.stopping_since is not None and (self._all_checkpointed() or now - self.stopping_since > STOP_WAIT_S):
            self.stopping_since = None
            request_interrupt()
        self.view.update(self.table_rows(), self._title())
        if now - self._write > WRITE_S:
            self._write = now
            self.write_live()

    def stop(self, reason: str) -> None:
        """Stop the sweep resumably: no new trials; running ones checkpoint, then Tune ends (see module doc)."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.view.say(f"stopping: {reason}")
        room = reason != self.sweep.no_room_reason()
        if room and not self.sweep.stop_requested():
            try:
                self.sweep.request_stop(reason)  # the trials poll this file
            except OSError as e:
                if not _disk_error(e):
                    raise
                room = False
                _touch(self.sweep.stop_file)  # an empty request still stops the trials (no data to write)
        # No room for a stop request means no room for the trials' checkpoints either: end Tune at once.
        self.stopping_since = time.monotonic() if room else -math.inf

    def finished(self) -> SweepOutcome:
        """Record and return the session's outcome."""
        self.books.drain()
        trials = study.load_trials(self.sweep.journal, self.spec.name)
        summary = study.describe(trials, [m.name for m in self.spec.metrics], space.directions(self.spec))
        done = sum(summary["counts"].get(s, 0) for s in ENDED)
        status, reason = ("finished", None) if done >= self.plan.total else \
            ("stopped", self.stop_reason or "interrupted (Ctrl-C)")
        self.sweep.clear_stop()
        self.view.update(self.table_rows(), self._title())
        self.write_live(free={})  # Ray is shutting down meanwhile (see runner.run_sweep): not asked
        self.write_report()
        self.sweep.update_state(status=status, reason=reason, ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                counts=summary["counts"], driver=None)
        for h in self.req.hooks:
            h.sweep_ended(self.info, status, reason)
        best = {**summary["best"][0], "params": space.shown_values(self.spec, summary["best"][0])} if summary["best"] else None
        return SweepOutcome(status=status, reason=reason, counts=summary["counts"], best=best)

    def write_report(self) -> None:
        """The sweep's report folder: comparison tables, accuracy vs cost, Optuna figures (hooks upload it)."""
        from sweeper.results import plots, records, report  # only now: scipy and the figures take seconds to import

        out = self.sweep.path / "report"
        pairing.update(self.sweep.path)
        report.write_report(records.sweep_records(self.sweep.path), out)
        if self.sweep.journal.is_file():
            _, skipped = plots.optuna_figures(study.open_study(self.sweep.journal, self.spec, create=False), out / "optuna")
            write_json(out / "optuna" / "skipped.json", skipped)  # e.g. too few completed trials

    # -- rows -------------------------------------------------------------------------------------

    def _row(self, trial) -> dict[str, Any]:
        row = self.rows.get(trial.trial_id)
        if row is None:
            plan = TrialPlan.from_ray(trial.config)
            row = self.rows[trial.trial_id] = {"number": plan.number, "seed": plan.seed, "params": plan.values,
                                               "need": {"cpu": plan.cpu, "gpu": plan.gpu}}
        if trial.last_result:
            row["last"] = {k: v for k, v in trial.last_result.items() if isinstance(v, (int, float, str))}
        return row

    def _refresh(self, trials) -> None:
        running = sum(t.status == "RUNNING" for t in trials)
        free = None
        for t in trials:
            if "plan" not in (t.config or {}):
                continue
            row = self._row(t)
            if row.get("state") in ENDED:
                continue
            row["state"] = t.status
            if t.status != "PENDING":
                row.pop("pending_since", None)
                row["note"] = "stopping: checkpointing" if self.stopping_since and t.status == "RUNNING" else ""
            elif time.monotonic() - row.setdefault("pending_since", time.monotonic()) > PENDING_S:
                free = self.free_resources() if free is None else free
                row["note"] = pending_reason(row["need"], free, running, self.req.concurrency or self.spec.concurrency)

    def _all_checkpointed(self) -> bool:
        """Every running trial has recorded a 'stopped' (or an end) after its last start."""
        for row in self.rows.values():
            if row.get("state") != "RUNNING":
                continue
            events = [a.get("event") for a in read_jsonl(self.sweep.trial_dir(row["number"]) / "attempts.jsonl")]
            last_start = max((i for i, e in enumerate(events) if e == "start"), default=-1)
            if not any(e in ("stopped", "end") for e in events[last_start + 1:]):
                return False
        return True

    def table_rows(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda r: r.get("number", -1))

    def _title(self) -> str:
        done = sum(r.get("state") in ENDED for r in self.rows.values())
        mins = (time.monotonic() - self.t0) / 60
        return f"sweep {self.sweep.name}: {done} ended this session, {self.plan.total} in all, {mins:.1f} min"

    def _info(self, trial) -> TrialInfo:
        row = self._row(trial)
        return TrialInfo(number=row["number"], trial_id=trial.trial_id, seed=row.get("seed") or 0,
                         params=dict(row.get("params", {})), work_dir=self.sweep.trial_dir(row["number"]),
                         metrics=dict(row.get("last", {})))

    def write_live(self, free: dict | None = None) -> None:
        """live.json for `sweeper status` (`free`: Ray's free resources, asked for when None). Runs inside Tune's
        callback, so a full disk must not raise here: the view is only skipped (status falls back to the
        journal and the trial folders)."""
        rows = [{k: v for k, v in r.items() if k not in ("last", "pending_since")} for r in self.table_rows()]
        try:
            write_json(self.sweep.live_file, {"time": time.time(), "pid": os.getpid(), "rows": rows,
                                              "free": self.free_resources() if free is None else free,
                                              "stop_reason": self.stop_reason})
        except OSError as e:
            if not _disk_error(e):
                raise


def _disk_error(e: OSError) -> bool:
    return e.errno in DISK_ERRNOS


def _touch(path) -> None:
    """Make an empty file if the disk lets us (a read-only one does not)."""
    try:
        path.touch()
    except OSError:
        pass


def pending_reason(need: dict[str, float], free: dict[str, float], running: int, concurrency: int | None) -> str:
    """Why a trial waits, e.g. 'needs 0.5 GPU, 0.25 free'."""
    gpu, cpu = float(need.get("gpu", 0)), float(need.get("cpu", 1))
    if gpu > 0 and free.get("GPU", 0.0) + 1e-9 < gpu:
        return f"needs {gpu:g} GPU, {free.get('GPU', 0.0):g} free"
    if free.get("CPU", 0.0) + 1e-9 < cpu:
        return f"needs {cpu:g} CPU, {free.get('CPU', 0.0):g} free"
    if concurrency is not None and running >= concurrency:
        return f"waits for a slot ({running} of {concurrency} running)"
    return "starting"
