"""Helpers of the MLflow tracking tests: a small spec, fake trials driven through the real hooks and sink,
and synthetic final evaluations (so only the test that needs it pays for real training)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from sweeper import final_eval, space
from sweeper.hooks import SweepInfo, TrialContext, TrialInfo
from sweeper.spec import build_spec
from trm_core.config import to_dict

RAY_COUNTERS = {"training_iteration": 3, "time_this_iter_s": 0.1, "timestamp": 1700000000, "done": False}
"""What Ray adds to every result; none of it may reach MLflow."""


def make_spec(name: str = "trk", **changes):
    data = {"name": name, "method": "grid", "metric": {"name": "eval/cell_acc", "goal": "maximize"},
            "profile": "smoke", "parameters": {"optim.adam_lr": {"values": [0.001, 0.003]}}, "seeds": [0],
            "baseline": [], "concurrency": 1}
    data.update(changes)
    return build_spec(data)


def sweep_info(spec, sweep_dir: Path, total: int = 3) -> SweepInfo:
    return SweepInfo(name=spec.name, sweep_dir=sweep_dir, spec=spec.to_dict(), spec_hash=spec.spec_hash,
                     preset="smoke", total_trials=total)


def trial(spec, sweep_dir: Path, number: int, params: dict[str, Any], seed: int = 0):
    """(TrialInfo, TrialContext, TrainConfig) of one trial, as the runner would build them."""
    cfg = space.trial_config(spec, params, seed, "smoke")
    cfg = dataclasses.replace(cfg, device="cpu", threads=1)
    work = sweep_dir / "trials" / f"t{number:04d}"
    work.mkdir(parents=True, exist_ok=True)
    info = TrialInfo(number=number, trial_id=f"ray_{number}", seed=seed, params=params, work_dir=work)
    ctx = TrialContext(sweep_name=spec.name, sweep_dir=sweep_dir, number=number, trial_id=f"ray_{number}",
                       seed=seed, params=params, config=to_dict(cfg), work_dir=work, resumed=False)
    return info, ctx, cfg


def write_fake_final(work: Path, correct: dict[str, np.ndarray], cost: dict[str, float], steps: int,
                     ids: np.ndarray | None = None) -> None:
    """A final evaluation's files with given per-puzzle correctness and f-calls per puzzle (default ids 0..N-1)."""
    out = final_eval.final_dir(work)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    n = len(next(iter(correct.values())))
    arrays = {"ids": np.arange(n, dtype=np.uint64) if ids is None else ids, **{f"correct/{m}": c for m, c in correct.items()},
              **{f"cost/{m}": np.float64(c) for m, c in cost.items()}}
    np.savez(out / final_eval.PER_PUZZLE, **arrays)
    rows = [{"method": m, "puzzle_acc": float(c.mean()), "cell_acc": float(0.5 + c.mean() / 2),
             "relative_cost": cost[m] / 3.0, "efficiency": float(c.mean()) / (cost[m] / 3.0),
             "f_calls_per_puzzle": cost[m], "chain_steps_per_puzzle": cost[m]} for m, c in correct.items()]
    (out / final_eval.RESULTS).write_text(json.dumps({"step": steps, "rows": rows, "tau_curve": [],
                                                      "halting_histogram": [1, 2, 3], "meta": {}}))


def fake_trial(hooks, factory, spec, sweep_dir: Path, number: int, params: dict, seed: int = 0,
               correct: dict[str, np.ndarray] | None = None, state: str = "COMPLETE", reason: str | None = None,
               ids: np.ndarray | None = None) -> str:
    """Drive one trial through trial_started, the sink (with Ray counters mixed in) and trial_ended."""
    from sweeper.tracking_sink import publish_final

    info, ctx, cfg = trial(spec, sweep_dir, number, params, seed)
    hooks.trial_started(info)
    sink = factory(ctx)
    sink.log({"train/loss": 2.0, "perf/chain_steps_per_s": 10.0, **RAY_COUNTERS}, 3)
    sink.on_eval({"eval/puzzle_acc": 0.0, "eval/cell_acc": 0.4, "cost/chain_steps": 48.0, **RAY_COUNTERS}, 6, None)
    if state == "COMPLETE":
        cost = {"full": 3.0, "halt": 2.0, "halt_first": 2.0, "tta": 24.0, "tta_vote": 24.0}
        write_fake_final(ctx.work_dir, correct, {m: cost[m] for m in correct}, cfg.steps, ids)
        publish_final(sink.tracker, sink.run_id, ctx.work_dir, cfg.steps)
    sink.close()
    hooks.trial_ended(info, state, reason)
    return sink.run_id


def puzzles(p: float, n: int = 200, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < p
