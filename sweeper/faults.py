"""Test-only fault injection: make a sweep fail at a named moment, reproducibly (tests/reliability/).

Does nothing unless $SWEEPER_FAULT is set. Its value is a comma-separated list of

    POINT:TRIAL:HIT:ACTION      e.g. SWEEPER_FAULT=checkpoint_write:t0001:2:kill_all

POINT   where the process is (the keys of POINTS)
TRIAL   the trial it concerns (t0003), or * for any trial
HIT     fire on the HIT-th time this process reaches POINT for that trial (1 = the first)
ACTION  kill_driver (SIGKILL the sweep's driver, as `kill -9` would), kill_worker (SIGKILL this trial
        worker), kill_all (both, as a process kill: the page cache survives, unlike a power cut), oom (raise
        torch.OutOfMemoryError), truncate_ckpt (cut the trial's newest
        checkpoint file in half, then SIGKILL the worker: a torn write the checksum must catch)

Each fault fires at most once per sweep: before it acts it leaves a marker in <sweep dir>/faults/, so a
retried or resumed trial does not fail again at the same point, and a test can check that its fault
really fired. When several faults match one hit, the first one not fired yet acts.
"""
from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from sweeper.util.names import trial_name, trial_number

ENV = "SWEEPER_FAULT"
POINTS = {
    "trial_start": "a trial's worker has recorded its attempt and is about to start training",
    "train_log": "the trainer logged a window of steps (mid-training)",
    "checkpoint_write": "state.pt is written to the temporary folder, not yet renamed into place",
    "mlflow_log": "the trial's MLflow sink is about to log a batch of metrics",
    "trial_finished": "the driver has recorded a trial's end in Optuna and queued its hooks (MLflow), before Ray "
                      "snapshots it",
}
ACTIONS = ("kill_driver", "kill_worker", "kill_all", "oom", "truncate_ckpt")
"""(A full disk is not simulated here: tests/reliability/test_full_disk.py fills a real tmpfs.)"""
_SPEC = re.compile(r"(?P<point>\w+):(?P<trial>t\d{4}|\*):(?P<hit>[1-9]\d*):(?P<action>\w+)")
_hits: dict[tuple[str, int | None], int] = {}


def active() -> bool:
    """True when $SWEEPER_FAULT is set (callers skip installing hooks otherwise)."""
    return bool(os.environ.get(ENV))


def _parse(text: str) -> list[dict[str, str]]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _SPEC.fullmatch(part)
        if not m or m["point"] not in POINTS or m["action"] not in ACTIONS:
            raise ValueError(f"{ENV}: bad fault {part!r}; expected POINT:tNNNN|*:HIT:ACTION with POINT in "
                             f"{sorted(POINTS)} and ACTION in {list(ACTIONS)}")
        out.append({**m.groupdict(), "text": part})
    return out


def marker(sweep_dir: str | Path, fault: str) -> Path:
    """The file that records that `fault` (its text in $SWEEPER_FAULT) has fired."""
    return Path(sweep_dir) / "faults" / (re.sub(r"[^\w-]", "_", fault) + ".fired")


def point(name: str, sweep_dir: str | Path, trial: int | None = None) -> None:
    """A named moment of a sweep; acts if a fault of $SWEEPER_FAULT matches (see the module docstring)."""
    text = os.environ.get(ENV)
    if not text:
        return
    key = (name, trial)
    _hits[key] = _hits.get(key, 0) + 1
    for fault in _parse(text):
        if fault["point"] != name or int(fault["hit"]) != _hits[key]:
            continue
        if fault["trial"] != "*" and (trial is None or trial_number(fault["trial"]) != trial):
            continue
        mark = marker(sweep_dir, fault["text"])
        if mark.exists():
            continue
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(f"pid {os.getpid()}\n")
        _act(fault["action"], Path(sweep_dir), trial)
        return


def _act(action: str, sweep_dir: Path, trial: int | None) -> None:
    if action in ("kill_driver", "kill_all"):
        _kill_driver(sweep_dir)
    if action == "truncate_ckpt":
        _truncate_newest(sweep_dir / "trials" / trial_name(trial) / "checkpoints")
    if action in ("kill_worker", "kill_all", "truncate_ckpt"):
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "oom":
        import torch

        raise torch.OutOfMemoryError(f"CUDA out of memory (simulated by {ENV})")


def _kill_driver(sweep_dir: Path) -> None:
    """SIGKILL the driver recorded in state.json (itself, when called in the driver)."""
    import json
    import socket

    driver = (json.loads((sweep_dir / "state.json").read_text()).get("driver") or {})
    if driver.get("host") != socket.gethostname() or not driver.get("pid"):
        raise RuntimeError(f"{ENV}: no driver of this host recorded in {sweep_dir / 'state.json'}")
    os.kill(int(driver["pid"]), signal.SIGKILL)


def _truncate_newest(ckpt_root: Path) -> None:
    from trm_core import checkpoint

    newest = checkpoint.list_checkpoints(ckpt_root)[-1] / "state.pt"
    size = newest.stat().st_size
    with open(newest, "r+b") as f:
        f.truncate(size // 2)


def install_checkpoint_hook(sweep_dir: str | Path, trial: int) -> None:
    """Route trm_core's checkpoint-write seam to `point('checkpoint_write', ...)` for this trial (no-op
    hook removal when faults are off, since Ray reuses worker processes across trials)."""
    from trm_core import checkpoint

    if not active():
        checkpoint.before_publish = None
        return
    checkpoint.before_publish = lambda tmp, step: point("checkpoint_write", sweep_dir, trial)
