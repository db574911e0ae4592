"""A trm_core Sink for the terminal: a rich progress bar plus metrics appended to a JSONL file."""
from __future__ import annotations

import json
import math
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ProgressSink:
    def __init__(self, total: int, metrics_path: Path | None = None):
        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=False)
        self.task = self.progress.add_task("train", total=total, info="")
        self.metrics_path = metrics_path
        self.progress.start()
        self.last_eval = ""

    def _write(self, kind: str, metrics: dict, step: int) -> None:
        if self.metrics_path:
            clean = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps({"kind": kind, "step": step, **clean}) + "\n")

    def log(self, metrics: dict, step: int) -> None:
        self._write("train", metrics, step)
        info = f"loss {metrics['train/loss']:.3f}  acc {metrics['train/puzzle_acc']:.2f}  {self.last_eval}"
        self.progress.update(self.task, completed=step, info=info)

    def on_eval(self, metrics: dict, step: int, checkpoint_dir) -> None:
        self._write("eval", metrics, step)
        self.last_eval = f"eval acc {metrics['eval/puzzle_acc']:.3f}"
        self.progress.update(self.task, completed=step)

    def close(self) -> None:
        self.progress.stop()
