"""`sweeper ui`: a real `mlflow server` subprocess on 127.0.0.1 serving the project's store. A sweep is
tracked into it over HTTP (the same hooks and sink as with SQLite), then read back through the REST API;
Ctrl-C stops the server and its workers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.tracking import Driver, make_spec, puzzles
from sweeper.tracking.store import ENV_URI

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _wait_up(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{base} did not come up in {timeout}s")


def test_ui_serves_the_store_and_a_sweep_tracked_over_http(tmp_path, monkeypatch, free_port):
    port = free_port
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop(ENV_URI, None)
    proc = subprocess.Popen([sys.executable, "-m", "sweeper", "ui", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_up(base, proc)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv(ENV_URI, base)
        spec = make_spec("uisweep")
        d = Driver(spec, tmp_path / "sweeps" / spec.name, total=2)
        d.start()
        for number, lr in enumerate((0.001, 0.003)):
            d.fake_trial(number, {"optim.adam_lr": lr},
                         correct={"halt_first": puzzles(0.5, seed=number), "tta": puzzles(0.4, seed=7)})
        d.end()

        exps = _post(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
        (exp,) = [e for e in exps if e["name"] == "uisweep"]
        runs = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]],
                                                            "max_results": 100})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        assert sorted(t["sweeper.role"] for t in tags) == ["baseline", "sweep", "trial", "trial"]
        assert all(r["info"]["status"] == "FINISHED" for r in runs)
        # The server's own store is the project's embedded one, under the working directory.
        assert (tmp_path / "mlruns" / "mlflow.db").is_file()
        trial_run = next(r for r, t in zip(runs, tags) if t["sweeper.role"] == "trial")
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/artifacts/list?run_id={trial_run['info']['run_id']}",
                                    timeout=10) as r:
            files = {f["path"] for f in json.loads(r.read()).get("files", [])}
        assert {"trial.json", "per_puzzle.npz", "plots"} <= files
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the foreground group
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    err = proc.stderr.read()
    assert f"MLflow UI: {base}" in err
    with pytest.raises(OSError):  # nothing listens any more
        urllib.request.urlopen(f"{base}/health", timeout=2)


def test_ui_refuses_a_server_uri_and_says_when_optuna_dashboard_is_missing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sweeper.cli import app

    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["ui", "--tracking-uri", "http://127.0.0.1:1"])
    assert out.exit_code == 2 and "already a server" in out.output
    from sweeper.commands import ui as cmd

    monkeypatch.setattr(cmd.shutil, "which", lambda name: None)
    (tmp_path / "sweeps" / "s").mkdir(parents=True)
    (tmp_path / "sweeps" / "s" / "state.json").write_text("{}")
    assert cmd._dashboard("s", tmp_path / "sweeps", "127.0.0.1", 5001) is None
