"""MLflow tracking on a real SQLite store in tmp_path: store resolution, the parent/child lifecycle driven
through the real hooks and sink (one trial really trains on the smoke preset), resume after a kill."""
from __future__ import annotations


import pytest

from sweeper import tracking
from sweeper.errors import UserError
from sweeper.hooks import CompositeSink

from tracking_helpers import RAY_COUNTERS, fake_trial, make_spec, puzzles, sweep_info, trial


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory as cwd, with no tracking settings from the environment, and an
    MLFLOW_EXPERIMENT_ID that would misplace runs if anything consulted it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracking.ENV_URI, raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    return tmp_path


def _runs(name: str):
    store = tracking.resolve_store()
    return tracking.run_rows(tracking.Tracker(store, name))


def _by_role(runs, role):
    return [r for r in runs if r["tags"].get("sweeper.role") == role]


def test_store_precedence_cli_env_spec_recorded_default(tmp_path, monkeypatch):
    monkeypatch.delenv(tracking.ENV_URI, raising=False)
    sweep_dir = tmp_path / "sweeps" / "s"
    default = tracking.resolve_store(cwd=tmp_path, sweep_dir=sweep_dir)
    assert default.source == "default"
    assert default.uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert default.artifact_root == (tmp_path.resolve() / "mlruns" / "artifacts").as_uri()
    tracking.record_store(tracking.Store("http://recorded:1", None, "cli"), sweep_dir)
    assert tracking.resolve_store(sweep_dir=sweep_dir).uri == "http://recorded:1"
    assert tracking.resolve_store(spec_uri="http://spec:1", sweep_dir=sweep_dir).source == "spec"
    monkeypatch.setenv(tracking.ENV_URI, "http://env:1")
    assert tracking.resolve_store(spec_uri="http://spec:1").uri == "http://env:1"
    assert tracking.resolve_store("http://cli:1", "http://spec:1").uri == "http://cli:1"


def test_relative_sqlite_becomes_absolute_and_file_stores_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking.resolve_store("sqlite:///x/m.db").uri == f"sqlite:///{tmp_path.resolve()}/x/m.db"
    for bad in ("./mlruns", "file:///tmp/mlruns"):
        with pytest.raises(UserError, match="file store"):
            tracking.resolve_store(bad)


def test_keep_metrics_drops_ray_counters_and_unknown_namespaces():
    kept = tracking.keep_metrics({"train/loss": 1, "eval/x": 2.5, "custom": 3, **RAY_COUNTERS})
    assert kept == {"train/loss": 1.0, "eval/x": 2.5}


