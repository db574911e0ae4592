"""Progress of long commands (training, evaluation, data builds): a live rich bar on a terminal, plain lines
elsewhere.

Where stdout is not a terminal (a cluster job's log, `sweeper train > train.log`, a pipe) a live bar shows nothing
until the end. There, like tqdm in a log file, each task prints a line at its first update, then at most every
SWEEPER_PROGRESS_EVERY seconds (default 30), at every evaluation of a training, and at its end:

    train 120/300 (40%)  loss 1.234  acc 0.125  eval acc 0.100  |  3.2 steps/s  elapsed 0:00:37  ETA 0:00:56

Lines go to stdout, where the bar would be drawn, and are flushed at once.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from trm_core.config import ConfigError

ENV_EVERY = "SWEEPER_PROGRESS_EVERY"
DEFAULT_EVERY_S = 30.0


def interactive() -> bool:
    """Whether stdout is a terminal a live bar can redraw (rich's test, which honours FORCE_TERMINAL/TTY_*)."""
    from rich.console import Console

    return Console().is_terminal


def every_s() -> float:
    """Seconds between plain progress lines: $SWEEPER_PROGRESS_EVERY, else DEFAULT_EVERY_S."""
    text = os.environ.get(ENV_EVERY, "").strip()
    if not text:
        return DEFAULT_EVERY_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"${ENV_EVERY}={text!r}: expected seconds between progress lines, a number >= 0")
    return value


@dataclass
class _Task:
    label: str
    total: int
    done: int = 0
    info: str = ""
    started: float = field(default_factory=time.monotonic)
    first: tuple[float, int] | None = None
    """(time, done) at the first update: the rate counts from there (a resumed run starts far from 0)."""
    printed_at: float = -math.inf
    finished: bool = False


class Progress:
    """Tasks with a total, shown as a rich bar on a terminal and as PlainLines elsewhere. A context manager."""

    def __init__(self, unit: str = "steps", transient: bool = False, plain: bool | None = None):
        """`unit` names what is counted (steps/s); `transient` bars vanish at the end (the plain lines stay);
        `plain` forces a mode (default: plain unless stdout is a terminal)."""
        self.unit, self.plain = unit, (not interactive()) if plain is None else plain
        self.every = every_s()
        self.tasks: list[_Task] = []
        self._labels: dict[str, int] = {}
        self._bar = None
        if not self.plain:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                            transient=transient)

    def __enter__(self) -> "Progress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def add(self, label: str, total: int) -> int:
        """A new task; returns its id."""
        self.tasks.append(_Task(label, int(total)))
        if self._bar is not None:
            from rich.markup import escape

            self._bar.add_task(escape(label), total=total, info="")
        return len(self.tasks) - 1

    def update(self, task: int, completed: int | None = None, advance: int = 0, info: str | None = None,
               force: bool = False) -> None:
        """Set or advance the task's count (and its info text); `force` prints a plain line now."""
        t = self.tasks[task]
        t.done = (t.done if completed is None else int(completed)) + int(advance)
        t.info = t.info if info is None else info
        if self._bar is not None:
            self._bar.update(task, completed=t.done, info=t.info)
            return
        now = time.monotonic()
        t.first = t.first or (now, t.done)
        end = t.done >= t.total and not t.finished
        if force or end or now - t.printed_at >= self.every:
            t.finished = t.finished or end
            t.printed_at = now
            sys.stdout.write(self.line(t, now) + "\n")
            sys.stdout.flush()

    def by_label(self, label: str, done: int, total: int) -> None:
        """A `progress(name, done, total)` callback (trm_core.evaluation's): one task per name."""
        if label not in self._labels:
            self._labels[label] = self.add(label, total)
        self.update(self._labels[label], completed=done)

    def line(self, t: _Task, now: float) -> str:
        """'label done/total (pct)  info  |  rate unit/s  elapsed h:mm:ss  ETA h:mm:ss'."""
        t0, d0 = t.first or (now, t.done)
        rate = (t.done - d0) / (now - t0) if now > t0 and t.done > d0 else None
        eta = 0.0 if t.done >= t.total else (t.total - t.done) / rate if rate else None
        pct = f" ({100 * t.done / t.total:.0f}%)" if t.total > 0 else ""
        speed = f"{rate:.3g} {self.unit}/s" if rate else f"- {self.unit}/s"
        info = f"  {t.info}" if t.info else ""
        return (f"{t.label} {t.done}/{t.total}{pct}{info}  |  {speed}  elapsed {_clock(now - t.started)}  "
                f"ETA {_clock(eta) if eta is not None else '-'}")


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class ProgressSink:
    """A trm_core Sink for `sweeper train`: Progress (bar or plain lines) plus metrics appended to a JSONL file."""

    def __init__(self, total: int, metrics_path: Path | None = None, plain: bool | None = None):
        self.progress = Progress(unit="steps", plain=plain).__enter__()
        self.task = self.progress.add("train", total)
        self.metrics_path = metrics_path
        self.last_train = self.last_eval = ""

    def _write(self, kind: str, metrics: dict, step: int) -> None:
        if self.metrics_path:
            clean = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps({"kind": kind, "step": step, **clean}) + "\n")

    def log(self, metrics: dict, step: int) -> None:
        self._write("train", metrics, step)
        self.last_train = f"loss {metrics['train/loss']:.3f}  acc {metrics['train/puzzle_acc']:.3f}"
        self.progress.update(self.task, completed=step, info=f"{self.last_train}  {self.last_eval}".strip())

    def on_eval(self, metrics: dict, step: int, checkpoint_dir) -> None:
        """An evaluation is rare and what a log is read for: it always gets its line."""
        self._write("eval", metrics, step)
        self.last_eval = f"eval acc {metrics['eval/puzzle_acc']:.3f}"
        self.progress.update(self.task, completed=step, info=f"{self.last_train}  {self.last_eval}".strip(), force=True)

    def close(self) -> None:
        self.progress.__exit__(None, None, None)
