"""The function trainable: one Ray Tune trial = one `trm_core.train` run in its own trial folder, started
from the TrialPlan the driver resolved (the worker builds no config from the spec), then the end-of-trial
evaluation (sweeper.results.final_eval), then the final report to Ray.

The trial folder is keyed by the Optuna trial number (trials/t0007), not by Ray's trial id, so a trial the
driver hands out again after a crash (or in a later session) finds its checkpoints there and resumes.
Ray's checkpoint mechanism is not used: the trial folder is the one copy Ray would duplicate.

Reports go to Ray only at evaluations (train/* of the latest log merged in), so one Tune iteration is one
evaluation and the scheduler's grace_period/max_t count evaluations (`evals`). A stop request (the
sweep's stop-request file) makes the trainer checkpoint its current step; the trial then records
'stopped' and waits for the driver to end the Tune run, so it stays resumable rather than finished.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper import faults
from sweeper.errors import DISK_ERRNOS
from sweeper.hooks import CompositeSink, SinkFactory, TrialContext
from sweeper.results import final_eval
from sweeper.sweep.trial import TrialPlan
from sweeper.sweep.trial_log import TrialLog, failure_reason
from sweeper.util.files import append_jsonl, read_jsonl, write_json
from sweeper.util.names import trial_name

LOCK_WAIT_S = 60.0
"""How long a trial waits for its folder lock (held by a stale worker of a killed driver)."""
STOP_WAIT_S = 300.0
"""How long a trial that asked for (or obeyed) a stop waits for the driver to end it before it gives up."""


@dataclass(frozen=True, kw_only=True)
class TrialSetup:
    """What every trial of one sweep shares; handed to the trainable with tune.with_parameters."""

    sweep_name: str
    """Sweep name."""
    sweep_dir: str
    """Absolute sweep folder (trials run with another working directory)."""
    cache_dir: str
    """Absolute data cache folder, shared by all trials."""
    sink_factories: tuple[SinkFactory, ...] = ()
    """Extra sinks per trial (MLflow, ...); see sweeper.hooks."""


class RayReportSink:
    """Reports each scheduled evaluation to Ray Tune; the final one is sent by `finish` after the final
    evaluation and the other sinks, because Ray may stop the worker as soon as it sees it."""

    def __init__(self, work: Path, cfg, report_fn, sweep_dir: Path, number: int):
        self.work, self.cfg, self.sweep_dir, self.number = work, cfg, sweep_dir, number
        self._report = report_fn
        self.train: dict[str, float] = {}
        self.final: dict | None = None

    def log(self, metrics, step):
        self.train = dict(metrics)
        faults.point("train_log", self.sweep_dir, self.number)

    def on_eval(self, metrics, step, checkpoint_dir):
        scheduled = step % self.cfg.eval_every == 0 or step >= self.cfg.steps
        row = {**self.train, **metrics, "step": step, "evals": math.ceil(step / self.cfg.eval_every),
               "final": step >= self.cfg.steps}
        append_jsonl(self.work / "evals.jsonl", {**row, "time": time.time(), **({} if scheduled else {"stop": True})})
        if row["final"]:
            self.final = row
        elif scheduled:  # a stop's checkpoint is not a rung the scheduler should judge
            self.send(row)

    def close(self):
        pass

    def send(self, row: dict) -> None:
        self._report({k: v for k, v in row.items() if isinstance(v, (int, float, bool))})

    def finish(self) -> None:
        """Send the final result; on a resume that found the run already finished, resend the last
        evaluation from evals.jsonl so Ray and Optuna still see the trial's end."""
        if self.final is None:
            last = [r for r in read_jsonl(self.work / "evals.jsonl") if r.get("final")]
            self.final = last[-1] if last else None
        if self.final is not None:
            self.send(self.final)


def trial_resources(config: dict[str, Any]) -> dict[str, float]:
    """What Ray reserves for a trial: the shares its plan carries. (Defined here, not in the runner: Ray ships
    this function to the worker with the trainable, and the worker must not import the driver's modules.)"""
    return {"cpu": config["cpu"], "gpu": config["gpu"]}


def run_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """The Ray Tune function trainable (bind `setup` with tune.with_parameters)."""
    from filelock import FileLock, Timeout

    plan = TrialPlan.from_ray(config)
    work = Path(setup.sweep_dir) / "trials" / trial_name(plan.number)
    work.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(str(work / ".lock"), timeout=LOCK_WAIT_S).acquire()
    except Timeout:
        raise RuntimeError(f"trial {plan.number}: {work} is still locked after {LOCK_WAIT_S:.0f}s by another "
                           "worker (a stale process of a killed driver?)") from None
    with lock:
        _run_locked(plan, setup, work)