@pytest.mark.slow
def test_sweep_lifecycle_with_one_real_trial(project):
    from trm_core.trainer import train

    spec = make_spec("life", baseline=None)  # default baseline: the base config (adam_lr from the preset)
    sweep_dir = project / "sweeps" / spec.name
    (hooks,), (factory,) = tracking.hooks_for(spec, sweep_dir)
    hooks.strict = True
    hooks.sweep_started(sweep_info(spec, sweep_dir), resumed=False)

    # Trial 0: the baseline configuration, trained for real (smoke preset) with its final evaluation.
    info, ctx, cfg = trial(spec, sweep_dir, 0, {})
    hooks.trial_started(info)
    train(cfg, CompositeSink([factory(ctx)]), checkpoint_dir=ctx.work_dir / "checkpoints")
    hooks.trial_ended(info, "COMPLETE", None)
    # Trial 1 completes (synthetic final evaluation on the same puzzle ids as trial 0), trial 2 is pruned.
    from sweeper.compare import PerPuzzle

    ids = PerPuzzle.load(ctx.work_dir / "final" / "per_puzzle.npz").ids
    fake_trial(hooks, factory, spec, sweep_dir, 1, {"optim.adam_lr": 0.003}, ids=ids, correct={
        "halt_first": puzzles(0.5, len(ids)), "tta": puzzles(0.4, len(ids), 1)})
    fake_trial(hooks, factory, spec, sweep_dir, 2, {"optim.adam_lr": 0.001}, state="PRUNED",
               reason="stopped by the scheduler after 1 evaluation(s)")
    hooks.sweep_ended(sweep_info(spec, sweep_dir), "finished", None)

    runs = _runs(spec.name)
    (parent,) = _by_role(runs, "sweep")
    children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == parent["run_id"]]
    assert sorted(r["tags"]["sweeper.role"] for r in children) == ["baseline", "trial", "trial", "trial"]
    assert all(r["status"] != "RUNNING" for r in runs)
    assert parent["status"] == "FINISHED" and parent["tags"]["sweeper.spec_hash"] == spec.spec_hash
    assert "mlflow.source.git.commit" in parent["tags"] and "sweeper.version.mlflow" in parent["tags"]
    assert parent["params"]["method"] == "grid"
    exp = tracking.Tracker(tracking.resolve_store(), spec.name).experiment_id
    assert exp != "0"  # MLFLOW_EXPERIMENT_ID was ignored
    t = {int(r["tags"]["sweeper.trial_number"]): r for r in _by_role(runs, "trial")}
    assert t[0]["metrics"]["train/loss"] > 0 and "final/tta/puzzle_acc" in t[0]["metrics"]
    assert t[0]["params"]["optim.adam_lr"] == "0.001" and t[0]["tags"]["sweeper.is_baseline"] == "true"
    for key in ("puzzle_acc_delta", "cost_ratio", "p_value", "delta_ci_low", "delta_ci_high"):
        assert f"vs_tta/{key}" in t[1]["metrics"] and f"vs_tta_config/{key}" in t[1]["metrics"]
    assert t[2]["status"] == "FINISHED" and t[2]["tags"]["sweeper.state"] == "PRUNED"
    assert "scheduler" in t[2]["tags"]["sweeper.end_reason"]
    assert not any(k in r["metrics"] for r in runs for k in RAY_COUNTERS)
    (base,) = _by_role(runs, "baseline")
    assert base["metrics"]["final/tta/puzzle_acc"] == t[0]["metrics"]["final/tta/puzzle_acc"]
    client = tracking.Tracker(tracking.resolve_store(), spec.name).client
    names = {a.path for a in client.list_artifacts(t[0]["run_id"])} | {a.path for a in client.list_artifacts(t[0]["run_id"], "plots")}
    assert {"config.yaml", "per_puzzle.npz", "results.json", "plots/learning_curves.png",
            "plots/halting_histogram.png", "plots/accuracy_vs_cost.png", "plots/tau_curve.png"} <= names
    report = {a.path for a in client.list_artifacts(parent["run_id"], "report")}
    assert {"report/comparison.csv", "report/comparison.md", "report/accuracy_vs_cost.png"} <= report


def test_killed_driver_then_resume_keeps_one_run_per_trial(project):
    spec = make_spec("kill")
    sweep_dir = project / "sweeps" / spec.name
    (first,), (factory,) = tracking.hooks_for(spec, sweep_dir)
    first.strict = True
    first.sweep_started(sweep_info(spec, sweep_dir), resumed=False)
    info0, ctx0, _ = trial(spec, sweep_dir, 0, {"optim.adam_lr": 0.001})
    first.trial_started(info0)
    run0 = factory(ctx0).run_id
    info1, ctx1, _ = trial(spec, sweep_dir, 1, {"optim.adam_lr": 0.003})
    first.trial_started(info1)
    # kill -9 between create_run and writing the id file: only the tags can find the run again
    (ctx1.work_dir / "mlflow_run_id").unlink()

    (again,), _ = tracking.hooks_for(spec, sweep_dir)  # a new driver process resumes
    again.strict = True
    again.sweep_started(sweep_info(spec, sweep_dir), resumed=True)
    assert {r["status"] for r in _by_role(_runs(spec.name), "trial")} == {"KILLED"}  # reconciled
    for number, p in ((0, 0.6), (1, 0.5)):
        rid = fake_trial(again, factory, spec, sweep_dir, number, {"optim.adam_lr": [0.001, 0.003][number]},
                         correct={"halt_first": puzzles(p), "tta": puzzles(0.4, seed=9)})
        if number == 0:
            assert rid == run0
    again.sweep_ended(sweep_info(spec, sweep_dir), "finished", None)
    runs = _runs(spec.name)
    assert len(_by_role(runs, "sweep")) == 1 and len(_by_role(runs, "baseline")) == 1
    trials = _by_role(runs, "trial")
    assert sorted(int(r["tags"]["sweeper.trial_number"]) for r in trials) == [0, 1]
    assert {r["status"] for r in runs} == {"FINISHED"}


