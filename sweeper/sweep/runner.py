"""Run a sweep: the driver's happy path, and the one place a Tuner is built.

    run_sweep(req): lock -> end a killed driver's leftovers -> start/attach Ray -> plan -> Tuner -> fit
                    -> outcome and report (while Ray shuts down)

Every session builds a fresh Tuner: the Optuna journal is the record of what ran, so a resume needs no
pickled Ray state (nothing from the sweep folder is unpickled) — unfinished trials are handed out again
by the study and resume from their own checkpoints in trials/tNNNN. Ray's experiment folder of a session
(sweeps/<name>/ray/) is scratch. A graceful stop goes through sweeper.sweep.session (checkpoint first, then
Tune's SIGUSR1 path); Ctrl-C asks for the same stop, a second Ctrl-C ends at once.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ray import tune

from sweeper.hooks import SinkFactory, SweepHooks, SweepInfo
from sweeper.spec import SweepSpec
from sweeper.sweep import cluster
from sweeper.sweep.plan import SweepPlan, plan_sweep
from sweeper.sweep.session import Session, SweepOutcome
from sweeper.sweep.study import StudyBroker, repair_journal
from sweeper.sweep.sweepdir import SweepDir, driver_record, trial_name


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
    """Trials at once (None: the spec's, else as many as resources allow)."""
    hooks: Sequence[SweepHooks] = ()
    """Driver-side lifecycle hooks (see sweeper.hooks)."""
    sink_factories: Sequence[SinkFactory] = ()
    """Per-trial extra sinks (see sweeper.hooks)."""
    live: bool = True
    """Draw the live table on a terminal."""
    console: Any = None
    """rich Console for output (default: stderr)."""
    warm_start: str | None = None
    """--warm-start: seed the study with this sweep's finished trials (wins over the spec's warm_start)."""
    extensions: Callable[[], tuple[Sequence[SweepHooks], Sequence[SinkFactory]]] | None = None
    """More (hooks, sink_factories), made while Ray starts (MLflow's store takes seconds to open); its
    errors are raised before any trial starts."""


def run_sweep(req: RunRequest) -> SweepOutcome:
    """Run (or resume) the sweep under its lock; see the module docstring."""
    lock = req.sweep.lock()
    owned = False
    try:
        address = cluster.ray_address(req.address)
        if not address:  # fail at once on a device mismatch, before Ray takes seconds to start
            plan_sweep(req.spec, cluster.detect_gpus())
        cluster.clean_stale(req.sweep)
        repair_journal(req.sweep.journal)
        req.sweep.clear_stop()
        extensions = Meanwhile(req.extensions)
        try:
            owned = cluster.start_ray(address, req.sweep)
        finally:
            hooks, factories = extensions.result()
        req = dataclasses.replace(req, hooks=[*req.hooks, *hooks], sink_factories=[*req.sink_factories, *factories])
        plan = plan_sweep(req.spec, *cluster.cluster_facts())
        session = _start_session(req, plan)
        tuner = make_tuner(req, session)
        session.started()
        with session.view, cluster.quiet_ray(req.sweep.path / "driver.log"), _ctrl_c_stops(session):
            try:
                tuner.fit()
            except KeyboardInterrupt:  # the second Ctrl-C
                session.stop_reason = session.stop_reason or "interrupted (Ctrl-C twice)"
        # ray.shutdown mostly sleeps while Ray's processes exit (1.5-2 s): the report is written meanwhile.
        ray_down, owned = Meanwhile(lambda stop=owned: cluster.stop_ray(stop)), False
        try:
            return session.finished()  # the report and the hooks, while Ray shuts down
        finally:
            ray_down.result()
    finally:
        cluster.stop_ray(owned)
        lock.release()


class Meanwhile:
    """Runs `make` (if any) in a thread while the main thread goes on; result() joins it and returns its
    value, ((), ()) without one (no extensions), or raises what it raised in the caller's thread.

    Used twice: the extensions (MLflow's store) are made while the main thread starts Ray, and Ray is shut
    down while the main thread writes the report. Never the other way round: Ray's processes die with the
    thread that started them (PR_SET_PDEATHSIG), so ray.init stays in the main thread. Why the threads are
    safe: ray.init mostly waits for Ray's processes, and the only module it and the store import for the
    first time (click) has no import cycle with either, so they cannot deadlock on import locks; MLflow's
    SQLAlchemy store is made for use from several threads (its server does)."""

    def __init__(self, make: Callable[[], Any] | None):
        self.value: Any = ((), ())
        self.error: BaseException | None = None
        self.thread = None
        if make is not None:
            self.thread = threading.Thread(target=self._run, args=(make,), name="sweeper-meanwhile")
            self.thread.start()

    def _run(self, make) -> None:
        try:
            self.value = make()
        except BaseException as e:  # re-raised in the main thread by result()
            self.error = e

    def result(self) -> Any:
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


def _start_session(req: RunRequest, plan: SweepPlan) -> Session:
    """Record the session in state.json, build the data cache once (not in every concurrent trial), and
    make the Session."""
    import ray

    from trm_core.config import DataConfig, from_dict
    from trm_core.data import load_splits

    load_splits(from_dict(DataConfig, plan.base_config["data"]))
    state = req.sweep.read_state()
    sessions = state.get("sessions", 0)
    req.sweep.update_state(status="running", reason=None, driver=driver_record(), preset=plan.preset,
                           total=plan.total, spec_hash=req.spec.spec_hash, sessions=sessions + 1)
    info = SweepInfo(name=req.sweep.name, sweep_dir=req.sweep.path, spec=req.spec.to_dict(),
                     spec_hash=req.spec.spec_hash, preset=plan.preset, total_trials=plan.total,
                     resumed=sessions > 0, sweep_id=state.get("sweep_id", ""))
    return Session(req, plan, info, free_resources=ray.available_resources)


def make_tuner(req: RunRequest, session: Session):
    """A fresh Tuner over the sweep's study: our searcher, the spec's scheduler, one session's experiment."""
    from sweeper.sweep.searcher import SweepSearcher, make_scheduler
    from sweeper.sweep.trainable import TrialSetup, run_trial, trial_resources
    from trm_core.config import DataConfig
    from trm_core.data import cache_root

    plan, sweep = session.plan, req.sweep
    broker = StudyBroker(sweep, plan.spec, plan.total, list(plan.baselines))
    _warm_start(req, session, broker)
    broker.enqueue_baselines()
    setup = TrialSetup(sweep_name=sweep.name, sweep_dir=str(sweep.path),
                       cache_dir=str(cache_root(DataConfig()).resolve()), sink_factories=tuple(req.sink_factories))
    trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup), trial_resources)
    shutil.rmtree(sweep.ray_storage, ignore_errors=True)  # an earlier session's scratch (see module doc)
    tune_config = tune.TuneConfig(
        search_alg=SweepSearcher(broker, session), scheduler=make_scheduler(plan.spec, plan.max_t, broker.histories()),
        num_samples=max(plan.total - broker.finished_count(), 1),
        max_concurrent_trials=req.concurrency or plan.spec.concurrency, reuse_actors=True,
        trial_name_creator=_name, trial_dirname_creator=_name)
    run_config = tune.RunConfig(name="tune", storage_path=str(sweep.ray_storage), callbacks=[SweepCallback(session)],
                                verbose=0, failure_config=tune.FailureConfig(max_failures=plan.spec.trial_retries),
                                checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def _warm_start(req: RunRequest, session: Session, broker: StudyBroker) -> None:
    """Seed the study with another sweep's finished trials (once), and say so; see sweeper.sweep.warm_start."""
    from sweeper.sweep.study import config_of, is_foreign
    from sweeper.sweep.warm_start import seed_study

    ws = req.spec.warm_start
    name, skip = (req.warm_start, False) if req.warm_start else (ws.sweep, ws.skip_existing) if ws else (None, False)
    if name is None:
        return
    added, left = seed_study(broker.study, req.spec, SweepDir.at(name, req.sweep.root))
    if added or left:
        session.view.say(f"warm start: {added} finished trial(s) of sweep '{name}' seed the study"
                         + (f" ({left} outside this sweep's ranges left out)" if left else ""))
    if skip:
        broker.skip = frozenset(config_of(t) for t in broker.study.get_trials(deepcopy=False) if is_foreign(t))


def _name(trial) -> str:
    return trial_name(trial.config["number"])


class SweepCallback(tune.Callback):
    """Feeds the session (live table, hooks, live.json, stop requests). Holds the session, never pickles it."""

    def __init__(self, session: Session):
        self.session = session

    def __getstate__(self) -> dict:
        return {"session": None}

    def on_step_end(self, iteration, trials, **info):
        self.session.tick(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.session.trial_started(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.session.result(trial, result)


class _ctrl_c_stops:
    """Within the block, the first Ctrl-C asks the session for a graceful stop (trials checkpoint first);
    the second raises KeyboardInterrupt. Tune's own SIGINT handler is switched off for it."""

    def __init__(self, session: Session):
        self.session, self.presses = session, 0

    def __enter__(self):
        self.old_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        try:
            self.old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (a notebook, a test harness): keep Tune's handling
            self.old = None
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER")
        return self

    def _handle(self, signum, frame):
        self.presses += 1
        if self.presses > 1:
            raise KeyboardInterrupt
        self.session.stop("interrupted (Ctrl-C); press Ctrl-C again to end without checkpointing")

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        if self.old_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self.old_env
        return False
