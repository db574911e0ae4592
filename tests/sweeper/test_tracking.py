"""MLflow tracking on a real SQLite store in tmp_path: store resolution, the parent/child lifecycle driven
through the real hooks and sink (one trial really trains on the smoke preset), resume after a kill, two
sweeps of one name kept apart, and a tracking failure inside a trial that does not fail it."""
from __future__ import annotations

import pytest

from helpers.tracking import RAY_COUNTERS, Driver, make_spec, puzzles
from sweeper.errors import UserError
from sweeper.hooks import CompositeSink
from sweeper.results import final_eval
from sweeper.tracking import Store, Tracker, record_store, resolve_store, run_rows
from sweeper.tracking.client import PARAM_VALUE_MAX, flat_params, keep_metrics
from sweeper.tracking.store import ENV_URI


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory as cwd, with no tracking settings from the environment, and an
    MLFLOW_EXPERIMENT_ID that would misplace runs if anything consulted it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URI, raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    return tmp_path


def _runs(name: str):
    return run_rows(Tracker(resolve_store(), name))


def _by_role(runs, role):
    return [r for r in runs if r["tags"].get("sweeper.role") == role]


def test_store_precedence_cli_env_spec_recorded_default(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_URI, raising=False)
    sweep_dir = tmp_path / "sweeps" / "s"
    default = resolve_store(cwd=tmp_path, sweep_dir=sweep_dir)
    assert default.source == "default"
    assert default.uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert default.artifact_root == (tmp_path.resolve() / "mlruns" / "artifacts").as_uri()
    record_store(Store("http://recorded:1", None, "cli"), sweep_dir)
    assert resolve_store(sweep_dir=sweep_dir).uri == "http://recorded:1"
    assert resolve_store(spec_uri="http://spec:1", sweep_dir=sweep_dir).source == "spec"
    monkeypatch.setenv(ENV_URI, "http://env:1")
    assert resolve_store(spec_uri="http://spec:1").uri == "http://env:1"
    assert resolve_store("http://cli:1", "http://spec:1").uri == "http://cli:1"


def test_relative_sqlite_becomes_absolute_and_file_stores_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_store("sqlite:///x/m.db").uri == f"sqlite:///{tmp_path.resolve()}/x/m.db"
    for bad in ("./mlruns", "file:///tmp/mlruns"):
        with pytest.raises(UserError, match="file store"):
            resolve_store(bad)


def test_keep_metrics_drops_ray_counters_and_unknown_namespaces():
    kept = keep_metrics({"train/loss": 1, "eval/x": 2.5, "custom": 3, **RAY_COUNTERS})
    assert kept == {"train/loss": 1.0, "eval/x": 2.5}


@pytest.mark.slow
def test_sweep_lifecycle_with_one_real_trial(project):
    from trm_core.trainer import train

    spec = make_spec("life", baseline=None)  # default baseline: the base config (adam_lr from the preset)
    d = Driver(spec, project / "sweeps" / spec.name)
    d.start()
    # Trial 0: the baseline configuration, trained for real (smoke preset), then its final evaluation as the
    # trainable runs it.
    info, ctx, cfg = d.trial(0, {})
    d.hooks.trial_started(info)
    sink = CompositeSink([d.factory(ctx)])
    train(cfg, sink.deferred(), checkpoint_dir=ctx.work_dir / "checkpoints")
    sink.log(final_eval.final_metrics(final_eval.ensure(ctx.work_dir, cfg, baseline=True)), cfg.steps)
    sink.close()
    d.ended(info, "COMPLETE")
    # Trial 1 completes (synthetic final evaluation on the same puzzle ids as trial 0), trial 2 is pruned.
    from sweeper.results.compare import PerPuzzle

    ids = PerPuzzle.load(ctx.work_dir / "final" / "per_puzzle.npz").ids
    d.fake_trial(1, {"optim.adam_lr": 0.003}, ids=ids, correct={
        "halt_first": puzzles(0.5, len(ids)), "tta": puzzles(0.4, len(ids), 1)})
    d.fake_trial(2, {"optim.adam_lr": 0.001}, state="PRUNED", reason="stopped by the scheduler after 1 evaluation(s)")
    d.end()

    runs = _runs(spec.name)
    (parent,) = _by_role(runs, "sweep")
    children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == parent["run_id"]]
    assert sorted(r["tags"]["sweeper.role"] for r in children) == ["baseline", "trial", "trial", "trial"]
    assert all(r["status"] != "RUNNING" for r in runs)
    assert parent["status"] == "FINISHED" and parent["tags"]["sweeper.spec_hash"] == spec.spec_hash
    assert "mlflow.source.git.commit" in parent["tags"] and "sweeper.version.mlflow" in parent["tags"]
    assert parent["params"]["method"] == "grid"
    assert "| configuration |" in parent["tags"]["mlflow.note.content"]  # the report table is its description
    assert Tracker(resolve_store(), spec.name).experiment_id != "0"  # MLFLOW_EXPERIMENT_ID was ignored
    t = {int(r["tags"]["sweeper.trial_number"]): r for r in _by_role(runs, "trial")}
    assert t[0]["metrics"]["train/loss"] > 0 and "final/tta/puzzle_acc" in t[0]["metrics"]
    assert t[0]["params"]["optim.adam_lr"] == "0.001" and t[0]["tags"]["sweeper.config"] == "optim.adam_lr=0.001"
    for key in ("puzzle_acc_delta", "cost_ratio", "p_value", "delta_ci_low", "delta_ci_high"):
        assert f"vs_tta/{key}" in t[1]["metrics"] and f"vs_tta_config/{key}" in t[1]["metrics"]
    assert t[1]["tags"]["sweeper.vs_tta_rule"] == "tta"
    assert t[2]["status"] == "FINISHED" and t[2]["tags"]["sweeper.state"] == "PRUNED"
    assert "scheduler" in t[2]["tags"]["sweeper.end_reason"]
    assert not any(k in r["metrics"] for r in runs for k in RAY_COUNTERS)
    (base,) = _by_role(runs, "baseline")
    assert base["metrics"]["final/tta/puzzle_acc"] == t[0]["metrics"]["final/tta/puzzle_acc"]
    client = Tracker(resolve_store(), spec.name).client
    names = {a.path for a in client.list_artifacts(t[0]["run_id"])} | {a.path for a in client.list_artifacts(t[0]["run_id"], "plots")}
    assert {"trial.json", "per_puzzle.npz", "results.json", "plots/learning_curves.png",
            "plots/halting_histogram.png", "plots/accuracy_vs_cost.png", "plots/tau_curve.png"} <= names
    report = {a.path for a in client.list_artifacts(parent["run_id"], "report")}
    assert {"report/comparison.csv", "report/comparison.md", "report/accuracy_vs_cost.png"} <= report


