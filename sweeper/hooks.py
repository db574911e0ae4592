"""Extension points of a sweep, for tracking back ends (MLflow) and tests. No Ray or Optuna here.

Trial side: every trial builds its sink as a composite of the Ray-report sink and one sink per entry of
`sink_factories`; each factory is called as `factory(ctx: TrialContext) -> Sink` inside the trial's
worker process, so factories must be picklable (module-level functions or small dataclasses).

Driver side: `SweepHooks` objects get the sweep's lifecycle, in the driver process: sweep_started and
sweep_ended in the driver's thread, trial_started and trial_ended in one bookkeeping thread, in the order
they happen and off Tune's event loop, so a slow hook (a remote tracking server) holds up no trial;
sweep_ended comes after every other call has returned. A trial's `trial_ended` is the authoritative end of a trial:
a trial's sinks see close() when train() returns, fails, or is stopped by the scheduler (Tune ends it
with SystemExit inside its report call), but not when its worker or the driver is killed.
The Ray-report sink is last in the composite, so the other sinks see an evaluation before Tune can
stop the trial on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from trm_core.sink import Sink

TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL")
"""How a trial can end (Optuna's names): ran to the end, stopped early by the scheduler, or failed."""


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """What a sink factory knows about the trial it serves (all paths absolute)."""

    sweep_name: str
    """Name of the sweep (its directory name)."""
    sweep_dir: Path
    """The sweep directory."""
    number: int
    """Optuna trial number: the trial's stable key across resumes (the trial dir is trials/tNNNN)."""
    trial_id: str
    """Ray Tune trial id (changes if Ray loses the trial and the sweep re-attaches it)."""
    seed: int
    """Training seed of this trial."""
    params: dict[str, Any]
    """The swept parameters of this trial (dotted trainer keys)."""
    config: dict[str, Any]
    """The resolved TrainConfig as a nested dict."""
    work_dir: Path
    """The trial directory: checkpoints/, evals.jsonl, attempts.jsonl."""
    resumed: bool
    """True when this attempt starts from a checkpoint of an earlier attempt."""
    label: str = ""
    """'model.k=2 optim.adam_lr=0.001': the swept keys' values (the configuration's name)."""
    config_key: str = ""
    """Hash of the configuration without seed and machine keys (equal for the seeds of one configuration)."""


SinkFactory = Callable[[TrialContext], Sink]


@dataclass(frozen=True, kw_only=True)
class SweepInfo:
    """The sweep as the driver sees it."""

    name: str
    """Sweep name."""
    sweep_dir: Path
    """Absolute sweep directory."""
    spec: dict[str, Any]
    """The normalised spec (SweepSpec.to_dict())."""
    spec_hash: str
    """SweepSpec.spec_hash."""
    preset: str
    """The trainer preset the trials start from (after profile resolution)."""
    total_trials: int
    """Trials the sweep runs in all."""
    resumed: bool = False
    """An earlier driver session of this sweep existed."""
    sweep_id: str = ""
    """A random id made when the sweep folder was created: two sweeps of one name are told apart by it."""


@dataclass(frozen=True, kw_only=True)
class TrialInfo:
    """One trial as the driver sees it."""

    number: int
    """Optuna trial number (stable key)."""
    trial_id: str
    """Ray Tune trial id."""
    seed: int
    """Training seed."""
    params: dict[str, Any]
    """Swept parameters."""
    work_dir: Path
    """Absolute trial directory."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """The last reported result (eval/*, train/*, step), empty if none yet."""


class SweepHooks(Protocol):
    """Driver-side lifecycle. Every method is optional in practice: subclass `NullHooks`."""

    def sweep_started(self, sweep: SweepInfo, resumed: bool) -> None:
        """Before the first trial of this driver session (resumed: an earlier session existed)."""

    def trial_started(self, trial: TrialInfo) -> None:
        """A trial's worker started (also after a retry or a resume)."""

    def trial_ended(self, trial: TrialInfo, state: str, reason: str | None) -> None:
        """A trial ended for good: state is one of TRIAL_STATES; reason says why for PRUNED/FAIL."""

    def sweep_ended(self, sweep: SweepInfo, status: str, reason: str | None) -> None:
        """The session is over: status 'finished', 'stopped' (resumable) or 'failed'."""


class NullHooks:
    """Hooks that do nothing; subclass and override what you need."""

    def sweep_started(self, sweep: SweepInfo, resumed: bool) -> None:
        pass

    def trial_started(self, trial: TrialInfo) -> None:
        pass

    def trial_ended(self, trial: TrialInfo, state: str, reason: str | None) -> None:
        pass

    def sweep_ended(self, sweep: SweepInfo, status: str, reason: str | None) -> None:
        pass


class CompositeSink:
    """Fans every call out to several sinks; close() reaches all of them even if one raises."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = list(sinks)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for s in self.sinks:
            s.log(metrics, step)

    def on_eval(self, metrics: dict[str, float], step: int, checkpoint_dir: Path | None) -> None:
        for s in self.sinks:
            s.on_eval(metrics, step, checkpoint_dir)

    def deferred(self) -> "CompositeSink":
        """The same sinks behind a close() that does nothing, for a caller that closes them itself later
        (the trainable closes its sinks after the final evaluation, not when train() returns)."""
        view = CompositeSink(self.sinks)
        view.close = lambda: None
        return view

    def close(self) -> None:
        errors = []
        for s in self.sinks:
            try:
                s.close()
            except Exception as e:  # keep closing the others; re-raise the first afterwards
                errors.append(e)
        if errors:
            raise errors[0]
