"""What follows a trial's start and end in the driver: the comparisons with the baseline (pairing) and the
hooks (MLflow's writes), run in one thread, in order, so Tune hands a free slot its next trial at once.

In Tune's event loop this work held the slot 0.1-2.5 s per trial (an fsync per SQLite write, every record
re-logged when the corrected p-values change, scipy's first import; a remote tracking server adds its
latency). Errors are raised in the driver's thread at the next call, and the report waits for the thread
to finish (drain). A trial's end is in Optuna before the hooks see it, so a driver killed in between would
leave, say, a finished trial's MLflow run unfinished: once the hooks have run, the trial folder gets
HOOKS_ENDED, and a new session hands the hooks every end Optuna has that lacks it (the hooks are idempotent).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sweeper.hooks import SweepHooks, TrialInfo
from sweeper.results import pairing
from sweeper.util.files import read_json

HOOKS_ENDED = "hooks_ended"
"""In a trial folder: the driver's hooks have seen the trial's end."""
ENDED = ("COMPLETE", "PRUNED", "FAIL")
"""How a trial ends for good (Optuna's state names)."""


class Bookkeeping:
    """The session's bookkeeping thread (see the module docstring)."""

    def __init__(self, sweep, hooks: Sequence[SweepHooks]):
        self.sweep, self.hooks = sweep, hooks
        self.later = InOrder("sweeper-bookkeeping")
        self._report_imported = False

    def trial_started(self, info: TrialInfo) -> None:
        self.later.run(lambda: [h.trial_started(info) for h in self.hooks])

    def trial_ended(self, info: TrialInfo, state: str, reason: str | None) -> None:
        self.later.run(lambda: self._after_end(info, state, reason))

    def hand_over_unseen_ends(self, trials: Iterable[Any]) -> None:
        """The ends of earlier sessions' trials (Optuna's, of this sweep) that the hooks never saw."""
        for t in trials:
            work = self.sweep.trial_dir(t.number)
            if t.state.name not in ENDED or (work / HOOKS_ENDED).exists():
                continue
            ran = read_json(work / "trial.json") or {}
            info = TrialInfo(number=t.number, trial_id=ran.get("ray_trial_id") or "", seed=t.user_attrs.get("seed", 0),
                             params=dict((ran.get("plan") or {}).get("values") or {}), work_dir=work)
            self.trial_ended(info, t.state.name, t.user_attrs.get("reason"))

    def winding_down(self) -> None:
        """Every trial is handed out, so slots now free up for good: the report's imports (matplotlib, scipy,
        Optuna's figures: ~1.5 s) are done here while the last trials run, not after them."""
        if not self._report_imported:
            self._report_imported = True
            self.later.run(_import_report_modules)

    def check(self) -> None:
        self.later.check()

    def drain(self) -> None:
        self.later.drain()

    def _after_end(self, info: TrialInfo, state: str, reason: str | None) -> None:
        """Compare with the baseline as soon as both sides exist, then the hooks, then the mark that they saw it."""
        if state == "COMPLETE":
            pairing.update(self.sweep.path)
        for h in self.hooks:
            h.trial_ended(info, state, reason)
        try:
            (Path(info.work_dir) / HOOKS_ENDED).write_text(state)
        except OSError:  # no folder (a trial that never started) or no room: the next session hands it over again
            pass


def _import_report_modules() -> None:
    """What write_report imports; nothing of Ray's, which the driver's thread may be importing meanwhile."""
    import matplotlib.pyplot  # noqa: F401
    from optuna.visualization import matplotlib  # noqa: F401

    from sweeper.results import plots, records, report  # noqa: F401


class InOrder:
    """One thread that runs the work it is given in the order given, while the caller goes on. An error is
    raised in the caller's thread by the next run(), check() or drain(); the work after it still runs (each
    piece stands alone: a failed comparison does not keep a trial's MLflow run from ending)."""

    def __init__(self, name: str):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.pending: list[Future] = []

    def run(self, work: Callable[[], Any]) -> None:
        self.check()
        self.pending.append(self.pool.submit(work))

    def check(self) -> None:
        """Raise the first error of the work done so far."""
        done, running = [], []
        for f in self.pending:  # one look at each: a future that finishes meanwhile is not lost between lists
            (done if f.done() else running).append(f)
        self.pending = running
        for f in done:
            f.result()

    def drain(self) -> None:
        """Wait for all the work given so far; raise the first error."""
        pending, self.pending = self.pending, []
        errors = [f.exception() for f in pending]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
