"""End to end: real Ray, real Optuna, real MLflow, the real trainer on the smoke preset.

Each test runs the CLI in a subprocess. A kill -9 of the driver at five moments, then resume, is in
tests/reliability/test_driver_kill.py (it checks Optuna, Ray and MLflow after the resume).
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from helpers.recovery import check_store
from helpers.sweeps import env, run_in_process, smoke_variant, strictly_increasing_steps, sweeper
from sweeper.cli import app
from sweeper.sweep.study import load_trials
from sweeper.sweep.sweepdir import SweepDir
from sweeper.tracking import Tracker, resolve_store, run_rows
from sweeper.util.files import read_json, read_jsonl

pytestmark = pytest.mark.slow


def test_smoke_sweep_end_to_end_with_pruning_status_and_prune(tmp_path):
    root = tmp_path / "sweeps"
    res = sweeper("run", str(smoke_variant(tmp_path, "e2e")), "--root", str(root))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sweep 'e2e' finished" in res.stderr
    sweep = SweepDir.at("e2e", root)
    trials = load_trials(sweep.journal, "e2e")
    states = [t.state.name for t in trials]
    assert len(trials) == 6 and set(states) <= {"COMPLETE", "PRUNED"}, states
    assert states.count("PRUNED") >= 1 and states.count("COMPLETE") >= 1
    for t in trials:
        steps = strictly_increasing_steps(sweep.trial_dir(t.number))
        if t.state.name == "COMPLETE":
            assert steps[-1] == 12 and t.value is not None
        else:  # ASHA stopped it at its first rung; Optuna keeps the value it was stopped on
            assert steps == [6] and "asha" in t.user_attrs["reason"] and t.value is not None
    status = CliRunner().invoke(app, ["status", "e2e", "--root", str(root)])
    assert status.exit_code == 0 and "PRUNED" in status.output and "best so far" in status.output
    pruned = CliRunner().invoke(app, ["prune", "e2e", "--keep-best", "1", "--root", str(root)])
    assert pruned.exit_code == 0 and "freed" in pruned.output
    kept = [t for t in trials if list((sweep.trial_dir(t.number) / "checkpoints").glob("step-*"))]
    assert len(kept) == 1 and kept[0].state.name == "COMPLETE"
    assert all((sweep.trial_dir(t.number) / "evals.jsonl").is_file() for t in trials)  # metrics stay
    check_mlflow_store(tmp_path, "e2e", trials)


def check_mlflow_store(tmp_path, name, trials):
    """One parent, one child per trial, one baseline run with the TTA evaluation, nothing RUNNING, no
    Ray counters, vs_tta comparisons naming their TTA rule on finished trials; the report matches."""
    runs = run_rows(Tracker(resolve_store(cwd=tmp_path), name))
    by_number = check_store(runs, len(trials))
    (base,) = [r for r in runs if r["tags"].get("sweeper.role") == "baseline"]
    assert base["status"] == "FINISHED" and "final/tta/puzzle_acc" in base["metrics"]
    for t in trials:
        run = by_number[t.number]
        assert run["tags"]["sweeper.state"] == t.state.name
        assert "eval/cell_acc" in run["metrics"] and "train/loss" in run["metrics"]
        if t.state.name == "COMPLETE":  # the scheduler never stops the baseline, so there is one to compare with
            assert "final/halt_first/puzzle_acc" in run["metrics"] and "vs_tta/p_value" in run["metrics"]
            assert run["tags"]["sweeper.vs_tta_rule"].startswith("tta")
            # Only baseline trials pay for the TTA family (8 views, 8 relabellings): it is all they are compared with.
            assert ("final/tta_perm/puzzle_acc" in run["metrics"]) == (run["tags"]["sweeper.is_baseline"] == "true")
    for where in (["--root", str(tmp_path / "sweeps")], ["--tracking-uri", resolve_store(cwd=tmp_path).uri]):
        report = sweeper("report", name, "--format", "csv", *where, cwd=tmp_path)
        assert report.returncode == 0 and "model.k=1" in report.stdout and "reference" in report.stdout, report.stderr
    assert (tmp_path / "sweeps" / name / "report" / "comparison.md").is_file()


def test_four_quarter_gpu_trials_share_one_logical_gpu_at_once(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallback under a logical (fake) Ray GPU")
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "pack", scheduler={"type": "none"}, concurrency=4, resources={"gpu": 0.25},
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}, "model.k": {"values": [1, 2]}},
                         base={"overrides": {"steps": 36, "eval_every": 18}})
    res = run_in_process(spec, root)
    assert res.returncode == 0, res.stderr[-3000:]
    sweep = SweepDir.at("pack", root)
    spans = []
    for d in sorted(sweep.trials.glob("t*")):
        info = read_json(d / "trial.json")
        assert info["plan"]["gpu"] == 0.25 and info["config"]["device"] == "cpu"  # no CUDA: ran on the CPU
        # The worker started from the driver's plan: it never imported the spec layer.
        modules = read_json(d / "worker_modules.json")
        assert "sweeper.sweep.trainable" in modules and not any(m.startswith("sweeper.spec") for m in modules)
        ends = [a for a in read_jsonl(d / "attempts.jsonl") if a["event"] == "end"]
        spans.append((ends[-1]["start"], ends[-1]["end"]))
    assert len(spans) == 4
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"trials did not overlap: {spans}"
    # The extension points: every trial's extra sink saw its evaluations, the final evaluation's metrics,
    # and was closed; the driver
    # hooks saw the sweep start, four trials start and end COMPLETE, and the sweep end.
    for d in sorted(sweep.trials.glob("t*")):
        seen = read_jsonl(d / "filesink.jsonl")  # the last evaluation, the final evaluation's metrics, close
        assert [r["kind"] for r in seen][-3:] == ["eval", "log", "close"] and seen[-2]["step"] == 36
    # Each trial was resolved once, in the driver, building exactly one TrainConfig.
    assert sorted(read_json(sweep.path / "resolutions.json")) == [[n, 1] for n in range(4)]
    events = [r["event"] for r in read_jsonl(sweep.path / "hooks.jsonl")]
    assert events[0] == "sweep_started" and events[-1] == "sweep_ended"
    assert events.count("trial_started") == 4 and events.count("trial_ended:COMPLETE") == 4


def test_sweeper_stop_leaves_a_resumable_sweep(tmp_path):
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "halt", scheduler={"type": "none"},
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}}, base={"overrides": {"steps": 30}})
    sweep = SweepDir.at("halt", root)
    driver = subprocess.Popen([sys.executable, "-m", "sweeper", "run", str(spec), "--root", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    try:
        deadline = time.monotonic() + 150
        while not any(r.get("final") is False for d in sweep.trials.glob("t*") for r in read_jsonl(d / "evals.jsonl")):
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        stopped = sweeper("stop", "halt", "--root", str(root), "--timeout", "60")
        assert stopped.returncode == 0, stopped.stderr
        assert driver.wait(timeout=60) == 1  # stopped, not finished
    finally:
        if driver.poll() is None:
            driver.kill()
    assert "resume with: sweeper resume halt" in driver.stderr.read()
    # The stop checkpointed each running trial's current step: the next attempt resumes from it.
    stop_steps = {d.name: r["step"] for d in sweep.trials.glob("t*") for r in read_jsonl(d / "evals.jsonl") if r.get("stop")}
    assert stop_steps, "no trial checkpointed on the stop request"
    state = sweep.read_state()
    assert state["status"] == "stopped" and "sweeper stop" in state["reason"]
    assert sweeper("stop", "halt", "--root", str(root)).returncode == 2  # not running any more
    res = sweeper("resume", "halt", "--root", str(root))
    assert res.returncode == 0, res.stderr[-3000:]
    trials = load_trials(sweep.journal, "halt")
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        assert strictly_increasing_steps(sweep.trial_dir(t.number))[-1] == 30
    for name, step in stop_steps.items():
        starts = [a for a in read_jsonl(sweep.trials / name / "attempts.jsonl") if a["event"] == "start"]
        assert starts[-1]["resumed_from_step"] == step
