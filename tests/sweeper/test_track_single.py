"""`sweeper train --track` and `sweeper eval --track`: one MLflow run each in a real SQLite store (the default
./mlruns/mlflow.db, or --tracking-uri), beside sweeps: the resolved config as params, the trainer's metrics as it
trained, the evaluation's rows as final/<mode>/<key>, their files as artifacts; a resumed training continues its run."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.tracking.client import flat_params
from sweeper.tracking.runs_view import KIND, KIND_TAG, VIEW_TAG
from sweeper.tracking.store import ENV_URI
from sweeper.util.files import read_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture
def client_of():
    from mlflow import MlflowClient

    return lambda uri: MlflowClient(tracking_uri=uri)


def _only_run(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return exp, runs[0]


def test_train_track_logs_one_run_and_resume_continues_it(tmp_path, monkeypatch, client_of):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URI, raising=False)
    args = ["train", "--preset", "smoke", "--set", "device=cpu", "--set", "model.k=2", "--out", "run", "--track"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    client = client_of(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")  # the default store
    exp, run = _only_run(client, "train")
    assert exp.tags[KIND_TAG] == KIND and VIEW_TAG in exp.tags  # the model-training view, a saved runs view
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run.data.params == flat_params(config)  # the resolved config, every key
    assert run.data.params["model.k"] == "2"
    logged = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted((m.step, round(m.value, 6)) for m in history) == \
        sorted((r["step"], round(r["train/loss"], 6)) for r in logged)  # every report, as it trained
    evals = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "eval"]
    assert run.data.metrics["eval/puzzle_acc"] == pytest.approx(evals[-1]["eval/puzzle_acc"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"config.json", "metrics.jsonl"}
    assert (tmp_path / "run" / "mlflow_run_id").read_text().strip() == run.info.run_id

    out = CliRunner().invoke(app, ["train", "--resume", "run", "--track"])
    assert out.exit_code == 0, out.output
    _, again = _only_run(client, "train")  # the same run, not a second one
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"


def test_eval_track_logs_the_rows_files_and_table(tmp_path, monkeypatch, client_of):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URI, raising=False)
    out = CliRunner().invoke(app, ["train", "--preset", "smoke", "--set", "device=cpu", "--out", "run"])
    assert out.exit_code == 0, out.output
    assert not (tmp_path / "mlruns").exists()  # nothing tracked without --track
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    out = CliRunner().invoke(app, ["eval", "run", "--modes", "full,halt_first,tta", "--limit", "8", "--no-tau-curve",
                                   "--out", "res", "--track", "--experiment", "evals", "--tracking-uri", uri])
    assert out.exit_code == 0, out.output
    client = client_of(uri)
    _, run = _only_run(client, "evals")
    assert run.info.status == "FINISHED"
    rows = json.loads((tmp_path / "res" / "results.json").read_text())["rows"]
    assert {r["method"] for r in rows} >= {"full", "halt_first", "tta", "tta_vote"}
    for row in rows:  # the names a sweep's final evaluation uses, so the same columns compare them
        assert run.data.metrics[f"final/{row['method']}/puzzle_acc"] == pytest.approx(row["puzzle_acc"])
        assert run.data.metrics[f"final/{row['method']}/relative_cost"] == pytest.approx(row["relative_cost"])
    assert run.data.params["model.k"] == "1" and run.data.params["data"] == "test"
    assert json.loads(run.data.params["checkpoints"]) == ["run"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"results.json", "results.csv", "per_puzzle.csv"}
    table = run.data.tags["mlflow.note.content"]
    assert all(r["method"] in table for r in rows) and "puzzle acc" in table


def test_track_with_a_file_store_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["train", "--preset", "smoke", "--set", "device=cpu", "--out", "run", "--track",
                                   "--tracking-uri", str(tmp_path / "mlruns")])
    assert out.exit_code == 2 and "file store" in out.output and "Traceback" not in out.output, out.output
