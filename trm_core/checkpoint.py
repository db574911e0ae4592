"""Versioned, checksummed checkpoints with one loader.

A checkpoint is a folder `step-00001200/` holding `state.pt` and `state.sha256`, written to a temporary
folder and renamed into place, so a crash mid-write never leaves a folder that looks complete. A
checkpoint whose checksum does not match is skipped (the event is reported) and the previous good one
is used. `state.pt` holds everything a resume needs: config, model, EMA, both optimisers, schedule step,
RNG states, sampler position and the in-flight slot/chain pool.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

SCHEMA = 1
PREFIX = "step-"
_TMP = ".tmp-"

before_publish: Callable[[Path, int], None] | None = None
"""Test seam, None in normal use: called with the temporary folder and the step after state.pt is
written and before the folder is renamed into place. sweeper/faults.py sets it to inject a crash or a
full disk at that moment (trm_core itself never reads the environment for it)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(root: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write `state` as checkpoint `step` under `root`; keep the newest `keep` checkpoints."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    # A writer killed mid-write (kill -9, power cut) leaves its temporary folder behind; one run writes
    # to a root at a time, so any such folder is a leftover and would otherwise hold disk space forever.
    for stale in root.glob(f"{_TMP}{PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f"{_TMP}{PREFIX}{step:08d}-{os.getpid()}"
    tmp.mkdir()
    try:
        torch.save({"schema": SCHEMA, "step": step, **state}, tmp / "state.pt")
        with open(tmp / "state.pt", "rb+") as f:
            os.fsync(f.fileno())
        if before_publish is not None:
            before_publish(tmp, step)
        (tmp / "state.sha256").write_text(_sha256(tmp / "state.pt"))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint folders under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def verify(path: Path) -> str | None:
    """None if the checkpoint folder is intact, else the reason it is not."""
    state, digest = Path(path) / "state.pt", Path(path) / "state.sha256"
    if not state.is_file() or not digest.is_file():
        return "missing state.pt or state.sha256"
    if _sha256(state) != digest.read_text().strip():
        return "checksum mismatch"
    return None


def load_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint folder (or its state.pt), checking checksum and schema."""
    path = Path(path)
    folder = path.parent if path.name == "state.pt" else path
    reason = verify(folder)
    if reason:
        raise ValueError(f"{folder}: corrupt checkpoint ({reason})")
    state = torch.load(folder / "state.pt", map_location=map_location, weights_only=False)
    if state.get("schema") != SCHEMA:
        raise ValueError(f"{folder}: checkpoint schema {state.get('schema')} is not {SCHEMA}")
    return state


def load_latest(root: Path, map_location: str | torch.device = "cpu", on_event=None) -> dict[str, Any] | None:
    """The newest intact checkpoint under `root` (None if there is none). Corrupt ones are skipped and reported."""
    for folder in reversed(list_checkpoints(root)):
        try:
            return load_state(folder, map_location)
        except Exception as e:  # a torn or corrupt file: fall back to the previous checkpoint
            msg = f"skipping checkpoint {folder.name}: {e}"
            if on_event:
                on_event(msg)
            else:
                warnings.warn(msg, stacklevel=2)
    return None


def resolve_path(path: Path) -> Path:
    """A checkpoint folder, a run folder (its newest checkpoint) or a state.pt -> a checkpoint folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(str(path))
    if path.is_file():
        return path.parent
    if (path / "state.pt").is_file():
        return path
    for root in (path, path / "checkpoints"):
        found = [p for p in reversed(list_checkpoints(root)) if verify(p) is None]
        if found:
            return found[0]
    raise ValueError(f"{path}: no intact checkpoint found")


def load_model(path: Path, device: str | torch.device = "cpu", use_ema: bool = True):
    """Build the TRM stored in a checkpoint (EMA weights when present). Returns (model, TrainConfig, state)."""
    from trm_core.config import TrainConfig, from_dict
    from trm_core.model import TRM

    state = load_state(resolve_path(path), map_location=device)
    cfg = from_dict(TrainConfig, state["config"])
    model = TRM(cfg.model).to(device)
    weights = state.get("ema") if use_ema and state.get("ema") is not None else state["model"]
    model.load_state_dict(weights)
    return model.eval(), cfg, state
