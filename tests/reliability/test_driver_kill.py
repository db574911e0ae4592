"""kill -9 of the driver at five moments of a smoke sweep, then `sweeper resume`: nothing lost, nothing
run twice, nothing left behind (see docs/RELIABILITY.md).

A fault point (sweeper/faults.py, $SWEEPER_FAULT) hits each moment deterministically. Where the moment is
in the middle of a write (a checkpoint, an MLflow batch), the trial's worker dies with the driver, as
in a power cut; elsewhere only the driver is killed and the rest of the Ray session is left to a
resume to clean up.
"""
from __future__ import annotations

import subprocess

import pytest

from helpers.recovery import (alive, check_recovered, driver, fault_env, fired, recorded_processes,
                                 run_until_killed)
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


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_of_the_driver_then_resume_loses_and_repeats_nothing(tmp_path, moment):
    fault = MOMENTS[moment]
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "kill", scheduler={"type": "none"}, concurrency=2,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}})
    sweep = SweepDir.at("kill", root)
    run_until_killed(driver("run", str(spec), "--root", str(root)), tmp_path, fault_env(fault))
    assert fired(sweep, fault)
    left = recorded_processes(sweep)
    res = subprocess.run(driver("resume", "kill", "--root", str(root)), cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not alive(left), f"processes of the killed driver survived the resume: {alive(left)}"
    check_recovered(sweep, tmp_path, total=2, steps=12)
    if moment == "mid_training":  # killed at step 9 after the step-6 checkpoint: resumed, not restarted
        # (the orphaned worker may have reached step 12 before the resume cleaned it up)
        starts = [a for a in read_jsonl(sweep.trial_dir(0) / "attempts.jsonl") if a["event"] == "start"]
        assert len(starts) >= 2 and starts[-1]["resumed_from_step"] >= 6, starts
