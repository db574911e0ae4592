"""A real full disk for tests: fill a (small, test-mounted) file system, from the test or from inside a trial
worker at a chosen step (a sink, so the moment is deterministic)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

FILLER = "filler"
"""Name of the file that takes the space (next to the sweeps root's sweep folders); delete it to free it."""


def fill(folder: Path, leave: int = 0, name: str = FILLER) -> Path:
    """Write folder/name until the file system has about `leave` bytes free (within a page), or, with
    leave=0, until a write fails with ENOSPC. Returns the filler file; deleting it frees the space."""
    path = Path(folder) / name
    chunk = b"\0" * (64 << 10)
    with open(path, "ab", buffering=0) as f:
        while True:
            room = shutil.disk_usage(folder).free - leave
            if leave and room < 4096:
                break
            try:
                f.write(chunk if not leave else chunk[: max(4096, min(len(chunk), room))])
            except OSError:
                break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
    return path


class FillDiskAtStep:
    """A trial sink factory (the class is the factory): when the trial logs step FILL_STEP or later, it fills
    the file system of the sweeps root to the last byte, once per sweep. The filler lies in the sweeps root
    (not in the sweep folder), so the test frees the space by deleting it."""

    FILL_STEP = 9

    def __init__(self, ctx):
        self.root = Path(ctx.sweep_dir).parent

    def log(self, metrics, step):
        if step >= self.FILL_STEP and not (self.root / FILLER).exists():
            fill(self.root)

    def on_eval(self, metrics, step, checkpoint_dir):
        pass

    def close(self):
        pass
