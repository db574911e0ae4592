"""The function trainable: one Ray Tune trial = one `trm_core.train` run in its own trial directory.

The trial directory is keyed by the Optuna trial number (trials/t0007), not by Ray's trial id, so a
trial that Ray lost in a driver crash and the sweep re-attaches finds its checkpoints again. Ray's own
checkpoint copy (tune.get_checkpoint) is used when it is newer than the local one (another node).

Reports go to Ray only at evaluations (train/* of the latest log are merged in), so one Tune iteration
is one evaluation and the scheduler's grace_period/max_t count evaluations (`evals`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper import faults
from sweeper.errors import DISK_ERRNOS
from sweeper.hooks import CompositeSink, SinkFactory, TrialContext
from sweeper.spec import SweepSpec
from sweeper.sweepdir import append_jsonl, read_jsonl, write_json

LOCK_WAIT_S = 60.0
"""How long a trial waits for its directory lock (held by a stale worker of a killed driver)."""
DISK_STOP_WAIT_S = 120.0
"""How long a trial that hit a disk error waits for the driver to stop the sweep before it fails."""


@dataclass(frozen=True, kw_only=True)
class TrialSetup:
    """What every trial of one sweep shares; handed to the trainable with tune.with_parameters."""

    sweep_name: str
    """Sweep name."""
    sweep_dir: str
    """Absolute sweep directory (trials run with another working directory)."""
    spec: SweepSpec
    """The sweep spec."""
    preset: str
    """Trainer preset after profile resolution."""
    cache_dir: str
    """Absolute data cache directory, shared by all trials."""
    sink_factories: tuple[SinkFactory, ...] = ()
    """Extra sinks per trial (MLflow, ...); see sweeper.hooks."""


class RayReportSink:
    """Reports each evaluation to Ray Tune with its checkpoint; the final one is held back until the
    other sinks are closed, because Ray may stop the worker as soon as it sees the final result."""

    def __init__(self, work_dir: Path, cfg, report_fn, checkpoint_cls, sweep_dir: Path | None = None,
                 number: int | None = None):
        self.work_dir, self.cfg = work_dir, cfg
        self.sweep_dir, self.number = sweep_dir, number
        self._report, self._checkpoint = report_fn, checkpoint_cls
        self.train: dict[str, float] = {}
        self.pending: tuple[dict, Path | None] | None = None
        self.reported = 0

    def log(self, metrics, step):
        self.train = dict(metrics)
        if self.sweep_dir is not None:
            faults.point("train_log", self.sweep_dir, self.number)

    def on_eval(self, metrics, step, checkpoint_dir):
        row = {**self.train, **metrics, "step": step, "evals": math.ceil(step / self.cfg.eval_every),
               "final": step >= self.cfg.steps}
        append_jsonl(self.work_dir / "evals.jsonl", {**row, "time": time.time()})
        if row["final"]:
            self.pending = (row, checkpoint_dir)
        else:
            self.send(row, checkpoint_dir)

    def close(self):
        pass

    def send(self, row: dict, checkpoint_dir: Path | None) -> None:
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = self._checkpoint.from_directory(str(checkpoint_dir))
            ckpt.set_metadata({"step": int(row["step"])})
        self.reported += 1
        self._report({k: v for k, v in row.items() if isinstance(v, (int, float, bool))}, checkpoint=ckpt)

    def finish(self, ckpt_root: Path) -> None:
        """Send the held-back final result; on a resume that found the run already finished, resend
        the last evaluation from evals.jsonl so Ray and Optuna still see the trial's end."""
        from trm_core import checkpoint

        if self.pending is None and self.reported == 0:
            last = [r for r in read_jsonl(self.work_dir / "evals.jsonl") if r.get("final")]
            if last:
                newest = checkpoint.list_checkpoints(ckpt_root)
                self.pending = (last[-1], newest[-1] if newest else None)
        if self.pending is not None:
            self.send(*self.pending)
            self.pending = None


