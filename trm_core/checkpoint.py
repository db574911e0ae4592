"""Versioned, checksummed checkpoints with one loader.

A checkpoint is a folder `step-00001200/` holding `state.pt` and `state.sha256`, written to a temporary
folder and renamed into place, so a crash mid-write never leaves a folder that looks complete. A
checkpoint whose checksum does not match is skipped (the event is reported) and the previous good one
is used. `state.pt` holds everything a resume needs: config, model, EMA, both optimisers, schedule step,
RNG states, sampler position and the in-flight slot/chain pool.

Loading never runs code: `state.pt` is read with `torch.load(weights_only=True)`, so it may hold only
tensors and plain Python values (format 2). The checksum cannot stop a crafted file, since whoever
writes state.pt can write state.sha256 too. A file that needs anything else (format 1 stored numpy's
RNG state as a numpy object; a hostile file names os.system) is refused with CheckpointError, never
unpickled and never skipped in favour of an older checkpoint.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from trm_core import durable
from trm_core.errors import ConfigError

SCHEMA = 2
"""2: tensors and plain values only (loaded with weights_only=True). 1: numpy RNG state as a numpy object."""
PREFIX = "step-"
_TMP = ".tmp-"

before_publish: Callable[[Path, int], None] | None = None
"""Test seam, None in normal use: called with the temporary folder and the step after state.pt is
written and before the folder is renamed into place. sweeper/faults.py sets it to inject a crash or a
full disk at that moment (trm_core itself never reads the environment for it)."""


class CheckpointError(ConfigError):
    """A checkpoint that is refused: it needs unpickling code, or has another format. One line."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack_numpy_rng(state: tuple) -> dict[str, Any]:
    """np.random.get_state() -> tensors and plain values (what weights_only loading accepts)."""
    kind, keys, pos, has_gauss, cached = state
    return {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def unpack_numpy_rng(packed: dict[str, Any]) -> tuple:
    """The inverse of pack_numpy_rng, ready for np.random.set_state."""
    keys = packed["keys"].cpu().numpy().astype(np.uint32)
    return packed["kind"], keys, packed["pos"], packed["has_gauss"], packed["cached_gaussian"]


def write_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a Python file object, flushed and fsynced.

    torch.save given a *path* writes in C++ and reports a full disk as a RuntimeError without an errno;
    through a Python file object the failing write raises OSError(ENOSPC), which callers that keep a
    run resumable on a full disk can recognise. A RuntimeError that still escapes is mapped to
    OSError(ENOSPC) when the disk is (nearly) full (durable.disk_error).
    """
    path = Path(path)
    try:
        with open(path, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    except RuntimeError as e:
        full = durable.disk_error(e, path.parent)
        if full is None:
            raise
        raise full from e


def save(root: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write `state` as checkpoint `step` under `root`; keep the newest `keep` checkpoints.

    On any failure (a full disk raises OSError(ENOSPC)) the temporary folder is removed and the
    checkpoints already under `root` are left as they were.
    """
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
        write_state(tmp / "state.pt", {"schema": SCHEMA, "step": step, **state})
        if before_publish is not None:
            before_publish(tmp, step)
        durable.write_text(tmp / "state.sha256", _sha256(tmp / "state.pt"))
        durable.swap_dir(tmp, final)
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


def _refused(folder: Path, e: Exception) -> CheckpointError:
    name = re.search(r"GLOBAL ([\w.]+)", str(e))
    what = f"'{name.group(1)}'" if name else "an object that is not a tensor or a plain value"
    return CheckpointError(
        f"{folder}: refused to load state.pt: it needs {what}, which could run code; only checkpoint "
        f"format {SCHEMA} (tensors and plain values) is loaded. Checkpoints written by an older trm_core "
        f"(format 1) cannot be loaded safely: train again")


def load_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint folder (or its state.pt), checking checksum and format; never runs code.

    ValueError for a torn or corrupt folder (load_latest falls back to an older one); CheckpointError
    for a file that needs unpickling code or has another format (never fallen back from).
    """
    path = Path(path)
    folder = path.parent if path.name == "state.pt" else path
    reason = verify(folder)
    if reason:
        raise ValueError(f"{folder}: corrupt checkpoint ({reason})")
    try:
        state = torch.load(folder / "state.pt", map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refused(folder, e) from None
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        found = state.get("schema") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{folder}: checkpoint format {found} is not {SCHEMA}; train again")
    return state


def load_latest(root: Path, map_location: str | torch.device = "cpu", on_event=None) -> dict[str, Any] | None:
    """The newest intact checkpoint under `root` (None if there is none). Corrupt ones are skipped and
    reported; a refused one (CheckpointError) stops the load."""
    for folder in reversed(list_checkpoints(root)):
        try:
            return load_state(folder, map_location)
        except CheckpointError:
            raise
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