def test_killed_driver_then_resume_keeps_one_run_per_trial(project):
    spec = make_spec("kill")
    sweep_dir = project / "sweeps" / spec.name
    first = Driver(spec, sweep_dir)
    first.start()
    info0, ctx0, _ = first.trial(0, {"optim.adam_lr": 0.001})
    first.hooks.trial_started(info0)
    run0 = first.factory(ctx0).run_id
    info1, ctx1, _ = first.trial(1, {"optim.adam_lr": 0.003})
    first.hooks.trial_started(info1)
    # kill -9 between create_run and writing the id file: only the tags can find the run again
    (ctx1.work_dir / "mlflow_run_id").unlink()

    again = Driver(spec, sweep_dir)  # a new driver process resumes
    again.start(resumed=True)
    assert {r["status"] for r in _by_role(_runs(spec.name), "trial")} == {"KILLED"}  # reconciled
    for number, p in ((0, 0.6), (1, 0.5)):
        rid = again.fake_trial(number, {"optim.adam_lr": [0.001, 0.003][number]},
                               correct={"halt_first": puzzles(p), "tta": puzzles(0.4, seed=9)})
        if number == 0:
            assert rid == run0
    again.end()
    runs = _runs(spec.name)
    assert len(_by_role(runs, "sweep")) == 1 and len(_by_role(runs, "baseline")) == 1
    trials = _by_role(runs, "trial")
    assert sorted(int(r["tags"]["sweeper.trial_number"]) for r in trials) == [0, 1]
    assert {r["status"] for r in runs} == {"FINISHED"}


def test_two_sweeps_of_one_name_never_share_runs(project):
    """Another --root, or a deleted folder and a rerun: the same experiment name, another sweep id."""
    spec = make_spec("twin")
    a = Driver(spec, project / "rootA" / spec.name, sweep_id="aaaa")
    a.start()
    info, ctx, _ = a.trial(0, {"optim.adam_lr": 0.001})
    a.hooks.trial_started(info)
    run_a = a.factory(ctx).run_id
    b = Driver(make_spec("twin", parameters={"optim.adam_lr": {"values": [0.001, 0.01]}}),
               project / "rootB" / spec.name, sweep_id="bbbb")
    b.start()  # must not end sweep A's running trial, nor adopt its runs
    info_b, ctx_b, _ = b.trial(0, {"optim.adam_lr": 0.01})
    b.hooks.trial_started(info_b)
    run_b = b.factory(ctx_b).run_id
    assert run_b != run_a
    runs = {r["run_id"]: r for r in _runs(spec.name)}
    assert runs[run_a]["status"] == "RUNNING" and runs[run_b]["params"]["optim.adam_lr"] == "0.01"
    assert len(_by_role(list(runs.values()), "sweep")) == 2


