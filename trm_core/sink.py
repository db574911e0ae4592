"""The trainer's only way out: a sink that receives namespaced metric dicts.

trm_core never imports ray, optuna or mlflow; sweeper adapts this interface to them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Sink(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None:
        """Metrics such as {'train/loss': 0.3}; called every log_every steps."""

    def on_eval(self, metrics: dict[str, float], step: int, checkpoint_dir: Path | None) -> None:
        """Evaluation metrics, after the checkpoint of this step (if any) is written and complete."""

    def close(self) -> None:
        """The run is over (finished, stopped or failed)."""


class NullSink:
    def log(self, metrics, step):
        pass

    def on_eval(self, metrics, step, checkpoint_dir):
        pass

    def close(self):
        pass


class ListSink:
    """Keeps every (step, metrics) pair; for tests and for `sweeper train` summaries."""

    def __init__(self) -> None:
        self.logs: list[tuple[int, dict]] = []
        self.evals: list[tuple[int, dict]] = []
        self.closed = False

    def log(self, metrics, step):
        self.logs.append((step, dict(metrics)))

    def on_eval(self, metrics, step, checkpoint_dir):
        self.evals.append((step, dict(metrics)))

    def close(self):
        self.closed = True
