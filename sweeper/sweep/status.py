"""Reading a sweep without running it: `sweeper status` rows, and `sweeper prune`.

Both read the Optuna journal (what ended, and how) and the trial folders; while a driver runs, its
live.json adds Ray's view (running, pending and why). Nothing here starts Ray. `prune` takes the driver
lock, so it never races a running (or resuming) driver.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sweeper.errors import UserError
from sweeper.spec import SweepSpec
from sweeper.sweep import space, study
from sweeper.sweep.session import ENDED as FINISHED
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import now, read_json, read_jsonl


def status(sweep: SweepDir, spec: SweepSpec) -> dict[str, Any]:
    """State, counts, best trial and one row per trial (Ray's live view merged in while running)."""
    state = sweep.read_state()
    metrics = [m.name for m in spec.metrics]
    trials = study.load_trials(sweep.journal, spec.name)
    summary = study.describe(trials, metrics, space.directions(spec))
    rows = {r["number"]: {**r, "params": space.shown_values(spec, r), "value": next(iter(r["values"].values()), None),
                          "note": r.get("reason") or ""} for r in study.rows(trials, metrics)}
    running = sweep.is_locked()
    live = read_json(sweep.live_file) if running else None
    for r in (live or {}).get("rows", []):
        row = rows.setdefault(r["number"], {"number": r["number"], "params": r.get("params", {}), "seed": r.get("seed")})
        if row.get("state") not in FINISHED:
            row.update(state=r.get("state"), note=r.get("note") or "", evals=r.get("evals"), step=r.get("step"))
            row["value"] = r.get("value", row.get("value"))
    for number, row in rows.items():  # progress of unfinished trials from their own records
        evals = _evals(sweep.trial_dir(number))
        if evals and row.get("step") is None:
            row.update(step=evals[-1].get("step"), evals=evals[-1].get("evals"))
    status_word = state.get("status", "unknown")
    if status_word == "running" and not running:
        status_word = "stopped (its driver died; `sweeper resume` continues it)"
    return {"name": sweep.name, "status": status_word, "reason": state.get("reason"), "total": state.get("total"),
            "counts": summary["counts"], "best": [{**b, "params": space.shown_values(spec, b)} for b in summary["best"][:1]], "rows": sorted(rows.values(), key=lambda r: r["number"]),
            "running": running, "driver": state.get("driver"), "path": str(sweep.path), "metric": metrics[0]}


def _evals(trial_dir: Path) -> list[dict]:
    return read_jsonl(trial_dir / "evals.jsonl")


def prune(sweep: SweepDir, spec: SweepSpec, keep_best: int, dry_run: bool) -> list[dict[str, Any]]:
    """Delete the checkpoints of finished trials outside the best `keep_best` (metrics stay).

    Returns one record per trial touched: number, state, bytes freed (or that would be freed). Runs under
    the driver lock (refused while the sweep runs). Multi-objective sweeps rank by their first metric.
    """
    try:
        lock = sweep.lock()
    except UserError:
        raise UserError(f"sweep '{sweep.name}' is running; prune it after it stops (`sweeper stop {sweep.name}`)") from None
    try:
        metrics = [m.name for m in spec.metrics]
        trials = study.load_trials(sweep.journal, spec.name)
        summary = study.describe(trials, metrics[:1], space.directions(spec)[:1])
        keep = {r["number"] for r in summary["best"][:max(keep_best, 0)]}
        out = []
        for t in trials:
            target = sweep.trial_dir(t.number) / "checkpoints"
            if t.state.name not in FINISHED or t.number in keep or not target.is_dir():
                continue
            size = _size(target)
            if not dry_run:
                shutil.rmtree(target, ignore_errors=True)
            out.append({"number": t.number, "state": t.state.name, "bytes": size})
        if not dry_run and out:
            sweep.update_state(last_prune={"at": now(), "kept": sorted(keep), "freed": sum(r["bytes"] for r in out)})
        return out
    finally:
        lock.release()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