def run_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """The Ray Tune function trainable (bind `setup` with tune.with_parameters)."""
    from filelock import FileLock, Timeout
    from ray import tune

    sweep_dir = Path(setup.sweep_dir)
    number = int(config["number"])
    work = sweep_dir / "trials" / f"t{number:04d}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(str(work / ".lock"), timeout=LOCK_WAIT_S).acquire()
    except Timeout:
        raise RuntimeError(f"trial {number}: {work} is still locked after {LOCK_WAIT_S:.0f}s by another "
                           "worker (a stale process of a killed driver?)") from None
    with lock:
        _run_locked(config, setup, work, tune)


def _run_locked(config: dict[str, Any], setup: TrialSetup, work: Path, tune) -> None:
    import torch

    from sweeper import space
    from trm_core.config import to_dict
    from trm_core.trainer import TrainingDiverged, train

    spec, number, seed = setup.spec, int(config["number"]), int(config["seed"])
    params = {**config["params"], **config.get("overrides", {})}
    cfg = space.trial_config(spec, params, seed, setup.preset)
    gpu, threads = float(config["gpu"]), max(1, int(config["cpu"]))  # the shares Ray reserved
    use_cuda = gpu > 0 and torch.cuda.is_available()  # a logical Ray GPU without CUDA: run on CPU
    device = cfg.device if cfg.device != "auto" else ("cuda" if use_cuda else "cpu")
    data = dataclasses.replace(cfg.data, cache_dir=cfg.data.cache_dir or setup.cache_dir)
    cfg = dataclasses.replace(cfg, threads=threads, device=device, data=data)
    torch.set_num_threads(threads)
    if use_cuda and gpu < 1:
        # Ray's fractional GPUs are bookkeeping only; this makes the allocator enforce the share.
        torch.cuda.set_per_process_memory_fraction(gpu)

    ckpt_root = work / "checkpoints"
    corrupt = _corrupt_newest(ckpt_root)
    resumed_from = _adopt_ray_checkpoint(tune.get_checkpoint(), ckpt_root)
    trial_id = tune.get_context().get_trial_id()
    write_json(work / "trial.json", {"number": number, "seed": seed, "params": config["params"],
                                     "overrides": config.get("overrides", {}), "ray_trial_id": trial_id,
                                     "config": to_dict(cfg), "gpu": gpu, "threads": threads})
    ctx = TrialContext(sweep_name=setup.sweep_name, sweep_dir=Path(setup.sweep_dir), number=number,
                       trial_id=trial_id, seed=seed, params=dict(config["params"]), config=to_dict(cfg),
                       work_dir=work, resumed=resumed_from > 0, tracking_uri=spec.tracking_uri)
    attempt = {"pid": os.getpid(), "host": socket.gethostname(), "ray_trial_id": trial_id, "node": _node_id(),
               "resumed_from_step": resumed_from, "start": time.time()}
    append_jsonl(work / "attempts.jsonl", {"event": "start", **attempt, **_create_time()})
    for name, why in corrupt:  # the trainer skips these too; say so where users look for a trial's story
        note = f"checkpoint {name} is corrupt ({why}); resuming from step {resumed_from}"
        append_jsonl(work / "attempts.jsonl", {"event": "checkpoint_corrupt", "checkpoint": name, "reason": why,
                                               "resumed_from_step": resumed_from, "time": time.time()})
        print(f"sweeper: trial {number}: {note}", file=sys.stderr, flush=True)
    (work / "failure.json").unlink(missing_ok=True)
    faults.install_checkpoint_hook(setup.sweep_dir, number)
    faults.point("trial_start", setup.sweep_dir, number)
    ray_sink = RayReportSink(work, cfg, tune.report, tune.Checkpoint, Path(setup.sweep_dir), number)
    # Ray last: its report can block until the driver decides, and may end this process there.
    sink = CompositeSink([*(f(ctx) for f in setup.sink_factories), ray_sink])
    t0 = time.perf_counter()
    try:
        train(cfg, sink, checkpoint_dir=ckpt_root)
    except TrainingDiverged as e:
        _fail(work, attempt, t0, f"diverged: {e}")
        raise
    except torch.OutOfMemoryError:
        total = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 0
        _fail(work, attempt, t0, f"CUDA out of memory with a {gpu:g} GPU share ({gpu * total:.1f} of "
                                 f"{total:.1f} GiB); raise resources.gpu or lower batch_size")
        raise
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            _fail(work, attempt, t0, f"{type(e).__name__}: {e}")
            raise
        _disk_full(setup, work, attempt, t0, e)
    except SystemExit:  # Tune ends a trial it stops (scheduler, graceful stop) with sys.exit in report()
        append_jsonl(work / "attempts.jsonl", {"event": "end", **attempt, "outcome": "stopped", "end": time.time(),
                                               "train_seconds": time.perf_counter() - t0})
        raise
    except Exception as e:
        _fail(work, attempt, t0, f"{type(e).__name__}: {e}")
        raise
    append_jsonl(work / "attempts.jsonl", {"event": "end", **attempt, "outcome": "complete", "end": time.time(),
                                           "train_seconds": time.perf_counter() - t0})
    ray_sink.finish(ckpt_root)