def _run_locked(plan: TrialPlan, setup: TrialSetup, work: Path) -> None:
    import ray
    import torch
    from ray import tune

    from trm_core.config import TrainConfig, from_dict, to_dict
    from trm_core.trainer import train

    sweep_dir = Path(setup.sweep_dir)
    cfg = worker_config(from_dict(TrainConfig, plan.config), plan, setup.cache_dir)
    torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda") and plan.gpu < 1:
        # Ray's fractional GPUs are bookkeeping only; this makes the allocator enforce the share.
        torch.cuda.set_per_process_memory_fraction(plan.gpu)
    ckpt_root = work / "checkpoints"
    trial_id = tune.get_context().get_trial_id()
    log = TrialLog(work, plan.number, ray_trial_id=trial_id, node=ray.get_runtime_context().get_node_id(),
                   resumed_from_step=_newest_step(ckpt_root, work, plan))
    write_json(work / "trial.json", {"plan": dataclasses.asdict(plan), "ray_trial_id": trial_id,
                                     "config": to_dict(cfg), "device": cfg.device, "threads": cfg.threads})
    ctx = TrialContext(sweep_name=setup.sweep_name, sweep_dir=sweep_dir, number=plan.number, trial_id=trial_id,
                       seed=plan.seed, params=dict(plan.values), config=to_dict(cfg), work_dir=work,
                       resumed=log.attempt["resumed_from_step"] > 0, label=plan.label, config_key=plan.config_key)
    log.start()
    faults.install_checkpoint_hook(setup.sweep_dir, plan.number)
    faults.point("trial_start", setup.sweep_dir, plan.number)
    ray_sink = RayReportSink(work, cfg, tune.report, sweep_dir, plan.number)
    # Ray last: its report can block until the driver decides, and may end this process there.
    sink = CompositeSink([*(f(ctx) for f in setup.sink_factories), ray_sink])
    stop_file = sweep_dir / "stop-request"
    try:
        try:
            final = train(cfg, sink.deferred(), checkpoint_dir=ckpt_root, should_stop=stop_file.exists)
            if final.get("stopped"):
                log.record("stopped")
                _wait_to_be_ended(log, "stopped on request; the sweep resumes it from its newest checkpoint")
            results = final_eval.ensure(work, cfg, plan.baseline)
            _keep_final_checkpoint(ckpt_root)
            sink.log(final_eval.final_metrics(results), cfg.steps)
        finally:
            sink.close()
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            log.fail(failure_reason(e, plan.gpu))
            raise
        _disk_full(setup, log, e)
    except SystemExit:  # Tune ends a trial it stops (scheduler, graceful stop) with sys.exit in report()
        log.end("stopped")
        raise
    except BaseException as e:
        log.fail(failure_reason(e, plan.gpu))
        raise
    # An attempt that found the run already trained to its last step (its driver died before recording the
    # end) only reports the result again; its record says so, so a trial never looks trained twice.
    log.end("complete" if log.attempt["resumed_from_step"] < cfg.steps else "already_complete")
    ray_sink.finish()


def worker_config(cfg, plan: TrialPlan, cache_dir: str):
    """The worker's decisions on top of the plan: device (a logical Ray GPU without CUDA runs on the CPU),
    torch threads (the CPUs Ray reserved) and the shared data cache."""
    import torch

    use_cuda = plan.gpu > 0 and torch.cuda.is_available()
    device = cfg.device if cfg.device != "auto" else ("cuda" if use_cuda else "cpu")
    data = dataclasses.replace(cfg.data, cache_dir=cfg.data.cache_dir or cache_dir)
    return dataclasses.replace(cfg, threads=max(1, int(plan.cpu)), device=device, data=data)


def _newest_step(ckpt_root: Path, work: Path, plan: TrialPlan) -> int:
    """The step the run resumes from (0 = a fresh start); corrupt newer checkpoints are recorded."""
    from trm_core import checkpoint

    step = 0
    for path in reversed(checkpoint.list_checkpoints(ckpt_root)):
        why = checkpoint.verify(path)
        if why is None:
            step = int(path.name.removeprefix(checkpoint.PREFIX))
            break
        append_jsonl(work / "attempts.jsonl", {"event": "checkpoint_corrupt", "checkpoint": path.name,
                                               "reason": why, "time": time.time()})
    if step == 0 and read_jsonl(work / "evals.jsonl"):  # evaluated before, yet nothing to resume from
        append_jsonl(work / "attempts.jsonl", {"event": "warning", "time": time.time(), "reason": (
            "earlier attempts evaluated this trial but no intact checkpoint is left; it restarts from step 0")})
    return step


def _keep_final_checkpoint(ckpt_root: Path) -> None:
    """A trial that trained and evaluated to the end keeps only its final checkpoint: the older ones were the
    fallback for a torn newest one, which the final evaluation has now read."""
    import shutil

    from trm_core import checkpoint

    for old in checkpoint.list_checkpoints(ckpt_root)[:-1]:
        shutil.rmtree(old, ignore_errors=True)


def _disk_full(setup: TrialSetup, log: TrialLog, error: OSError) -> None:
    """A full or read-only disk is not the trial's fault: failing it would lose it for good (failed trials are
    not rerun). Ask the driver for a graceful stop instead and wait in place (the trial stays RUNNING, so
    it resumes from its last complete checkpoint). The stop request carries the reason where there is room
    for it, else it is an empty file (the driver reads that as 'disk full'); where not even that can be
    made (a read-only disk), the trial fails after all."""
    import os

    from sweeper.sweep.sweepdir import SweepDir

    where = f" ({error.filename})" if error.filename else ""
    reason = (f"trial {log.work.name}: {os.strerror(error.errno).lower()}{where}; free space (or make the sweep "
              f"folder writable), then `sweeper resume {setup.sweep_name}`")
    sweep = SweepDir(Path(setup.sweep_dir).parent, setup.sweep_name)
    try:
        if not sweep.stop_file.exists():
            try:
                sweep.request_stop(reason)
            except OSError:
                sweep.stop_file.touch()  # no data to write: works on a full disk (not on a read-only one)
    except OSError:
        log.fail(reason)
        raise error from None
    try:
        log.end("disk_error", reason=reason)
    except OSError:  # no room even for this record: the driver does not wait for it (see Session.stop)
        pass
    try:
        _wait_to_be_ended(log, reason)
    except RuntimeError:
        log.fail(reason)
        raise


def _wait_to_be_ended(log: TrialLog, why: str) -> None:
    """Wait for the driver's stop to end this worker (see the module docstring)."""
    log.say(why)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.5)
    raise RuntimeError(f"trial {log.number}: {why}, but the driver did not end the trial within {STOP_WAIT_S:.0f}s")
