"""W&B's hyperband early stopping as a Ray Tune scheduler (spec Scheduler type `wandb_hyperband`, from a
sweep file's `early_terminate`).

The rule of W&B's `hyperband_stop_runs` (PyPI sweeps 0.3.0, sweeps/hyperband_stopping.py), kept exactly:
- a trial's history is its finite metric values in report order (here one report per evaluation),
  negated when maximizing so that smaller is better;
- at band b, the threshold is sorted(value at b of every trial that reached b, finished ones included)
  [int((1 / eta) * n)];
- a running trial is judged against the latest band it has passed: with `strict` (W&B's default) by its
  value at that band, else by its best value so far; it stops when that is above the threshold.
W&B's controller re-judges every running run whenever it polls; here a trial is judged each time it
reports, so it stops at the first report at which W&B's rule says stop.

This is not Ray's ASHA (sweeper.spec.Scheduler.rungs says how they differ); `scheduler: {type: asha}` is
the named option for that.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from ray.tune.schedulers import FIFOScheduler, TrialScheduler


class WandbHyperband(FIFOScheduler):
    """W&B's hyperband stopping rule over `bands` (in reports of `metric`)."""

    def __init__(self, *, metric: str, mode: str, bands: Iterable[int], eta: float, strict: bool = True,
                 time_attr: str = "evals", histories: Mapping[Any, Iterable[float]] | None = None):
        """`histories`: metric values (in report order) of trials that ran before this scheduler was made,
        keyed like trials here (the `number` in the trial config), e.g. from the Optuna journal on resume,
        so thresholds count every trial of the sweep as W&B's do."""
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self._metric, self._sign = metric, -1.0 if mode == "max" else 1.0
        self._bands, self._eta, self._strict, self._time_attr = tuple(sorted(set(bands))), float(eta), strict, time_attr
        self._hist: dict[Any, dict[int, float]] = {}
        for key, values in (histories or {}).items():
            finite = [float(v) for v in values if _finite(v)]
            self._hist[key] = {i + 1: self._sign * v for i, v in enumerate(finite)}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        value = result.get(self._metric)
        if not _finite(value):  # W&B's history skips missing and non-finite values
            return TrialScheduler.CONTINUE
        hist = self._hist.setdefault(_key(trial), {})
        index = result.get(self._time_attr)
        # keyed by report number: a report repeated after a resume replaces the value instead of adding one
        index = int(index) if isinstance(index, (int, float)) and index >= 1 else len(hist) + 1
        hist[index] = self._sign * float(value)
        return TrialScheduler.STOP if self.should_stop(_key(trial)) else TrialScheduler.CONTINUE

    def should_stop(self, key: Any) -> bool:
        """W&B's verdict for the trial `key` as the histories stand now."""
        mine = self._sequence(key)
        passed = [b for b in self._bands if b <= len(mine)]
        if not passed:
            return False
        band = passed[-1]
        values = sorted(s[band - 1] for s in map(self._sequence, self._hist) if len(s) >= band)
        threshold = values[int((1.0 / self._eta) * len(values))]
        return (mine[band - 1] if self._strict else min(mine)) > threshold

    def _sequence(self, key: Any) -> list[float]:
        return [v for _, v in sorted(self._hist.get(key, {}).items())]

    def debug_string(self) -> str:
        return f"W&B hyperband stopping (bands {list(self._bands)[:6]}, eta {self._eta:g}, strict {self._strict})"


def _key(trial: Any) -> Any:
    """The trial's stable key: its Optuna number in the trial config, else Ray's trial id."""
    config = getattr(trial, "config", None) or {}
    return config.get("number", trial.trial_id)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