def _fail(work: Path, attempt: dict, t0: float, reason: str) -> None:
    try:
        write_json(work / "failure.json", {"reason": reason, "time": time.time()})
        append_jsonl(work / "attempts.jsonl", {"event": "end", **attempt, "outcome": "failed", "reason": reason,
                                               "end": time.time(), "train_seconds": time.perf_counter() - t0})
    except OSError:  # a full or read-only disk: the reason still reaches Ray's error log with the exception
        pass


def _disk_full(setup: TrialSetup, work: Path, attempt: dict, t0: float, error: OSError) -> None:
    """A full or read-only disk is not the trial's fault: failing it would lose it for good (failed trials
    are not rerun). Ask the driver for a graceful stop instead, and wait in place (the trial stays
    RUNNING, so the stop keeps it resumable from its last complete checkpoint). If the request cannot be
    written or nobody acts on it, fail after all."""
    from sweeper.sweepdir import SweepDir

    where = f" ({error.filename})" if error.filename else ""
    reason = (f"trial {work.name}: {os.strerror(error.errno).lower()}{where}; free space (or make the sweep "
              f"folder writable), then `sweeper resume {setup.sweep_name}`")
    try:
        append_jsonl(work / "attempts.jsonl", {"event": "end", **attempt, "outcome": "disk_error", "reason": reason,
                                               "end": time.time(), "train_seconds": time.perf_counter() - t0})
        SweepDir(Path(setup.sweep_dir).parent, setup.sweep_name).request_stop(reason)
    except OSError:
        _fail(work, attempt, t0, reason)
        raise error from None
    print(f"sweeper: {reason}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + DISK_STOP_WAIT_S
    while time.monotonic() < deadline:  # the driver's stop ends this worker
        time.sleep(0.5)
    _fail(work, attempt, t0, reason)
    raise error


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id()


def _create_time() -> dict[str, float]:
    from sweeper.sweepdir import process_record

    rec = process_record(os.getpid()) or {}
    return {"create_time": rec.get("create_time", 0.0)}


def _corrupt_newest(ckpt_root: Path) -> list[tuple[str, str]]:
    """(name, reason) of the local checkpoints newer than the newest intact one (the trainer skips them)."""
    from trm_core import checkpoint

    out = []
    for path in reversed(checkpoint.list_checkpoints(ckpt_root)):
        reason = checkpoint.verify(path)
        if reason is None:
            break
        out.append((path.name, reason))
    return out


def _adopt_ray_checkpoint(ray_ckpt, ckpt_root: Path) -> int:
    """Copy Ray's checkpoint into the trial dir if it is newer than the local one and intact; return
    the step the run resumes from (0 = a fresh start)."""
    from trm_core import checkpoint

    local = [p for p in checkpoint.list_checkpoints(ckpt_root) if checkpoint.verify(p) is None]
    local_step = int(local[-1].name.removeprefix(checkpoint.PREFIX)) if local else 0
    if ray_ckpt is None:
        return local_step
    step = int(ray_ckpt.get_metadata().get("step", 0))
    if step > local_step:
        with ray_ckpt.as_directory() as src:
            if checkpoint.verify(Path(src)) is not None:  # never replace a good local one with a bad copy
                return local_step
            target = ckpt_root / f"{checkpoint.PREFIX}{step:08d}"
            shutil.rmtree(target, ignore_errors=True)  # a corrupt local folder of the same step
            shutil.copytree(src, target)
        return step
    return local_step
