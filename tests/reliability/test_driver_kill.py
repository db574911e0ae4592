"""kill -9 of the driver at five moments of a smoke sweep, then `sweeper resume`: nothing lost, nothing
run twice, nothing left behind (see docs/RELIABILITY.md).

A fault point (sweeper/faults.py, $SWEEPER_FAULT) hits each moment deterministically. Where the moment is
in the middle of a write (a checkpoint, an MLflow batch), the trial's worker is killed with the driver.
That is a process kill, not a power cut: the page cache survives, so nothing written but not yet synced
is lost. Elsewhere only the driver is killed and the rest of the Ray session is left to a resume (or a
`sweeper stop`) to clean up.
"""
from __future__ import annotations

import subprocess

import pytest

from helpers.recovery import alive, check_recovered, driver, fault_env, fired, recorded_processes, run_until_killed
from helpers.sweeps import env, smoke_variant
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import read_jsonl

pytestmark = pytest.mark.slow

MOMENTS = {
    "trial_startup": "trial_start:t0001:1:kill_driver",
    "mid_training": "train_log:t0000:3:kill_driver",
    "checkpoint_write": "checkpoint_write:t0000:2:kill_all",
    "mlflow_logging": "mlflow_log:t0000:3:kill_all",
    "trial_finished": "trial_finished:*:1:kill_driver",
}
WHEN = {  # moment -> (the row of docs/RELIABILITY.md, how the fault point brings it about)
    "trial_startup": ("driver kill -9 at trial start-up", "the worker of t0001 SIGKILLs the driver recorded in "
                      "state.json as it starts"),
    "mid_training": ("driver kill -9 mid-training", "step 9 of t0000; a checkpoint exists at step 6"),
    "checkpoint_write": ("driver and worker kill -9 during a checkpoint write", "both SIGKILLed after state.pt "
                         "is written, before its folder is renamed into place (a process kill, not a power cut)"),
    "mlflow_logging": ("driver and worker kill -9 during MLflow logging", "both SIGKILLed just before a metrics "
                       "batch is sent (not inside SQLite's write)"),
    "trial_finished": ("driver kill -9 just after a trial finishes", "Optuna knows the trial ended; MLflow may "
                       "not yet (its writes follow in the bookkeeping thread), Ray's experiment state does not"),
}


def killed_sweep(tmp_path, name: str, fault: str) -> tuple[SweepDir, list[dict]]:
    """A two-trial smoke sweep run until `fault` SIGKILLs its driver; the sweep and the processes it recorded
    (read before a resume or stop rewrites the record)."""
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, name, scheduler={"type": "none"}, concurrency=2,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}})
    sweep = SweepDir.at(name, root)
    run_until_killed(driver("run", str(spec), "--root", str(root)), tmp_path, fault_env(fault))
    assert fired(sweep, fault)
    return sweep, recorded_processes(sweep)


@pytest.mark.parametrize("moment", [pytest.param(m, id=m, marks=pytest.mark.fault(
    fault=WHEN[m][0], injected=f"`SWEEPER_FAULT={MOMENTS[m]}`: {WHEN[m][1]}")) for m in MOMENTS])
@pytest.mark.fault(
    kind="real (process kill)",
    checked="after `sweeper resume`: every trial COMPLETE once in Optuna, one FINISHED MLflow run each under one "
            "parent, none RUNNING; no step evaluated twice; no torn checkpoint folder; no process of the killed "
            "driver alive")
def test_kill_9_of_the_driver_then_resume_loses_and_repeats_nothing(tmp_path, moment):
    sweep, left = killed_sweep(tmp_path, "kill", MOMENTS[moment])
    root = sweep.root
    res = subprocess.run(driver("resume", "kill", "--root", str(root)), cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not alive(left), f"processes of the killed driver survived the resume: {alive(left)}"
    check_recovered(sweep, tmp_path, total=2, steps=12)
    if moment == "mid_training":  # killed at step 9 after the step-6 checkpoint: resumed, not restarted
        # (the orphaned worker may have reached step 12 before the resume cleaned it up)
        starts = [a for a in read_jsonl(sweep.trial_dir(0) / "attempts.jsonl") if a["event"] == "start"]
        assert len(starts) >= 2 and starts[-1]["resumed_from_step"] >= 6, starts


@pytest.mark.fault(
    fault="`sweeper stop` after a driver kill -9", kind="real (process kill)",
    injected="`train_log:t0000:3:kill_driver` SIGKILLs the driver mid-training; its Ray processes and the trial "
             "worker are left running",
    checked="`sweeper stop` (lock free, processes recorded) ends every recorded process of the killed driver, says "
            "so in one line, exit 0; a second stop says 'not running' (exit 2); `sweeper resume` then finishes "
            "every trial exactly once")
def test_stop_ends_what_a_killed_driver_left_running(tmp_path):
    """Why this fails on commit 6911ba4: `sweeper stop` on a sweep whose lock was free only said 'not running'
    and ended nothing, so the orphaned Ray processes and trial workers ran on until a resume."""
    sweep, left = killed_sweep(tmp_path, "orphans", MOMENTS["mid_training"])
    root = sweep.root
    assert alive(left), "nothing of the killed driver is running: this test would prove nothing"
    res = subprocess.run(driver("stop", "orphans", "--root", str(root)), cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "ended" in lines[0] and "sweeper resume orphans" in lines[0], res.stderr
    assert not alive(left), f"still running after `sweeper stop`: {alive(left)}"
    again = subprocess.run(driver("stop", "orphans", "--root", str(root)), cwd=tmp_path, env=env(),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "is not running" in again.stderr, again.stderr
    res = subprocess.run(driver("resume", "orphans", "--root", str(root)), cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    check_recovered(sweep, tmp_path, total=2, steps=12)