def test_stopped_sweep_ends_running_children_killed_and_parent_killed(project):
    spec = make_spec("stop")
    d = Driver(spec, project / "sweeps" / spec.name)
    d.start()
    info, ctx, _ = d.trial(0, {"optim.adam_lr": 0.001})
    d.hooks.trial_started(info)
    d.factory(ctx).log({"train/loss": 1.0}, 3)
    d.fake_trial(1, {"optim.adam_lr": 0.003}, state="FAIL", reason="diverged: loss nan")
    d.end("stopped", "time budget of 60s reached")
    runs = _runs(spec.name)
    t = {int(r["tags"]["sweeper.trial_number"]): r for r in _by_role(runs, "trial")}
    assert t[0]["status"] == "KILLED" and "time budget" in t[0]["tags"]["sweeper.end_reason"]
    assert t[1]["status"] == "FAILED" and t[1]["tags"]["sweeper.end_reason"] == "diverged: loss nan"
    assert _by_role(runs, "sweep")[0]["status"] == "KILLED"


def test_a_tracking_failure_in_a_trial_does_not_fail_it_and_the_driver_publishes_later(project):
    spec = make_spec("down")
    d = Driver(spec, project / "sweeps" / spec.name)
    d.start()
    info, ctx, cfg = d.trial(0, {"optim.adam_lr": 0.001})
    d.hooks.trial_started(info)
    sink = d.factory(ctx)
    sink.tracker.client.log_batch = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("store unreachable"))
    sink.log({"train/loss": 2.0}, 3)  # raises inside: the sink records it and goes quiet
    from helpers.tracking import write_fake_final

    write_fake_final(ctx.work_dir, {"halt_first": puzzles(0.5), "tta": puzzles(0.4)}, {"halt_first": 2.0, "tta": 24.0}, cfg.steps)
    sink.close()  # nothing raised
    assert "store unreachable" in (ctx.work_dir / "mlflow_errors.log").read_text()
    assert not (ctx.work_dir / "mlflow_logged").is_file()
    d.ended(info, "COMPLETE")  # the driver publishes what the trial could not
    (run,) = _by_role(_runs(spec.name), "trial")
    assert "final/tta/puzzle_acc" in run["metrics"] and (ctx.work_dir / "mlflow_logged").is_file()


def test_log_splits_batches_at_mlflow_limits(project):
    tracker = Tracker(resolve_store(), "limits")
    run = tracker.client.create_run(tracker.experiment_id).info.run_id
    calls = []
    real = tracker.client.log_batch
    tracker.client.log_batch = lambda *a, **k: (calls.append(k), real(*a, **k))
    tracker.log(run, {f"train/m{i}": i for i in range(1500)}, 1, params={f"p{i}": "v" * 700 for i in range(150)})
    assert len(calls) == 2 and all(len(c["params"]) <= 100 and len(c["metrics"]) + len(c["params"]) <= 1000 for c in calls)
    data = tracker.client.get_run(run).data
    assert len(data.metrics) == 1500 and len(data.params) == 150


def test_flat_params_cut_long_values():
    out = flat_params({"a": {"b": "x" * 900, "c": [1, 2]}, "d": None})
    assert len(out["a.b"]) == PARAM_VALUE_MAX and out["a.c"] == "[1, 2]" and out["d"] == "None"


def test_pruned_baseline_trial_leaves_no_comparison_and_says_why(project):
    spec = make_spec("nobase")  # baseline: [] -> the grid point equal to the preset (adam_lr 0.001)
    d = Driver(spec, project / "sweeps" / spec.name, total=2)
    d.start()
    d.fake_trial(0, {"optim.adam_lr": 0.001}, state="PRUNED", reason="asha rung 1")
    d.fake_trial(1, {"optim.adam_lr": 0.003}, correct={"halt_first": puzzles(0.5), "tta": puzzles(0.4)})
    d.end()
    runs = _runs(spec.name)
    (base,) = _by_role(runs, "baseline")
    assert base["status"] == "FAILED" and "t0000 PRUNED: asha rung 1" in base["tags"]["sweeper.end_reason"]
    assert _by_role(runs, "sweep")[0]["tags"]["sweeper.vs_tta"].startswith("unavailable")
    assert not any(k.startswith("vs_tta") for r in runs for k in r["metrics"])


def test_optuna_figures_from_a_journal(tmp_path):
    import optuna

    from sweeper.results import plots

    study = optuna.create_study(storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))), study_name="s", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2, log=True) * t.suggest_int("k", 1, 4), n_trials=8)
    written, skipped = plots.optuna_figures(study, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert skipped == {} and names == sorted(f"{n}.{e}" for n in ("optimization_history", "param_importances",
                                                                  "parallel_coordinate") for e in ("png", "html"))
    page = (tmp_path / "out" / "param_importances.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
