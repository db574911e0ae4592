"""End to end: `sweeper run search_spaces/smoke.yaml` (a variant), then the MLflow store checked: one
parent, one child per trial, the baseline run, nothing left RUNNING; and after a kill -9 of the driver
and a resume, still one run per trial.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sweep_helpers import env, smoke_variant
from sweeper import tracking
from sweeper.sweepdir import SweepDir, read_jsonl

pytestmark = pytest.mark.slow

def _driver(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeper", *args]


def _runs(tmp_path, name: str) -> list[dict]:
    store = tracking.resolve_store(cwd=tmp_path)
    return tracking.run_rows(tracking.Tracker(store, name))


def _check_store(runs: list[dict], trials: int) -> dict[int, dict]:
    parents = [r for r in runs if r["tags"].get("sweeper.role") == "sweep"]
    assert len(parents) == 1 and parents[0]["status"] == "FINISHED"
    children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == parents[0]["run_id"]]
    assert len(children) == len(runs) - 1  # every other run hangs under the parent
    by_number = {}
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


def test_smoke_sweep_tracked_in_mlflow(tmp_path):
    spec = smoke_variant(tmp_path, "mlsmoke")
    res = subprocess.run(_driver("run", str(spec), "--root", str(tmp_path / "sweeps")), cwd=tmp_path,
                         env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = _runs(tmp_path, "mlsmoke")
    trials = _check_store(runs, 6)
    done = [r for r in trials.values() if r["tags"]["sweeper.state"] == "COMPLETE"]
    pruned = [r for r in trials.values() if r["tags"]["sweeper.state"] == "PRUNED"]
    assert done and pruned and all(r["status"] == "FINISHED" for r in pruned)
    assert all("final/tta/puzzle_acc" in r["metrics"] for r in done)
    assert all("eval/cell_acc" in r["metrics"] and "train/loss" in r["metrics"] for r in trials.values())
    (base,) = [r for r in runs if r["tags"]["sweeper.role"] == "baseline"]
    (base_trial,) = [r for r in trials.values() if r["tags"]["sweeper.config"] == "model.k=1 optim.adam_lr=0.001"]
    # the scheduler never stops the baseline configuration, so every finished trial has its comparison
    assert base_trial["tags"]["sweeper.state"] == "COMPLETE"
    assert "final/tta/puzzle_acc" in base["metrics"] and base["status"] == "FINISHED"
    assert all("vs_tta/p_value" in r["metrics"] for r in done)
    sweep_dir = tmp_path / "sweeps" / "mlsmoke" / "mlflow"
    assert not (sweep_dir / "errors.log").exists()
    assert (sweep_dir / "report" / "comparison.md").is_file()


def test_kill_9_then_resume_keeps_one_run_per_trial(tmp_path):
    spec = smoke_variant(tmp_path, "mlcrash", scheduler={"type": "none"}, concurrency=2,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}, "model.k": {"values": [1, 2]}},
                         base={"overrides": {"steps": 30}})
    root = tmp_path / "sweeps"
    sweep = SweepDir.at("mlcrash", root)
    driver = subprocess.Popen(_driver("run", str(spec), "--root", str(root)), cwd=tmp_path, env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while not any(r.get("final") is False for d in sweep.trials.glob("t*") for r in read_jsonl(d / "evals.jsonl")):
            assert driver.poll() is None, "the driver ended before any trial reported"
            assert time.monotonic() < deadline, "no trial reported in time"
            time.sleep(0.2)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert any(r["status"] == "RUNNING" for r in _runs(tmp_path, "mlcrash"))  # what the kill left behind
    res = subprocess.run(_driver("resume", "mlcrash", "--root", str(root)), cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    trials = _check_store(_runs(tmp_path, "mlcrash"), 4)
    assert all(r["tags"]["sweeper.state"] == "COMPLETE" and "vs_tta/p_value" in r["metrics"] for r in trials.values())
