"""`sweeper ui`: the MLflow UI on the project's store (optionally optuna-dashboard on a sweep's journal).

Tracking store, first that is set: --tracking-uri > $MLFLOW_TRACKING_URI > the embedded store
./mlruns/mlflow.db (artifacts in ./mlruns/artifacts). mlflow is imported inside the command.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Annotated, Optional

import typer

from sweeper.commands._common import friendly
from sweeper.commands.report import UriOpt
from sweeper.errors import UserError

READY_TIMEOUT_S = 120.0
"""How long `ui` waits for the MLflow server to answer before giving up."""


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)


@friendly
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind; the default serves this machine only.")] = "127.0.0.1",
    optuna: Annotated[Optional[str], typer.Option("--optuna", help="Also serve optuna-dashboard for this sweep's journal, on port+1 (needs sweeper[dashboard]).")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="Folder holding the sweeps, for --optuna (default: $SWEEPER_HOME, else ./sweeps).")] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Serve the MLflow UI on the project's store until Ctrl-C."""
    from sweeper.tracking import resolve_store

    store = resolve_store(tracking_uri)
    if store.uri.startswith(("http://", "https://")):
        raise UserError(f"the tracking URI {store.uri} is already a server: open it in a browser")
    procs = [_start(server_command(store, host, port), {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})]
    try:
        if optuna:
            dash = _dashboard(optuna, root, host, port + 1)
            if dash is not None:
                procs.append(dash)
        _wait_ready(procs[0], f"http://{_client_host(host)}:{port}/health")
        typer.echo(f"MLflow UI: http://{_client_host(host)}:{port}  (store {store.uri}); Ctrl-C stops it", err=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = next(p for p in procs if p.poll() is not None)
        raise UserError(f"{' '.join(dead.args[:4])} exited with code {dead.returncode}")
    except KeyboardInterrupt:
        typer.echo("stopping", err=True)
    finally:
        for p in procs:
            _stop(p)


def server_command(store, host: str, port: int) -> list[str]:
    """`mlflow server` on `store`: one worker, no job runner, artifacts under the store's artifact root."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store.uri, "--host", host,
           "--port", str(port), "--workers", "1"]
    if store.artifact_root:
        Path(store.artifact_root.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        cmd += ["--artifacts-destination", store.artifact_root]
    return cmd


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _start(cmd: list[str], extra_env: dict[str, str]) -> subprocess.Popen:
    # Its own session: the server spawns workers, and stopping the group stops them all (and only them).
    return subprocess.Popen(cmd, env={**os.environ, **extra_env}, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _wait_ready(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"mlflow server exited with code {proc.returncode} before answering (port in use?)")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise UserError(f"mlflow server did not answer {url} within {READY_TIMEOUT_S:.0f}s")


def _dashboard(name: str, root: Path | None, host: str, port: int) -> subprocess.Popen | None:
    """optuna-dashboard on the sweep's journal, or None with a clear line when it is not installed."""
    from sweeper.sweep.sweepdir import SweepDir

    journal = SweepDir.at(name, root).require().journal
    exe = shutil.which("optuna-dashboard")
    if exe is None:
        typer.echo("optuna-dashboard is not installed (pip install 'sweeper[dashboard]'); serving MLflow only",
                   err=True)
        return None
    typer.echo(f"Optuna dashboard: http://{_client_host(host)}:{port}  (journal {journal})", err=True)
    return _start([exe, str(journal), "--host", host, "--port", str(port)], {})
