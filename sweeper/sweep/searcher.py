"""The Ray <-> Optuna bridge: a Ray Tune Searcher over the sweep's StudyBroker, the outcome of a finished
trial, and the schedulers (baseline trials are never stopped early).

Ray's stock OptunaSearch is not used: it tells Optuna that scheduler-stopped trials are COMPLETE, cannot
carry a seed axis, and pickles a study into Ray's state. Here each handed-out Optuna trial is resolved
once into a TrialPlan (sweeper.sweep.trial) that Ray carries as the trial's config.
"""
from __future__ import annotations

import json
from typing import Any

from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.search import Searcher

from sweeper import faults
from sweeper.spec import SweepSpec
from sweeper.sweep.resolve import resolve_trial
from sweeper.sweep.study import StudyBroker
from sweeper.sweep.sweepdir import SweepDir
from sweeper.sweep.trial import TrialPlan
from sweeper.sweep.wandb_hyperband import WandbHyperband
from sweeper.util.files import read_json


class SweepSearcher(Searcher):
    """Ray's side of the StudyBroker: trial plans out, results in. `session` is the live driver session
    (sweeper.sweep.session.Session); it is not pickled with the searcher."""

    def __init__(self, broker: StudyBroker, session):
        metric, mode = metric_mode(broker.spec)
        super().__init__(metric=metric, mode=mode)
        self.broker, self.session = broker, session
        self.numbers: dict[str, int] = {}
        """Ray trial id -> Optuna trial number."""

    def __getstate__(self) -> dict:  # Ray pickles its search algorithm; the live session stays behind
        return {**self.__dict__, "session": None}

    def suggest(self, trial_id: str) -> dict | None:
        if self.session.stop_reason:
            # Stopping: this session hands out nothing more. Not None: with no trial left running, Tune would
            # block in its trial queue waiting for one (no step, so no callback ends the run).
            return Searcher.FINISHED
        if trial_id in self.numbers:  # Tune asked twice
            return None
        handout = self.broker.next_trial()
        if handout is None:
            return Searcher.FINISHED
        p = self.session.plan
        trial = resolve_trial(p.spec, handout, p.preset, p.has_gpu, p.baseline_keys)
        self.numbers[trial_id] = trial.number
        self.session.planned(trial_id, trial)
        return trial.to_ray()

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, str) and trial_id in self.numbers and self.metric in result:
            self.broker.report(self.numbers[trial_id], result[self.metric], int(result.get("step", 0)))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        number = self.numbers.get(trial_id)
        if number is None:
            return
        state, reason = outcome(self.broker.sweep, self.broker.spec, number, result, error)
        if state == "PRUNED" and isinstance(self.metric, str) and self.metric in (result or {}):
            # Tune withholds the result that made the scheduler stop the trial from the searcher;
            # Optuna takes a pruned trial's value from its last intermediate value, so record it.
            self.broker.report(number, result[self.metric], int(result.get("step", 0)))
        state = self.broker.finish(number, state, result, reason)
        self.session.ended(trial_id, number, state, reason)
        if self.broker.all_handed_out():
            self.session.winding_down()
        faults.point("trial_finished", self.broker.sweep.path, number)

    def save(self, checkpoint_path: str) -> None:  # JSON, not pickle: nothing executable in the sweep folder
        with open(checkpoint_path, "w") as f:
            json.dump({"numbers": self.numbers, "owned": sorted(self.broker.owned)}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        self.numbers, self.broker.owned = state["numbers"], set(state["owned"])


def outcome(sweep: SweepDir, spec: SweepSpec, number: int, result: dict | None, error: bool) -> tuple[str, str | None]:
    """COMPLETE (the trainer reached its last step), PRUNED (stopped early) or FAIL, with a reason."""
    if error:
        failure = read_json(sweep.trial_dir(number) / "failure.json") or {}
        return "FAIL", failure.get("reason") or "the trial's worker died (see the Ray logs under the sweep's ray/)"
    if result and result.get("final"):
        return "COMPLETE", None
    evals = (result or {}).get("evals")
    by = spec.scheduler.type if spec.scheduler else "the sweep"
    return "PRUNED", f"stopped by {by} after {evals} eval(s)" if evals else f"stopped by {by} before reporting"


def metric_mode(spec: SweepSpec) -> tuple[Any, Any]:
    """(metric, mode) as Ray wants them: strings for one objective, lists for several."""
    modes = ["max" if m.goal == "maximize" else "min" for m in spec.metrics]
    if len(modes) == 1:
        return spec.metrics[0].name, modes[0]
    return [m.name for m in spec.metrics], modes


class _KeepBaselines:
    """Scheduler mixin: never stop a baseline trial early. Every trial is compared against the TTA
    evaluation of the finished baseline, so an early-stopped baseline would leave the sweep without one.
    Its results still count as a reference for stopping the others."""

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and TrialPlan.from_ray(trial.config).baseline:
            return TrialScheduler.CONTINUE
        return decision


# Module level, because Tune pickles the scheduler with its configuration.
class KeepBaselinesASHA(_KeepBaselines, ASHAScheduler):
    pass


class KeepBaselinesMedian(_KeepBaselines, MedianStoppingRule):
    pass


class KeepBaselinesWandb(_KeepBaselines, WandbHyperband):
    pass


def make_scheduler(spec: SweepSpec, max_t: int, histories: dict[int, list[float]] | None = None):
    """The spec's scheduler; one report per evaluation (`evals`), so grace_period, max_t and W&B's bands count
    evaluations. `histories` (trial number -> metric values in report order, from the journal) let W&B's
    rule count the trials of earlier sessions, as W&B's controller does."""
    from ray.tune.schedulers import FIFOScheduler, HyperBandScheduler

    s = spec.scheduler
    if s is None:
        return FIFOScheduler()
    metric, mode = metric_mode(spec)
    if s.type == "wandb_hyperband":
        return KeepBaselinesWandb(metric=metric, mode=mode, bands=s.rungs, eta=s.reduction_factor, strict=s.strict,
                                  time_attr="evals", histories=histories)
    if s.type == "asha":
        return KeepBaselinesASHA(time_attr="evals", metric=metric, mode=mode, max_t=max_t,
                                 grace_period=s.grace_period, reduction_factor=s.reduction_factor, brackets=s.brackets)
    if s.type == "hyperband":  # HyperBand pauses and resumes within brackets: it cannot spare a trial
        return HyperBandScheduler(time_attr="evals", metric=metric, mode=mode, max_t=max_t,
                                  reduction_factor=s.reduction_factor)
    return KeepBaselinesMedian(time_attr="evals", metric=metric, mode=mode, grace_period=s.grace_period)
