"""What every fault test checks afterwards: nothing lost, nothing run twice, nothing left behind."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.sweeps import env, strictly_increasing_steps
from sweeper import faults
from sweeper.sweep.study import load_trials
from sweeper.sweep.sweepdir import SweepDir
from sweeper.tracking import Tracker, resolve_store, run_rows
from sweeper.util.files import read_jsonl
from sweeper.util.procs import process_record


def fault_env(*faults_: str) -> dict[str, str]:
    """The helpers' subprocess environment with $SWEEPER_FAULT set."""
    return {**env(), faults.ENV: ",".join(faults_)}


def run_until_killed(cmd: list[str], cwd: Path, extra_env: dict[str, str], timeout: float = 180) -> None:
    """Run a driver that a fault kills with SIGKILL; fail if it ends any other way. Returns when the driver
    is dead: its output goes to a file, not a pipe, so processes it left (which inherit the pipe) cannot hold
    the return back until they exit on their own."""
    log = cwd / "killed-driver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=extra_env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == -9, f"the driver was not killed (exit {code}): {log.read_text()[-3000:]}"


def driver(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeper", *args]


def fired(sweep: SweepDir, fault: str) -> bool:
    return faults.marker(sweep.path, fault).is_file()


def completions(sweep: SweepDir, number: int) -> int:
    """How many attempts of trial `number` trained to the end (attempts.jsonl). An attempt that finds the trial
    already trained ends 'already_complete' and trains nothing: it stands for an earlier attempt that reached
    the last step but was killed before recording its end (a worker outliving its killed driver for a moment)."""
    ends = [a.get("outcome") for a in read_jsonl(sweep.trial_dir(number) / "attempts.jsonl") if a.get("event") == "end"]
    complete = ends.count("complete")
    return complete + (complete == 0 and "already_complete" in ends)


def check_recovered(sweep: SweepDir, cwd: Path, total: int, steps: int, redone: bool = False) -> None:
    """After a resume: every trial COMPLETE exactly once in Optuna and in MLflow, trained to its last step by
    exactly one attempt without evaluating a step twice, its final evaluation published, no torn checkpoint."""
    trials = load_trials(sweep.journal, sweep.name)
    assert sorted(t.number for t in trials) == list(range(total)), [t.number for t in trials]
    assert all(t.state.name == "COMPLETE" for t in trials), [(t.number, t.state.name) for t in trials]
    keys = {(json.dumps(t.params, sort_keys=True), t.user_attrs.get("seed")) for t in trials}
    assert len(keys) == total, "a configuration ran twice"
    done = [completions(sweep, n) for n in range(total)]
    assert done == [1] * total, f"attempts that trained each trial to its end (want 1 each): {done}"
    for t in trials:
        work = sweep.trial_dir(t.number)
        if not redone:  # a torn checkpoint legitimately makes a trial redo the steps since the one before
            assert strictly_increasing_steps(work)[-1] == steps
        assert (work / "final" / "results.json").is_file() and (work / "mlflow_logged").is_file()
        assert not list((work / "checkpoints").glob(".tmp-*")), "a torn checkpoint write was left behind"
    runs = run_rows(Tracker(resolve_store(cwd=cwd), sweep.name))
    by_number = check_store(runs, total)  # one parent, one run per trial, nothing RUNNING, no orphans
    assert all(r["tags"]["sweeper.state"] == "COMPLETE" and r["status"] == "FINISHED" for r in by_number.values())
    state = sweep.read_state()
    assert state["status"] == "finished" and state["driver"] is None


def recorded_processes(sweep: SweepDir) -> list[dict]:
    """The processes a driver recorded (its local Ray's) or started (trial workers); read them before a
    resume, which overwrites the record, and check afterwards that none survived."""
    records = list((sweep.read_state().get("ray") or {}).get("processes") or [])
    for d in sweep.trials.glob("t*"):
        records += [a for a in read_jsonl(d / "attempts.jsonl") if a.get("event") == "start"]
    return [r for r in records if r.get("create_time")]


def alive(records: list[dict]) -> list[dict]:
    """The records whose process still runs (same pid and start time)."""
    out = []
    for r in records:
        now = process_record(int(r["pid"]))
        if now and abs(now["create_time"] - float(r["create_time"])) <= 0.01:
            out.append(r)
    return out


def check_store(runs: list[dict], trials: int) -> dict[int, dict]:
    """One FINISHED parent, every other run under it, exactly one run per trial number 0..trials-1,
    one baseline run, nothing RUNNING, no Ray counters. Returns the trial runs by number."""
    parents = [r for r in runs if r["tags"].get("sweeper.role") == "sweep"]
    assert len(parents) == 1 and parents[0]["status"] == "FINISHED"
    children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == parents[0]["run_id"]]
    assert len(children) == len(runs) - 1  # no orphans
    by_number: dict[int, dict] = {}
    for r in children:
        if r["tags"]["sweeper.role"] == "trial":
            number = int(r["tags"]["sweeper.trial_number"])
            assert number not in by_number, f"two runs for trial {number}"
            by_number[number] = r
    assert sorted(by_number) == list(range(trials))
    assert [r["tags"]["sweeper.role"] for r in children].count("baseline") == 1
    assert all(r["status"] != "RUNNING" for r in runs), [(r["name"], r["status"]) for r in runs]
    assert not any(k in r["metrics"] for r in runs for k in ("training_iteration", "time_this_iter_s", "timestamp"))
    return by_number
