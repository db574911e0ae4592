"""`sweeper ui`: a real `mlflow server` subprocess on 127.0.0.1 serving the project's store. A sweep is
tracked into it over HTTP (the same hooks and sink as with SQLite), then read back through the REST API;
Ctrl-C, SIGTERM and SIGHUP each stop the server and its workers (port closed, no process left); an address
other machines can reach needs --allow-remote."""
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
from sweeper.util.procs import _psutil

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
    proc = _ui(tmp_path, port)
    try:
        _wait_up(base, proc)
        servers = _psutil().Process(proc.pid).children(recursive=True)
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
    out, err = proc.communicate(timeout=30)  # a server left holding the pipe fails here instead of hanging
    assert f"MLflow UI: {base}" in err
    assert out.strip() == f"{base}/#/experiments?workflowType=machine_learning"  # the page to open
    _assert_stopped(servers, base)


def _assert_stopped(servers: list, base: str) -> None:
    """No process of the servers `sweeper ui` started is alive, and nothing listens on its port."""
    ps = _psutil()
    assert len(servers) >= 2, servers  # mlflow server and its uvicorn worker: the processes that must go
    left = [p for p in servers if p.is_running() and p.status() != ps.STATUS_ZOMBIE]
    assert left == [], [p.cmdline()[:4] for p in left]
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


def _ui(tmp_path: Path, port: int, *args: str) -> subprocess.Popen:
    """A real `sweeper ui` in its own session (as a terminal's foreground job would be), stdout/stderr piped."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop(ENV_URI, None)
    return subprocess.Popen([sys.executable, "-m", "sweeper", "ui", "--port", str(port), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_as_foreground_job)


def _as_foreground_job() -> None:
    """Ctrl-C must reach it as in a terminal, also when the tests run as a background job (`cmd &` in a
    script), which starts children with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_and_sighup_stop_the_server_and_its_workers(tmp_path, free_port, sig):
    """A process manager's stop and a closed terminal (Ctrl-C: the first test)."""
    base = f"http://127.0.0.1:{free_port}"
    proc = _ui(tmp_path, free_port)
    try:
        _wait_up(base, proc)
        servers = _psutil().Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, sig)  # to `sweeper ui` alone: its servers are in a session of their own
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 128 + sig, proc.stderr.read()  # the shell's "ended by signal N"
    _assert_stopped(servers, base)


def test_a_reachable_host_needs_allow_remote_and_optuna_needs_a_port_above(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sweeper.cli import app

    monkeypatch.chdir(tmp_path)
    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        out = CliRunner().invoke(app, ["ui", "--host", host])
        assert out.exit_code == 2 and "--allow-remote" in out.output, (host, out.output)
    out = CliRunner().invoke(app, ["ui", "--optuna", "s", "--port", "65535"])
    assert out.exit_code == 2 and "65535" in out.output
    assert not (tmp_path / "mlruns").exists()  # refused before anything was created


def test_an_unknown_sweep_name_is_one_line_with_the_nearest(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sweeper.cli import app
    from sweeper.tracking import Tracker, resolve_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URI, raising=False)
    Tracker(resolve_store(None, cwd=tmp_path), "k_sweep")
    out = CliRunner().invoke(app, ["ui", "k_swep"])
    assert out.exit_code == 2 and "no sweep named 'k_swep'" in out.output and "k_sweep" in out.output, out.output
    out = CliRunner().invoke(app, ["ui", "k_sweep", "--sweep", "other"])
    assert out.exit_code == 2 and "two sweep names" in out.output