def test_stopped_sweep_ends_running_children_killed_and_parent_killed(project):
    spec = make_spec("stop")
    sweep_dir = project / "sweeps" / spec.name
    (hooks,), (factory,) = tracking.hooks_for(spec, sweep_dir)
    hooks.strict = True
    hooks.sweep_started(sweep_info(spec, sweep_dir), resumed=False)
    info, ctx, _ = trial(spec, sweep_dir, 0, {"optim.adam_lr": 0.001})
    hooks.trial_started(info)
    factory(ctx).log({"train/loss": 1.0}, 3)
    fake_trial(hooks, factory, spec, sweep_dir, 1, {"optim.adam_lr": 0.003}, state="FAIL", reason="diverged: loss nan")
    hooks.sweep_ended(sweep_info(spec, sweep_dir), "stopped", "time budget of 60s reached")
    runs = _runs(spec.name)
    t = {int(r["tags"]["sweeper.trial_number"]): r for r in _by_role(runs, "trial")}
    assert t[0]["status"] == "KILLED" and "time budget" in t[0]["tags"]["sweeper.end_reason"]
    assert t[1]["status"] == "FAILED" and t[1]["tags"]["sweeper.end_reason"] == "diverged: loss nan"
    assert _by_role(runs, "sweep")[0]["status"] == "KILLED"


def test_log_splits_batches_at_mlflow_limits(project):
    tracker = tracking.Tracker(tracking.resolve_store(), "limits")
    run = tracker.client.create_run(tracker.experiment_id).info.run_id
    calls = []
    real = tracker.client.log_batch
    tracker.client.log_batch = lambda *a, **k: (calls.append(k), real(*a, **k))
    tracker.log(run, {f"train/m{i}": i for i in range(1500)}, 1, params={f"p{i}": "v" * 700 for i in range(150)})
    assert len(calls) == 2 and all(len(c["params"]) <= 100 and len(c["metrics"]) + len(c["params"]) <= 1000 for c in calls)
    data = tracker.client.get_run(run).data
    assert len(data.metrics) == 1500 and len(data.params) == 150


def test_flat_params_cut_long_values():
    out = tracking.flat_params({"a": {"b": "x" * 900, "c": [1, 2]}, "d": None})
    assert len(out["a.b"]) == tracking.PARAM_VALUE_MAX and out["a.c"] == "[1, 2]" and out["d"] == "None"


def test_pruned_baseline_trial_leaves_no_comparison_and_says_why(project):
    spec = make_spec("nobase")  # baseline: [] -> the grid point equal to the preset (adam_lr 0.001)
    sweep_dir = project / "sweeps" / spec.name
    (hooks,), (factory,) = tracking.hooks_for(spec, sweep_dir)
    hooks.strict = True
    hooks.sweep_started(sweep_info(spec, sweep_dir, total=2), resumed=False)
    fake_trial(hooks, factory, spec, sweep_dir, 0, {"optim.adam_lr": 0.001}, state="PRUNED", reason="asha rung 1")
    fake_trial(hooks, factory, spec, sweep_dir, 1, {"optim.adam_lr": 0.003},
               correct={"halt_first": puzzles(0.5), "tta": puzzles(0.4)})
    hooks.sweep_ended(sweep_info(spec, sweep_dir, total=2), "finished", None)
    runs = _runs(spec.name)
    (base,) = _by_role(runs, "baseline")
    assert base["status"] == "FAILED" and "t0000 PRUNED: asha rung 1" in base["tags"]["sweeper.end_reason"]
    assert _by_role(runs, "sweep")[0]["tags"]["sweeper.vs_tta"].startswith("unavailable")
    assert not any(k.startswith("vs_tta") for r in runs for k in r["metrics"])


def test_optuna_figures_from_a_journal(tmp_path):
    import optuna

    from sweeper import plots

    study = optuna.create_study(storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))), study_name="s", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2, log=True) * t.suggest_int("k", 1, 4), n_trials=8)
    written, skipped = plots.optuna_figures(study, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert skipped == {} and names == sorted(f"{n}.{e}" for n in ("optimization_history", "param_importances",
                                                                  "parallel_coordinate") for e in ("png", "html"))
    page = (tmp_path / "out" / "param_importances.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
