"""A trial's own story on disk, where users look for it: attempts.jsonl (one start/end record per attempt,
checkpoint problems, stops) and failure.json (why it failed). Also how a failure is classified.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from sweeper.util.files import append_jsonl, write_json
from sweeper.util.procs import process_record


class TrialLog:
    """Records of one attempt of a trial in its folder."""

    def __init__(self, work: Path, number: int, **attempt: Any):
        self.work, self.number = work, number
        self.attempt = {"pid": os.getpid(), "host": socket.gethostname(), **attempt, "start": time.time()}
        self.t0 = time.perf_counter()

    def start(self) -> None:
        rec = process_record(os.getpid()) or {}
        self.record("start", create_time=rec.get("create_time", 0.0))
        (self.work / "failure.json").unlink(missing_ok=True)

    def record(self, event: str, **fields: Any) -> None:
        append_jsonl(self.work / "attempts.jsonl", {"event": event, **self.attempt, **fields, "time": time.time()})

    def end(self, outcome: str, **fields: Any) -> None:
        self.record("end", outcome=outcome, end=time.time(), train_seconds=time.perf_counter() - self.t0, **fields)

    def fail(self, reason: str) -> None:
        """failure.json + an end record; a full or read-only disk must not hide the reason (it still reaches
        Ray's error log with the exception)."""
        try:
            write_json(self.work / "failure.json", {"reason": reason, "time": time.time()})
            self.end("failed", reason=reason)
        except OSError:
            pass

    def say(self, note: str) -> None:
        """A line in the worker's log (Ray's worker stderr) as well."""
        print(f"sweeper: trial {self.number}: {note}", file=sys.stderr, flush=True)


def failure_reason(exc: BaseException, gpu: float) -> str:
    """The one-line reason a trial failed with `exc` (gpu: its GPU share)."""
    import torch

    from trm_core.trainer import TrainingDiverged

    if isinstance(exc, TrainingDiverged):
        return f"diverged: {exc}"
    if isinstance(exc, torch.OutOfMemoryError):
        total = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 0
        return (f"CUDA out of memory with a {gpu:g} GPU share ({gpu * total:.1f} of {total:.1f} GiB); raise "
                "resources.gpu or lower batch_size")
    return f"{type(exc).__name__}: {exc}"
