"""`sweeper run | resume | status | stop | prune`: sweeps on Ray Tune + Optuna, kept under sweeps/<name>/."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from sweeper.commands._common import friendly
from sweeper.errors import DISK_ERRNOS, UserError
from sweeper.util.names import trial_name

RootOpt = Annotated[Optional[Path], typer.Option("--root", help="Folder holding the sweeps (default: $SWEEPER_HOME, else ./sweeps).")]


def register(app: typer.Typer) -> None:
    for fn in (run, resume, status, stop, prune):
        app.command(fn.__name__)(fn)


def extensions(spec, sweep, tracking_uri: str | None = None) -> Callable[[], tuple[list, list]]:
    """What makes (driver hooks, trial sink factories) for this sweep: MLflow tracking on both sides. The
    store's URI is checked now; the store is opened by the returned function, while Ray starts."""
    from sweeper.commands._sweeps import sweep_id
    from sweeper.tracking import hooks_for, resolve_store

    resolve_store(tracking_uri, spec.tracking_uri, sweep.path)  # a bad URI fails here, before Ray starts
    return lambda: hooks_for(spec, sweep.path, sweep_id(sweep), tracking_uri)


TrackingOpt = Annotated[Optional[str], typer.Option(
    "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the sweep file's "
    "tracking.uri, else ./mlruns/mlflow.db).")]


@friendly
def run(
    spec: Annotated[Path, typer.Argument(help="Sweep file (YAML), e.g. search_spaces/k_sweep.yaml.")],
    name: Annotated[Optional[str], typer.Option(help="Sweep name (default: the file's `name`). An existing name is resumed.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address, e.g. 10.0.0.5:6379 (default: $RAY_ADDRESS, else a local Ray).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="Trials at once (default: the spec's, else as resources allow).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the plan; start nothing.")] = False,
    root: RootOpt = None,
    tracking_uri: TrackingOpt = None,
    warm_start: Annotated[Optional[str], typer.Option("--warm-start", help="Seed the search with the finished trials of this earlier sweep (same parameters and distributions).")] = None,
) -> None:
    """Run a sweep (or resume it, if a sweep of that name exists)."""
    if dry_run:
        _plan(spec, name)
        return
    from sweeper.commands._sweeps import init_sweep

    sweep, sweep_spec, existed = init_sweep(spec, name, root)
    if existed:
        typer.echo(f"sweep '{sweep.name}' exists: resuming it", err=True)
    try:
        _execute(sweep, sweep_spec, address, concurrency, tracking_uri, warm_start)
    except typer.Exit:  # the sweep ran; its exit code says how it ended
        raise
    except Exception:
        if not existed:
            _discard_unstarted(sweep)
        raise


def _discard_unstarted(sweep) -> None:
    """Remove a sweep folder that this command created but whose start failed before any session began
    (a bad tracking URI, no GPU for a CUDA preset, ...). Left behind, its name would be taken: a rerun
    would 'resume' it, and the corrected file would be refused as a different spec."""
    import shutil

    try:
        lock = sweep.lock()
    except UserError:  # another driver holds it (it created the folder): not ours to remove
        return
    try:
        if sweep.read_state().get("sessions", 0) == 0:
            shutil.rmtree(sweep.path, ignore_errors=True)
    finally:
        lock.release()


@friendly
def resume(
    name: Annotated[str, typer.Argument(help="Sweep name (a folder under the sweeps root).")],
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray).")] = None,
    root: RootOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Resume a stopped, interrupted or crashed sweep; finished trials are not rerun."""
    from sweeper.commands._sweeps import open_sweep

    sweep, spec = open_sweep(name, root)
    _execute(sweep, spec, address, None, tracking_uri)


def _execute(sweep, spec, address, concurrency, tracking_uri=None, warm_start=None) -> None:
    from sweeper.sweep.runner import RunRequest, run_sweep

    for note in getattr(spec, "notes", ()):
        typer.echo(note, err=True)
    make_extensions = extensions(spec, sweep, tracking_uri)
    try:
        out = run_sweep(RunRequest(sweep=sweep, spec=spec, address=address, concurrency=concurrency,
                                   extensions=make_extensions, warm_start=warm_start))
    except OSError as e:  # the driver's own writes on a full disk (state.json, the report): one line, resumable
        if e.errno not in DISK_ERRNOS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        raise UserError(f"sweep '{sweep.name}' stopped: {os.strerror(e.errno).lower()}{where}; free space (or make "
                        f"it writable), then `sweeper resume {sweep.name}`") from None
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(out.counts.items())) or "no trials"
    typer.echo(f"sweep '{sweep.name}' {out.status}: {counts}" + (f" ({out.reason})" if out.reason else ""), err=True)
    if out.best:
        typer.echo(f"best: {trial_name(out.best['number'])} {out.best['values']} {out.best['params']} seed={out.best['seed']}",
                   err=True)
    if out.counts.get("FAIL"):
        typer.echo(f"failed trials: see `sweeper status {sweep.name}`", err=True)
    if out.status != "finished":
        typer.echo(f"resume with: sweeper resume {sweep.name}", err=True)
    raise typer.Exit(out.exit_code)


def _plan(spec_path: Path, name: str | None) -> None:
    import dataclasses

    from sweeper.spec import load_spec
    from sweeper.sweep.cluster import detect_gpus
    from sweeper.sweep.plan import plan_sweep

    spec = load_spec(spec_path)
    spec = dataclasses.replace(spec, name=name or spec.name)
    plan = plan_sweep(spec, detect_gpus())
    base = plan.base_config
    typer.echo(f"sweep '{spec.name}': {plan.total} trials ({spec.method}, seeds {list(spec.seeds)})")
    typer.echo(plan.announce)
    gpu = _range(plan.gpu_range) if plan.has_gpu else "no (no GPU here)"
    typer.echo(f"per trial: {_range(plan.cpu_range)} CPU, {gpu} GPU; {base['steps']} steps, "
               f"eval every {base['eval_every']}")
    sched = spec.scheduler
    typer.echo(f"scheduler: {sched.type if sched else 'none'}; concurrency: {spec.concurrency or 'as resources allow'}; "
               f"metric: {', '.join(f'{m.name} ({m.goal})' for m in spec.metrics)}")


def _range(lo_hi: tuple[float, float]) -> str:
    lo, hi = lo_hi
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


@friendly
def status(
    name: Annotated[Optional[str], typer.Argument(help="Sweep name (omit to list all sweeps).")] = None,
    root: RootOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show a sweep's trials, their states, the best so far, and why trials are pending."""
    import json

    from rich.console import Console

    from sweeper.commands._sweeps import open_sweep
    from sweeper.sweep import status as report
    from sweeper.sweep.live import table
    from sweeper.sweep.sweepdir import SweepDir, list_sweeps, sweeps_root

    if name is None:
        base = sweeps_root(root)
        for n in list_sweeps(base):
            st = SweepDir.at(n, root).read_state()
            counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted((st.get("counts") or {}).items()))
            typer.echo(f"{n:24s} {st.get('status', '?'):10s} {counts}")
        if not list_sweeps(base):
            typer.echo(f"no sweeps under {base}")
        return
    sweep, spec = open_sweep(name, root)
    info = report.status(sweep, spec)
    if as_json:
        typer.echo(json.dumps(info, indent=1, default=str))
        return
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=160)
    head = f"sweep {info['name']}: {info['status']}" + (f" ({info['reason']})" if info["reason"] else "")
    console.print(head, highlight=False, markup=False)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(info["counts"].items())) or "none yet"
    console.print(f"trials: {counts} of {info['total']}  ({info['path']})", highlight=False, markup=False)
    console.print(table(info["rows"], info["metric"]))
    if info["best"]:
        b = info["best"][0]
        console.print(f"best so far: {trial_name(b['number'])} {b['values']} {b['params']} seed={b['seed']}",
                      highlight=False, markup=False)


