"""`sweeper ui [NAME]`: the MLflow UI on the project's store, opened on a sweep's runs (optionally optuna-dashboard
on the sweep's journal).

Tracking store, first that is set: --tracking-uri > $MLFLOW_TRACKING_URI > the store the sweep NAME recorded >
the embedded store ./mlruns/mlflow.db (artifacts in ./mlruns/artifacts). mlflow is imported inside the command.

The servers are this command's: they run in their own session (a terminal's Ctrl-C or hang-up reaches only this
process), and Ctrl-C, SIGTERM and SIGHUP all stop them and their workers before the command exits.
"""
from __future__ import annotations

import ipaddress
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
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Besides Ctrl-C (SIGINT): a process manager's stop, and a closed terminal."""


class Stopped(Exception):
    """A stop signal arrived (SIGTERM or SIGHUP); Ctrl-C stays a KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)


@friendly
def ui(
    name: Annotated[Optional[str], typer.Argument(help="Sweep (MLflow experiment, e.g. 'train') whose runs page to print; default: the list of experiments.", show_default=False)] = None,
    sweep: Annotated[Optional[str], typer.Option("--sweep", help="The same as the NAME argument.", show_default=False)] = None,
    open_: Annotated[bool, typer.Option("--open", help="Also open the page in a web browser.")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind; the default serves this machine only.")] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host other machines can reach (the UI has no login: anyone there can read and delete runs).")] = False,
    optuna: Annotated[Optional[str], typer.Option("--optuna", help="Also serve optuna-dashboard for this sweep's journal, on port+1 (needs pip install 'sweeper\\[dashboard]').")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="Folder holding the sweeps, for NAME's store and --optuna (default: $SWEEPER_HOME, else ./sweeps).")] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Serve the MLflow UI on the project's store until Ctrl-C (or SIGTERM/SIGHUP); print the page to open."""
    name = _one_name(name, sweep)
    _check_host(host, allow_remote)
    if optuna and port == 65535:
        raise UserError("--optuna serves optuna-dashboard on --port + 1, and 65535 is the last port; choose a lower --port")
    store = _store(name, root, tracking_uri)
    page = _page_of(store, name)  # before any server starts: a wrong name costs nothing
    procs: list[subprocess.Popen] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *STOP_SIGNALS)}
    for s in STOP_SIGNALS:
        signal.signal(s, _raise_stopped)
    try:
        procs.append(_start(server_command(store, host, port), {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}))
        if optuna:
            dash = _dashboard(optuna, root, host, port + 1)
            if dash is not None:
                procs.append(dash)
        base = f"http://{_client_host(host)}:{port}"
        _wait_ready(procs[0], f"{base}/health")
        typer.echo(f"MLflow UI: {base}  (store {store.uri}); Ctrl-C stops it", err=True)
        url = page(base)
        typer.echo(url)
        if open_:
            _open(url)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = next(p for p in procs if p.poll() is not None)
        raise UserError(f"{' '.join(dead.args[:4])} exited with code {dead.returncode}")
    except KeyboardInterrupt:
        typer.echo("stopping", err=True)
    except Stopped as e:
        typer.echo(f"stopping ({e})", err=True)
        raise typer.Exit(128 + e.signum) from None  # the shell's convention for "ended by signal N"
    finally:
        for s in previous:  # a second signal must not cut the cleanup short (it is bounded: see _stop)
            signal.signal(s, signal.SIG_IGN)
        for p in procs:
            _stop(p)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


def _one_name(name: str | None, sweep: str | None) -> str | None:
    if name and sweep and name != sweep:
        raise UserError(f"two sweep names given ({name!r} and --sweep {sweep!r}); give one")
    return name or sweep


def _check_host(host: str, allow_remote: bool) -> None:
    """Refuse an address other machines can reach unless --allow-remote (security review, finding 14)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        loopback = False
    if loopback:
        return
    if not allow_remote:
        raise UserError(f"--host {host} lets other machines read, change and delete every run (the MLflow UI has no "
                        "login); add --allow-remote to do it anyway, or use an SSH tunnel to 127.0.0.1")
    typer.echo(f"warning: serving on {host} without a login; consider `mlflow server --app-name basic-auth` "
               "and its --allowed-hosts", err=True)


def _store(name: str | None, root: Path | None, tracking_uri: str | None):
    from sweeper.sweep.sweepdir import SweepDir
    from sweeper.tracking import resolve_store

    sweep_dir = SweepDir.at(name, root).path if name else None
    store = resolve_store(tracking_uri, None, sweep_dir if sweep_dir is not None and sweep_dir.is_dir() else None)
    if store.uri.startswith(("http://", "https://")):
        raise UserError(f"the tracking URI {store.uri} is already a server: open it in a browser")
    return store


def _page_of(store, name: str | None):
    """base URL -> the page to open: NAME's runs in the model-training view (its saved view installed if an
    older sweep lacks it), else the experiments list."""
    from sweeper.tracking import open_existing, runs_view

    if name is None:
        return runs_view.home_url
    tracker = open_existing(store, name)
    runs_view.ensure_view(tracker)
    return lambda base: runs_view.runs_url(base, tracker.experiment_id)


def _open(url: str) -> None:
    import webbrowser

    if not webbrowser.open(url):
        typer.echo("no web browser found here; open the URL above yourself", err=True)


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
    # Its own session: the server spawns workers, and stopping the group stops them all (and only them). Its log
    # goes to stderr, so stdout holds only the URL to open (for scripts).
    return subprocess.Popen(cmd, env={**os.environ, **extra_env}, start_new_session=True, stdout=sys.stderr.fileno())


def _stop(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM to the server's whole process group (the server and its uvicorn worker), SIGKILL to whatever is
    left of the group after `grace_s`."""
    deadline = time.monotonic() + grace_s
    if _signal_group(proc.pid, signal.SIGTERM):
        while time.monotonic() < deadline and (proc.poll() is None or _signal_group(proc.pid, 0)):
            time.sleep(0.1)
        _signal_group(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the process group; False when no process of it is left (0 only asks)."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


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
