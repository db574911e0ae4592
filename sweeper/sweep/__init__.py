"""The orchestration: a validated SweepSpec -> a SweepPlan -> trials resolved once (TrialPlan) -> Ray Tune
with our Optuna searcher -> trials in trials/tNNNN -> the outcome.

    plan.py      SweepPlan: preset, counts, baselines, shares, checked before anything starts
    resolve.py   spec + sampled params -> TrainConfig and shares (the only TrainConfig build per trial)
    trial.py     TrialPlan: the resolved trial that Ray carries to the worker
    space.py     the Optuna space and sampler      study.py     the Optuna journal and its broker
    searcher.py  Ray <-> Optuna, schedulers         cluster.py   Ray start/attach, stale processes
    runner.py    run_sweep and the Tuner           session.py   one driver session, stops, the outcome
    bookkeeping.py  what follows a trial's start and end (comparisons, hooks), in one ordered thread
    trainable.py one trial in its worker           trial_log.py a trial's attempts and failures
    sweepdir.py  the sweep folder and its lock     status.py    `sweeper status` / `prune`
    live.py      the live table

May import sweeper.spec, sweeper.results, sweeper.hooks, sweeper.util and trm_core; never sweeper.tracking
or sweeper.commands. The worker side (trainable, trial, trial_log) imports nothing from sweeper.spec, so
this face is lazy: importing sweeper.sweep.trainable does not pull in the spec layer.
"""
from __future__ import annotations

_FACE = {"run_sweep": "runner", "RunRequest": "runner", "SweepOutcome": "session", "SweepPlan": "plan",
         "plan_sweep": "plan", "TrialPlan": "trial", "resolve_trial": "resolve", "SweepDir": "sweepdir"}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name not in _FACE:
        raise AttributeError(f"module 'sweeper.sweep' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"sweeper.sweep.{_FACE[name]}"), name)
