"""Run or resume a sweep with Ray Tune: the one module that builds Tuners (trainable.py holds the trial).

    run_sweep(RunRequest) -> SweepOutcome
      lock the sweep dir -> kill stale processes of a killed driver -> start/attach Ray
      -> resolve the profile, check resources -> Tuner (fresh) or Tuner.restore (resume)
      -> fit with a live table -> record the outcome in state.json

A graceful stop (Ctrl-C, `sweeper stop`, time budget, too many failures) goes through Ray Tune's own
SIGINT path: Tune saves the experiment state and leaves the running trials resumable. The Searcher and
Callback below are pickled into Ray's experiment state, so they hold no live objects: they reach the
current driver session through the module-level `_SESSION`.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ray import tune
from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.search import Searcher

from sweeper import faults, space
from sweeper.errors import UserError
from sweeper.hooks import SinkFactory, SweepHooks, SweepInfo
from sweeper.session import Session
from sweeper.spec import SweepSpec
from sweeper.study import StudyBroker, baseline_points
from sweeper.sweepdir import SweepDir, descendants, driver_record, kill_recorded, now, read_jsonl
from sweeper.trainable import TrialSetup, run_trial

EXPERIMENT = "tune"
_SESSION: Session | None = None


@dataclass(kw_only=True)
class RunRequest:
    """What `sweeper run` / `sweeper resume` asks for."""

    sweep: SweepDir
    """Where the sweep lives (spec.yaml must already be there)."""
    spec: SweepSpec
    """The spec (its name is the sweep name)."""
    address: str | None = None
    """Ray cluster address (None: $RAY_ADDRESS, else a local Ray started here)."""
    concurrency: int | None = None
    """Trials at once (None: the spec's, else as many as resources allow). Fixed at the first run."""
    hooks: Sequence[SweepHooks] = ()
    """Driver-side lifecycle hooks (see sweeper.hooks)."""
    sink_factories: Sequence[SinkFactory] = ()
    """Per-trial extra sinks (see sweeper.hooks)."""
    live: bool = True
    """Draw the live table on a terminal."""
    console: Any = None
    """rich Console for output (default: stderr)."""


@dataclass(kw_only=True)
class SweepOutcome:
    status: str
    """finished, stopped (resumable) or failed."""
    reason: str | None
    """Why it stopped or failed."""
    counts: dict[str, int] = field(default_factory=dict)
    """Optuna trial states (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    best: dict[str, Any] | None = None
    """The best trial so far (single objective)."""

    @property
    def exit_code(self) -> int:
        """0 when the sweep finished with no failed trial; 1 otherwise."""
        return 0 if self.status == "finished" and not self.counts.get("FAIL") else 1


def run_sweep(req: RunRequest) -> SweepOutcome:
    """Run (or resume) the sweep under its lock; see the module docstring."""
    global _SESSION
    lock = req.sweep.lock()
    ray_owned = False
    try:
        if not (req.address or os.environ.get("RAY_ADDRESS")) and _detect_gpus() == 0:
            _check_device(req.spec, has_gpu=False)  # fail at once, before Ray takes seconds to start
        _clean_stale(req.sweep)
        req.sweep.clear_stop()
        ray_owned = _start_ray(req)
        import ray

        session = _SESSION = Session(req, _prepare(req), free_resources=ray.available_resources)
        tuner = _tuner(req, session)
        session.started()
        try:
            with session.view, _quiet_ray(req.sweep.path / "driver.log"):
                tuner.fit()
        except KeyboardInterrupt:  # a second Ctrl-C skips Tune's own graceful path
            session.stop_reason = session.stop_reason or "interrupted (Ctrl-C twice)"
        return session.finished()
    finally:
        _SESSION = None
        if ray_owned:
            import ray

            ray.shutdown()
        lock.release()


@contextlib.contextmanager
def _quiet_ray(log_file: Path):
    """Ray's own console output off (the live table replaces it); its warnings go to driver.log."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the new output engine prints its banner at any verbosity
    ray_log = logging.getLogger("ray")
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    muted = [(h, h.level) for h in ray_log.handlers]
    for h, _ in muted:
        h.setLevel(logging.CRITICAL)
    ray_log.addHandler(handler)
    try:
        yield
    finally:
        ray_log.removeHandler(handler)
        handler.close()
        for h, level in muted:
            h.setLevel(level)


def _start_ray(req: RunRequest) -> bool:
    """Attach to a cluster or start a local Ray; True if this driver started (and owns) Ray."""
    import ray

    if ray.is_initialized():  # the caller (a test, a notebook) owns this Ray
        return False
    address = req.address or os.environ.get("RAY_ADDRESS")
    quiet = dict(log_to_driver=False, configure_logging=True, logging_level="ERROR")
    if address:
        ray.init(address=address, **quiet)
        req.sweep.update_state(ray={"address": address, "processes": []})
        return True
    ray.init(num_cpus=os.cpu_count(), num_gpus=_detect_gpus(), include_dashboard=False,
             _node_ip_address="127.0.0.1", **quiet)
    # Recorded so that a resume after kill -9 of this driver can end what it left behind.
    req.sweep.update_state(ray={"address": None, "processes": descendants(os.getpid())})
    return True


def _detect_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _clean_stale(sweep: SweepDir) -> None:
    """End the Ray processes and trial workers a killed driver of this sweep left running."""
    state = sweep.read_state()
    records = list((state.get("ray") or {}).get("processes") or [])
    for trial in sorted(sweep.trials.glob("t*")):
        starts = [a for a in read_jsonl(trial / "attempts.jsonl") if a.get("event") == "start"]
        if starts:
            records.append({"pid": starts[-1]["pid"], "create_time": starts[-1].get("create_time", 0)})
    if kill_recorded([r for r in records if r.get("create_time")]):
        sweep.update_state(last_cleanup=now())


def _prepare(req: RunRequest) -> dict[str, Any]:
    """Profile, resources, baselines and counts, checked before any trial starts."""
    import ray

    from trm_core.config import flatten, to_dict

    spec, sweep = req.spec, req.sweep
    gpus = ray.cluster_resources().get("GPU", 0.0)
    preset, announce = space.resolve_profile(spec, has_gpu=gpus > 0)
    base_cfg = _check_device(spec, has_gpu=gpus > 0)
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    max_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    cpu = space.cpu_share(spec, {}, preset)
    if cpu > max_cpu:
        raise UserError(f"cpus: a trial asks for {cpu:g} CPUs but the largest Ray node has {max_cpu:g}")
    total = space.trial_count(spec)
    baselines = baseline_points(spec, flatten(to_dict(base_cfg)))
    from trm_core.data import load_splits

    load_splits(base_cfg.data)  # build the data cache once here, not in every concurrent trial
    state = sweep.read_state()
    sweep.update_state(status="running", reason=None, driver=driver_record(), preset=preset, total=total,
                       spec_hash=spec.spec_hash, sessions=state.get("sessions", 0) + 1)
    max_t = spec.scheduler.max_t if spec.scheduler and spec.scheduler.max_t else \
        math.ceil(base_cfg.steps / base_cfg.eval_every)
    info = SweepInfo(name=sweep.name, sweep_dir=sweep.path, spec=spec.to_dict(), spec_hash=spec.spec_hash,
                     preset=preset, total_trials=total, tracking_uri=spec.tracking_uri)
    from sweeper.baselines import baseline_keys

    return {"preset": preset, "announce": announce, "gpus": gpus, "total": total, "baselines": baselines,
            "baseline_keys": baseline_keys(spec, preset),
            "max_t": max_t, "info": info, "resumed": state.get("sessions", 0) > 0}


def _check_device(spec: SweepSpec, has_gpu: bool):
    """The base TrainConfig; UserError if it demands CUDA where there is none (Ray would otherwise
    leave such trials PENDING forever, or they would fail one by one)."""
    preset, _ = space.resolve_profile(spec, has_gpu=has_gpu)
    cfg = space.trial_config(spec, {}, spec.seeds[0], preset)
    if not has_gpu and cfg.device.startswith("cuda"):
        where = "the Ray cluster" if ray_is_up() else "this machine"
        raise UserError(f"the trials ask for device '{cfg.device}' but {where} has no GPU; "
                        "set device: auto (or cpu), or run where a GPU is available")
    return cfg


def ray_is_up() -> bool:
    import ray

    return ray.is_initialized()


def _trial_resources(config: dict) -> dict[str, float]:
    return {"cpu": config["cpu"], "gpu": config["gpu"]}


def _trial_name(trial) -> str:
    return f"t{trial.config['number']:04d}"


def _trainable(req: RunRequest, prep: dict[str, Any]):
    from trm_core.config import DataConfig
    from trm_core.data import cache_root

    setup = TrialSetup(sweep_name=req.sweep.name, sweep_dir=str(req.sweep.path), spec=req.spec,
                       preset=prep["preset"], cache_dir=str(cache_root(DataConfig()).resolve()),
                       sink_factories=tuple(req.sink_factories))
    return tune.with_resources(tune.with_parameters(run_trial, setup=setup), _trial_resources)


def _tuner(req: RunRequest, session: Session) -> tune.Tuner:
    """Tuner.restore when Ray's experiment state exists, else a fresh Tuner."""
    exp = req.sweep.experiment
    trainable = _trainable(req, session.prep)
    if tune.Tuner.can_restore(str(exp)) and any(exp.glob("experiment_state-*.json")):
        session.view.say(f"resuming sweep '{req.sweep.name}' from {exp}")
        # Errored trials stay errored: a NaN or an OOM would fail again. Unfinished ones resume from
        # their checkpoints.
        return tune.Tuner.restore(str(exp), trainable=trainable, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False)
    if exp.exists():  # Tune state from a driver killed before its first snapshot: the journal has it all
        import shutil

        shutil.rmtree(exp)
    spec, prep = req.spec, session.prep
    broker = StudyBroker(req.sweep, spec, prep["total"], prep["baselines"])
    broker.enqueue_baselines()
    remaining = max(prep["total"] - broker.finished_count(), 1)
    metric, mode = _metric_mode(spec)
    concurrency = req.concurrency or spec.concurrency
    tune_config = tune.TuneConfig(search_alg=SweepSearcher(broker, metric, mode), scheduler=_scheduler(spec, prep),
                                  num_samples=remaining, max_concurrent_trials=concurrency, reuse_actors=True,
                                  trial_name_creator=_trial_name, trial_dirname_creator=_trial_name)
    run_config = tune.RunConfig(
        name=EXPERIMENT, storage_path=str(req.sweep.ray_storage), callbacks=[SweepCallback()], verbose=0,
        failure_config=tune.FailureConfig(max_failures=spec.trial_retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def _metric_mode(spec: SweepSpec):
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
        if decision == TrialScheduler.STOP and trial.config.get("baseline_trial"):
            return TrialScheduler.CONTINUE
        return decision


# Module level, because Tune pickles the scheduler into the experiment state for Tuner.restore.
class KeepBaselinesASHA(_KeepBaselines, ASHAScheduler):
    pass


class KeepBaselinesMedian(_KeepBaselines, MedianStoppingRule):
    pass


def _scheduler(spec: SweepSpec, prep: dict[str, Any]):
    from ray.tune.schedulers import FIFOScheduler, HyperBandScheduler

    s = spec.scheduler
    if s is None:
        return FIFOScheduler()
    metric, mode = _metric_mode(spec)
    # One report per evaluation, counted in `evals`, so grace_period and max_t are in evaluations.
    if s.type == "asha":
        return KeepBaselinesASHA(time_attr="evals", metric=metric, mode=mode, max_t=prep["max_t"],
                             grace_period=s.grace_period, reduction_factor=s.reduction_factor, brackets=s.brackets)
    if s.type == "hyperband":  # HyperBand pauses and resumes within brackets: it cannot spare a trial
        return HyperBandScheduler(time_attr="evals", metric=metric, mode=mode, max_t=prep["max_t"],
                                  reduction_factor=s.reduction_factor)
    return KeepBaselinesMedian(time_attr="evals", metric=metric, mode=mode, grace_period=s.grace_period)


class SweepSearcher(Searcher):
    """Ray's side of the StudyBroker: trial configs out, results in. Optuna lives in sweeper/study.py."""

    def __init__(self, broker: StudyBroker, metric, mode):
        super().__init__(metric=metric, mode=mode)
        self.broker = broker
        self.numbers: dict[str, int] = {}
        """Ray trial id -> Optuna trial number."""

    def suggest(self, trial_id: str) -> dict | None:
        session = _SESSION
        if session is not None and session.stop_reason:
            return None
        if trial_id in self.numbers:  # asked again for the same trial (Tune retries suggest)
            return None
        t = self.broker.next_trial()
        if t is None:
            return Searcher.FINISHED
        self.numbers[trial_id] = t["number"]
        shares = session.shares(t) if session else {"cpu": 1.0, "gpu": 0.0}
        return {**t, **shares, "baseline_trial": session.is_baseline(t) if session else False}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, str) and trial_id in self.numbers and self.metric in result:
            self.broker.report(self.numbers[trial_id], result[self.metric], int(result.get("step", 0)))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        number = self.numbers.get(trial_id)
        if number is None:
            return
        state, reason = _outcome(self.broker.sweep, number, result, error, self.broker.spec)
        if state == "PRUNED" and isinstance(self.metric, str) and self.metric in (result or {}):
            # Tune withholds the result that made the scheduler stop the trial from the searcher;
            # Optuna takes a pruned trial's value from its last intermediate value, so record it.
            self.broker.report(number, result[self.metric], int(result.get("step", 0)))
        state = self.broker.finish(number, state, result, reason)
        if _SESSION is not None:
            _SESSION.ended(trial_id, number, state, reason)
        faults.point("trial_finished", self.broker.sweep.path, number)

    def save(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "wb") as f:
            pickle.dump({"numbers": self.numbers, "owned": sorted(self.broker.owned)}, f)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.numbers = state["numbers"]
        self.broker.owned = set(state["owned"])


def _outcome(sweep: SweepDir, number: int, result: dict | None, error: bool,
             spec: SweepSpec) -> tuple[str, str | None]:
    """COMPLETE (the trainer reached its last step), PRUNED (stopped early) or FAIL, with a reason."""
    from sweeper.sweepdir import read_json

    if error:
        failure = read_json(sweep.trial_dir(number) / "failure.json") or {}
        return "FAIL", failure.get("reason") or "the trial's worker died (see ray/tune logs)"
    if result and result.get("final"):
        return "COMPLETE", None
    evals = (result or {}).get("evals")
    by = spec.scheduler.type if spec.scheduler else "the sweep"
    return "PRUNED", f"stopped by {by} after {evals} eval(s)" if evals else f"stopped by {by} before reporting"


class SweepCallback(tune.Callback):
    """Feeds the live table, the hooks and live.json; polls stop requests. Stateless (see module doc)."""

    def on_step_end(self, iteration, trials, **info):
        if _SESSION is not None:
            _SESSION.tick(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        if _SESSION is not None:
            _SESSION.trial_started(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _SESSION is not None:
            _SESSION.result(trial, result)
