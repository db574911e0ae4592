"""Faults inside trials: a killed worker, a torn checkpoint, a NaN loss, a CUDA OOM in a packed trial. Real Ray,
Optuna and MLflow on the smoke preset (see docs/RELIABILITY.md). A full disk is real in test_full_disk.py (the
fault point's `enospc`, raised after a successful save, could not see the real failure)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.recovery import check_recovered, driver, fault_env, fired
from helpers.sweeps import env, smoke_variant
from sweeper.sweep.study import load_trials
from sweeper.sweep.sweepdir import SweepDir
from sweeper.tracking import Tracker, resolve_store, run_rows
from sweeper.util.files import read_jsonl
from trm_core import checkpoint

pytestmark = pytest.mark.slow


def _run(tmp_path, *args, extra_env=None, timeout=240):
    return subprocess.run(driver(*args), cwd=tmp_path, env=extra_env or env(), capture_output=True, text=True,
                          timeout=timeout)


def _trial_runs(tmp_path, name) -> dict[int, dict]:
    runs = run_rows(Tracker(resolve_store(cwd=tmp_path), name))
    return {int(r["tags"]["sweeper.trial_number"]): r for r in runs if r["tags"].get("sweeper.role") == "trial"}


@pytest.mark.fault(
    fault="trial worker kill -9", kind="real (process kill)",
    injected="`SWEEPER_FAULT=train_log:t0000:3:kill_worker`: the worker SIGKILLs itself at step 9; `trial_retries: 2`",
    checked="the same sweep run retries it from its step-6 checkpoint and finishes (exit 0); Optuna, MLflow as "
            "after a resume")
@pytest.mark.fault(
    fault="checkpoint torn / corrupt", kind="real",
    injected="`SWEEPER_FAULT=train_log:t0000:3:truncate_ckpt` cuts the newest state.pt in half and kills the "
             "worker; trainer level: garbage written over state.pt",
    checked="sweep: checksum mismatch recorded in the trial's attempts.jsonl (`checkpoint_corrupt`), resume from "
            "the intact step-6 checkpoint; trainer: the previous good checkpoint is used",
    also=["tests/trm_core/test_trainer.py::test_resume_skips_a_corrupt_newest_checkpoint"])
def test_killed_worker_retries_from_its_checkpoint_and_a_torn_checkpoint_is_caught(tmp_path):
    # Attempt 1 is killed at step 9 (checkpoint 6 exists). Attempt 2 resumes from 6, writes 12, and at
    # step 15 cuts checkpoint 12 in half and dies. Attempt 3 must notice (checksum), say so, and resume
    # from the older intact checkpoint (step 6: the trial keeps two), never from the torn file.
    faults = ("train_log:t0000:3:kill_worker", "train_log:t0000:3:truncate_ckpt")
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "retry", parameters={}, scheduler={"type": "none"}, trial_retries=2,
                         base={"overrides": {"steps": 18}})
    res = _run(tmp_path, "run", str(spec), "--root", str(root), extra_env=fault_env(*faults))
    assert res.returncode == 0, res.stderr[-3000:]
    sweep = SweepDir.at("retry", root)
    assert all(fired(sweep, f) for f in faults)
    events = read_jsonl(sweep.trial_dir(0) / "attempts.jsonl")
    assert [e["resumed_from_step"] for e in events if e["event"] == "start"] == [0, 6, 6]
    (corrupt,) = [e for e in events if e["event"] == "checkpoint_corrupt"]
    assert corrupt["checkpoint"] == "step-00000012" and corrupt["reason"] == "checksum mismatch"
    assert all(checkpoint.verify(p) is None for p in checkpoint.list_checkpoints(sweep.trial_dir(0) / "checkpoints"))
    # Steps 6..12 were redone from the intact step-6 checkpoint; nothing else was.
    assert [r["step"] for r in read_jsonl(sweep.trial_dir(0) / "evals.jsonl")] == [6, 12, 12, 18]
    check_recovered(sweep, tmp_path, total=1, steps=18, redone=True)


@pytest.mark.fault(
    fault="loss goes NaN/inf; too many failures", kind="real",
    injected="the baseline configuration with lr 1e30 and no clipping, `max_failures: 1`, two seeds",
    checked="each trial FAIL with `diverged: loss became nan by step 3` (Optuna and MLflow), no checkpoint of NaN "
            "weights; the sweep goes on after the first, stops resumably after the second and says why; trainer: "
            "TrainingDiverged before any checkpoint",
    also=["tests/trm_core/test_trainer.py::test_diverging_loss_raises"])
def test_a_diverging_trial_fails_with_its_reason_and_too_many_failures_stop_the_sweep(tmp_path):
    # The baseline configuration diverges and runs first (seed 0, then seed 1): the first failure is
    # within max_failures, so the sweep goes on to the next trial; the second is one too many.
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "nan", scheduler={"type": "none"}, concurrency=1, seeds=[0, 1], max_failures=1,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}},
                         baseline=[{"optim.adam_lr": 1e30, "optim.muon_lr": 1e30, "optim.grad_clip": 0.0}])
    res = _run(tmp_path, "run", str(spec), "--root", str(root))
    assert res.returncode == 1, res.stderr[-3000:]
    assert "sweep 'nan' stopped" in res.stderr and "2 trials failed, more than max_failures=1" in res.stderr
    assert "resume with: sweeper resume nan" in res.stderr and "Traceback" not in res.stderr
    sweep = SweepDir.at("nan", root)
    state = sweep.read_state()
    assert state["status"] == "stopped" and "max_failures=1" in state["reason"]
    trials = {t.number: t for t in load_trials(sweep.journal, "nan")}
    for n in (0, 1):
        assert trials[n].state.name == "FAIL" and trials[n].user_attrs["reason"].startswith("diverged: loss became")
        assert not checkpoint.list_checkpoints(sweep.trial_dir(n) / "checkpoints")  # no NaN weights saved
    assert not any(t.state.name == "COMPLETE" for t in trials.values())
    runs = _trial_runs(tmp_path, "nan")
    for n in (0, 1):
        assert runs[n]["status"] == "FAILED" and runs[n]["tags"]["sweeper.end_reason"].startswith("diverged")
    assert all(r["status"] != "RUNNING" for r in runs.values())


PACKED = """
import sys, ray
ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
try:
    from sweeper.commands._sweeps import init_sweep
    from sweeper.commands.sweep import extensions
    from sweeper.sweep.runner import RunRequest, run_sweep
    sweep, spec, _ = init_sweep(sys.argv[1], None, sys.argv[2])
    code = run_sweep(RunRequest(sweep=sweep, spec=spec, live=False, extensions=extensions(spec, sweep))).exit_code
