"""One driver session of a sweep: the trial table, hooks, stop conditions and the final outcome.

The runner's Tune callback and searcher call into this object; it never imports Ray (Tune's Trial
objects are only read: trial_id, status, config, last_result), so it can be tested with stand-ins.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable

from sweeper import space, study
from sweeper.hooks import TrialInfo
from sweeper.live import LiveView
from sweeper.sweepdir import write_json

TICK_S = 0.5
"""How often the table, stop requests and the time budget are looked at."""
PENDING_S = 3.0
"""A trial pending longer than this gets a reason (a new trial is pending briefly while its actor starts)."""
WRITE_S = 2.0
"""How often live.json (read by `sweeper status`) is rewritten."""


def request_interrupt() -> None:
    """End the Tune run the way Ctrl-C does: Tune snapshots the experiment and trials stay resumable.
    (Tune also handles SIGUSR1 like SIGINT; using it keeps a real Ctrl-C distinguishable.)"""
    os.kill(os.getpid(), signal.SIGUSR1)


class Session:
    def __init__(self, req, prep: dict[str, Any], free_resources: Callable[[], dict] | None = None):
        self.req, self.prep = req, prep
        self.sweep, self.spec = req.sweep, req.spec
        self.metric = self.spec.metrics[0].name
        self.view = LiveView(self.metric, req.console, enabled=req.live)
        self.free_resources = free_resources or (lambda: {})
        self.stop_reason: str | None = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.t0 = time.monotonic()
        self._tick = self._write = 0.0
        self.failures = sum(t.state.name == "FAIL" for t in study.load_trials(self.sweep.journal, self.spec.name))

    # -- called by the runner ---------------------------------------------------------------------

    def shares(self, t: dict[str, Any]) -> dict[str, float]:
        """CPUs and GPU fraction the trial reserves; no GPU share on a cluster without GPUs."""
        params = {**t["params"], **t["overrides"]}
        gpu = space.gpu_share(self.spec, params, self.prep["preset"]) if self.prep["gpus"] > 0 else 0.0
        return {"cpu": space.cpu_share(self.spec, params, self.prep["preset"]), "gpu": gpu}

    def is_baseline(self, t: dict[str, Any]) -> bool:
        """True if the trial's configuration is a baseline configuration (never stopped early)."""
        from sweeper.baselines import config_key
        from trm_core.config import to_dict

        cfg = space.trial_config(self.spec, {**t["params"], **t["overrides"]}, t["seed"], self.prep["preset"])
        return config_key(to_dict(cfg)) in self.prep["baseline_keys"]

    def started(self) -> None:
        self.view.say(self.prep["announce"])
        if len(self.spec.metrics) > 1:
            self.view.say("multi-objective sweep: no scheduler pruning, every trial runs to the end")
        for h in self.req.hooks:
            h.sweep_started(self.prep["info"], self.prep["resumed"])

    def trial_started(self, trial) -> None:
        row = self._row(trial)
        row.update(state="RUNNING", note="")
        for h in self.req.hooks:
            h.trial_started(self._info(trial))

    def result(self, trial, result: dict) -> None:
        row = self._row(trial)
        row.update(evals=result.get("evals"), step=result.get("step"), value=result.get(self.metric))

    def ended(self, trial_id: str, number: int, state: str, reason: str | None) -> None:
        row = self.rows.get(trial_id) or {"number": number}
        row.update(state=state, note=reason or "")
        self.rows[trial_id] = row
        info = TrialInfo(number=number, trial_id=trial_id, seed=row.get("seed", 0), params=row.get("params", {}),
                         work_dir=self.sweep.trial_dir(number), metrics=dict(row.get("last", {})))
        for h in self.req.hooks:
            h.trial_ended(info, state, reason)
        if state == "FAIL":
            self.failures += 1
            limit = self.spec.max_failures
            if limit is not None and self.failures > limit:
                self.stop(f"{self.failures} trials failed, more than max_failures={limit}; fix the cause "
                          f"(see `sweeper status {self.sweep.name}`) and resume")

    def tick(self, trials) -> None:
        now = time.monotonic()
        if now - self._tick < TICK_S:
            return
        self._tick = now
        reason = self.sweep.stop_requested()
        if reason:
            self.stop(reason)
        budget = self.spec.time_budget
        if budget is not None and now - self.t0 > budget:
            self.stop(f"time budget of {budget:.0f}s reached; `sweeper resume {self.sweep.name}` continues")
        self._refresh(trials)
        self.view.update(self.table_rows(), self._title())
        if now - self._write > WRITE_S:
            self._write = now
            self.write_live()

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.view.say(f"stopping: {reason}")
            request_interrupt()

    def finished(self):
        """Record and return the session's outcome (the runner's SweepOutcome)."""
        from sweeper.runner import SweepOutcome

        trials = study.load_trials(self.sweep.journal, self.spec.name)
        summary = study.describe(trials, [m.name for m in self.spec.metrics], space.directions(self.spec))
        done = sum(summary["counts"].get(s, 0) for s in ("COMPLETE", "PRUNED", "FAIL"))
        if done >= self.prep["total"]:
            status, reason = "finished", None
        else:
            status = "stopped"
            reason = self.stop_reason or "interrupted (Ctrl-C)"
        self.sweep.clear_stop()
        self.view.update(self.table_rows(), self._title())
        self.write_live()
        self.sweep.update_state(status=status, reason=reason, ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                counts=summary["counts"], driver=None)
        for h in self.req.hooks:
            h.sweep_ended(self.prep["info"], status, reason)
        best = summary["best"][0] if summary["best"] else None
        return SweepOutcome(status=status, reason=reason, counts=summary["counts"], best=best)

    # -- rows -------------------------------------------------------------------------------------

    def _row(self, trial) -> dict[str, Any]:
        row = self.rows.setdefault(trial.trial_id, {})
        cfg = trial.config or {}
        row.setdefault("number", cfg.get("number", -1))
        row.setdefault("seed", cfg.get("seed"))
        row.setdefault("params", cfg.get("params", {}))
        row.setdefault("need", {"cpu": cfg.get("cpu", 1.0), "gpu": cfg.get("gpu", 0.0)})
        if trial.last_result:
            row["last"] = {k: v for k, v in trial.last_result.items() if isinstance(v, (int, float, str))}
        return row

    def _refresh(self, trials) -> None:
        running = sum(t.status == "RUNNING" for t in trials)
        free = None
        for t in trials:
            if "number" not in (t.config or {}):
                continue
            row = self._row(t)
            if row.get("state") in ("COMPLETE", "PRUNED", "FAIL"):
                continue
            row["state"] = t.status
            if t.status != "PENDING":
                row.pop("pending_since", None)
                row["note"] = ""
            elif time.monotonic() - row.setdefault("pending_since", time.monotonic()) > PENDING_S:
                free = self.free_resources() if free is None else free
                row["note"] = pending_reason(row["need"], free, running, self.req.concurrency or self.spec.concurrency)

    def table_rows(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda r: r.get("number", -1))

    def _title(self) -> str:
        done = sum(r.get("state") in ("COMPLETE", "PRUNED", "FAIL") for r in self.rows.values())
        mins = (time.monotonic() - self.t0) / 60
        return f"sweep {self.sweep.name}: {done} ended this session, {self.prep['total']} in all, {mins:.1f} min"

    def _info(self, trial) -> TrialInfo:
        row = self._row(trial)
        return TrialInfo(number=row["number"], trial_id=trial.trial_id, seed=row.get("seed") or 0,
                         params=dict(row.get("params", {})), work_dir=self.sweep.trial_dir(row["number"]),
                         metrics=dict(row.get("last", {})))

    def write_live(self) -> None:
        rows = [{k: v for k, v in r.items() if k not in ("last", "pending_since")} for r in self.table_rows()]
        write_json(self.sweep.live_file, {"time": time.time(), "pid": os.getpid(), "rows": rows,
                                          "free": self.free_resources(), "stop_reason": self.stop_reason})


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