@friendly
def stop(
    name: Annotated[str, typer.Argument(help="Sweep name.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the driver has stopped.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 300.0,
    root: RootOpt = None,
) -> None:
    """Stop a running sweep gracefully; it stays resumable (`sweeper resume NAME`)."""
    from sweeper.sweep.sweepdir import SweepDir

    sweep = SweepDir.at(name, root).require()
    if not sweep.is_locked():
        from sweeper.sweep.cluster import clean_stale

        ended = clean_stale(sweep)  # a driver killed by kill -9 may have left Ray and trial workers running
        if ended:
            typer.echo(f"sweep '{name}' was not running; ended {len(ended)} process(es) its killed driver left "
                       f"behind; resume with: sweeper resume {name}", err=True)
            return
        raise UserError(f"sweep '{name}' is not running (status: {sweep.read_state().get('status', '?')})")
    sweep.request_stop()
    typer.echo(f"stop requested for '{name}'; running trials checkpoint their current step first", err=True)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while sweep.is_locked():
        if time.monotonic() > deadline:
            raise UserError(f"sweep '{name}' still running after {timeout:.0f}s; it will stop after its current step")
        time.sleep(0.5)
    typer.echo(f"sweep '{name}' stopped; resume with: sweeper resume {name}", err=True)


@friendly
def prune(
    name: Annotated[str, typer.Argument(help="Sweep name.")],
    keep_best: Annotated[int, typer.Option(min=0, help="Keep the checkpoints of this many best trials.")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be deleted.")] = False,
    root: RootOpt = None,
) -> None:
    """Delete checkpoints of finished trials outside the best N; their metrics are kept."""
    from sweeper.commands._sweeps import open_sweep
    from sweeper.sweep import status as report

    sweep, spec = open_sweep(name, root)
    freed = report.prune(sweep, spec, keep_best, dry_run)
    verb = "would free" if dry_run else "freed"
    for r in freed:
        typer.echo(f"{trial_name(r['number'])} {r['state']:8s} {verb} {report.human_bytes(r['bytes'])}")
    typer.echo(f"{verb} {report.human_bytes(sum(r['bytes'] for r in freed))} in {len(freed)} trial(s); "
               f"kept the best {keep_best}")