finally:
    ray.shutdown()
sys.exit(code)
"""


@pytest.mark.fault(
    fault="CUDA OOM in one packed trial", kind="simulated",
    injected="`SWEEPER_FAULT=train_log:t0001:1:oom` raises torch.OutOfMemoryError on a CPU machine; two trials "
             "share one logical Ray GPU (0.5 each), so the memory fraction is never set",
    checked="that trial FAIL with `CUDA out of memory with a 0.5 GPU share ...`; the other ran alongside and "
            "COMPLETE; the sweep finished")
def test_cuda_oom_in_one_packed_trial_fails_it_alone(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("packs trials on a logical (fake) Ray GPU")
    fault = "train_log:t0001:1:oom"
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "oom", scheduler={"type": "none"}, concurrency=2, resources={"gpu": 0.5},
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}}, base={"overrides": {"steps": 18}})
    res = subprocess.run([sys.executable, "-c", PACKED, str(spec), str(root)], capture_output=True, text=True,
                         timeout=240, env=fault_env(fault), cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]  # finished, with one failed trial
    sweep = SweepDir.at("oom", root)
    assert fired(sweep, fault) and sweep.read_state()["status"] == "finished"
    trials = {t.number: t for t in load_trials(sweep.journal, "oom")}
    assert trials[1].state.name == "FAIL"
    assert trials[1].user_attrs["reason"].startswith("CUDA out of memory with a 0.5 GPU share")
    assert trials[0].state.name == "COMPLETE"
    spans = {n: [a for a in read_jsonl(sweep.trial_dir(n) / "attempts.jsonl") if a["event"] == "end"][-1] for n in (0, 1)}
    assert spans[0]["start"] < spans[1]["end"] and spans[1]["start"] < spans[0]["end"], "the trials were not packed"
    assert spans[0]["outcome"] == "complete" and spans[1]["outcome"] == "failed"
    runs = _trial_runs(tmp_path, "oom")
    assert runs[0]["status"] == "FINISHED" and runs[1]["status"] == "FAILED"
    assert "out of memory" in runs[1]["tags"]["sweeper.end_reason"]
