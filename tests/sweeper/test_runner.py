"""Runner plumbing without a Ray cluster: the searcher over the Optuna journal, outcomes, refusals."""
from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.runner import SweepSearcher, _outcome
from sweeper.session import pending_reason
from sweeper.spec import build_spec
from sweeper.study import StudyBroker, baseline_points, load_trials
from sweeper.sweepdir import SweepDir

SPEC = {"name": "unit", "method": "grid", "profile": "smoke", "metric": {"name": "eval/cell_acc", "goal": "maximize"},
        "parameters": {"optim.adam_lr": {"values": [0.001, 0.003]}}, "seeds": [0, 1],
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2, "max_t": 2}}


def make(tmp_path, **changes):
    spec = build_spec({**SPEC, **changes})
    sweep = SweepDir.at(spec.name, tmp_path)
    sweep.path.mkdir(parents=True)
    base = {"optim.adam_lr": 0.002}  # not a grid value: the baseline runs it through `overrides`
    broker = StudyBroker(sweep, spec, total=6, baselines=baseline_points(spec, base))
    return spec, sweep, broker


def test_each_configuration_runs_once_per_seed_and_baselines_come_first(tmp_path):
    spec, sweep, broker = make(tmp_path)
    broker.enqueue_baselines()
    got = [broker.next_trial() for _ in range(6)]
    assert got[0]["baseline"] == 0 and got[0]["seed"] == 0 and got[1]["baseline"] == 0 and got[1]["seed"] == 1
    assert got[0]["overrides"] == {"optim.adam_lr": 0.002}
    pairs = [(tuple(sorted({**t["params"], **t["overrides"]}.items())), t["seed"]) for t in got]
    assert len(set(pairs)) == 6  # 3 configurations (baseline + 2 grid points) x 2 seeds, none twice
    assert broker.next_trial() is None  # the count is capped from the journal


def test_a_trial_asked_before_a_crash_is_handed_out_again_not_reasked(tmp_path):
    spec, sweep, broker = make(tmp_path)
    first = broker.next_trial()
    after_crash = StudyBroker(sweep, spec, total=6, baselines=broker.baselines)  # owns nothing yet
    again = after_crash.next_trial()
    assert again["number"] == first["number"] and again["params"] == first["params"]
    assert len(load_trials(sweep.journal, spec.name)) == 1


def test_searcher_records_scheduler_stops_as_pruned_with_their_last_value(tmp_path):
    spec, sweep, broker = make(tmp_path)
    searcher = SweepSearcher(broker, "eval/cell_acc", "max")
    a, b, c = (searcher.suggest(tid) for tid in ("ta", "tb", "tc"))
    assert a["cpu"] == 1.0 and a["gpu"] == 0.0
    searcher.on_trial_result("ta", {"eval/cell_acc": 0.2, "step": 6, "evals": 1})
    searcher.on_trial_complete("ta", {"eval/cell_acc": 0.3, "step": 12, "evals": 2, "final": True})
    # ASHA stops tb at its first rung: Tune sets done=True but it never reached its last step.
    searcher.on_trial_complete("tb", {"eval/cell_acc": 0.1, "step": 6, "evals": 1, "final": False, "done": True})
    (sweep.trial_dir(c["number"])).mkdir(parents=True)
    (sweep.trial_dir(c["number"]) / "failure.json").write_text('{"reason": "diverged: loss became nan by step 3"}')
    searcher.on_trial_complete("tc", None, error=True)
    trials = {t.number: t for t in load_trials(sweep.journal, spec.name)}
    assert trials[a["number"]].state == optuna.trial.TrialState.COMPLETE and trials[a["number"]].value == 0.3
    pruned = trials[b["number"]]
    assert pruned.state == optuna.trial.TrialState.PRUNED and pruned.value == 0.1
    assert "asha" in pruned.user_attrs["reason"]
    failed = trials[c["number"]]
    assert failed.state == optuna.trial.TrialState.FAIL and "nan" in failed.user_attrs["reason"]


def test_complete_without_the_metric_is_a_failure(tmp_path):
    spec, sweep, broker = make(tmp_path)
    t = broker.next_trial()
    assert broker.finish(t["number"], "COMPLETE", {"step": 12}, None) == "FAIL"


def test_outcome_uses_the_final_flag_not_tunes_done(tmp_path):
    spec, sweep, _ = make(tmp_path)
    assert _outcome(sweep, 0, {"final": True, "evals": 2}, False, spec) == ("COMPLETE", None)
    state, reason = _outcome(sweep, 0, {"final": False, "done": True, "evals": 1}, False, spec)
    assert state == "PRUNED" and "after 1 eval" in reason


def test_pending_reason_names_the_missing_resource():
    assert pending_reason({"gpu": 0.5, "cpu": 1}, {"GPU": 0.25, "CPU": 4}, 1, None) == "needs 0.5 GPU, 0.25 free"
    assert pending_reason({"gpu": 0, "cpu": 2}, {"CPU": 1}, 1, None) == "needs 2 CPU, 1 free"
    assert pending_reason({"gpu": 0, "cpu": 1}, {"CPU": 4}, 2, 2) == "waits for a slot (2 of 2 running)"


def _spec_file(tmp_path, **changes):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "name": "cli", **changes}))
    return path


def test_a_second_run_of_the_same_name_is_refused(tmp_path):
    spec = _spec_file(tmp_path)
    root = tmp_path / "sweeps"
    assert CliRunner().invoke(app, ["run", str(spec), "--root", str(root), "--dry-run"]).exit_code == 0
    sweep = SweepDir.at("cli", root)
    sweep.path.mkdir(parents=True)
    (sweep.path / "state.json").write_text("{}")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
        "print('locked', flush=True); time.sleep(60)"), str(sweep.lock_file)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = CliRunner().invoke(app, ["run", str(spec), "--root", str(root)])
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 2
    assert "sweep 'cli' is already running" in res.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_fails_at_once(tmp_path):
    spec = _spec_file(tmp_path, base={"overrides": {"device": "cuda"}})
    res = CliRunner().invoke(app, ["run", str(spec), "--root", str(tmp_path / "sweeps")])
    assert res.exit_code == 2
    assert "ask for device 'cuda' but this machine has no GPU" in res.output
