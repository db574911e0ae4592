"""Tracking tests without Ray: a small spec, trials resolved like the driver resolves them, driven through the
real MLflow hooks and sink, with synthetic final evaluations (only the test that needs it trains for real).
`Driver` does what the session does around the hooks: trial.json, comparisons, the report folder."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.hooks import SweepInfo, TrialContext, TrialInfo
from sweeper.results import final_eval, pairing, records, report
from sweeper.spec import build_spec
from sweeper.sweep.plan import plan_sweep
from sweeper.sweep.resolve import resolve_trial
from sweeper.tracking import hooks_for
from sweeper.util.files import write_json
from trm_core.config import TrainConfig, from_dict, to_dict

RAY_COUNTERS = {"training_iteration": 3, "time_this_iter_s": 0.1, "timestamp": 1700000000, "done": False}
"""What Ray adds to every result; none of it may reach MLflow."""
COST = {"full": 3.0, "halt": 2.0, "halt_first": 2.0, "tta": 24.0, "tta_vote": 24.0}


def make_spec(name: str = "trk", **changes):
    data = {"name": name, "method": "grid", "metric": {"name": "eval/cell_acc", "goal": "maximize"},
            "profile": "smoke", "parameters": {"optim.adam_lr": {"values": [0.001, 0.003]}}, "seeds": [0],
            "baseline": [], "concurrency": 1}
    data.update(changes)
    return build_spec(data)


def puzzles(p: float, n: int = 200, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < p


class Driver:
    """The MLflow hooks and trial sink factory of a sweep folder, driven the way the session drives them."""

    def __init__(self, spec, sweep_dir: Path, sweep_id: str = "test-sweep", total: int = 3):
        self.spec, self.sweep_dir, self.sweep_id = spec, Path(sweep_dir), sweep_id
        self.plan = plan_sweep(spec, gpus=0)
        (self.hooks,), (self.factory,) = hooks_for(spec, self.sweep_dir, sweep_id)
        self.hooks.strict = True
        self.info = SweepInfo(name=spec.name, sweep_dir=self.sweep_dir, spec=spec.to_dict(), spec_hash=spec.spec_hash,
                              preset="smoke", total_trials=total, sweep_id=sweep_id)

    def start(self, resumed: bool = False) -> None:
        pairing.update(self.sweep_dir)
        self.hooks.sweep_started(dataclasses.replace(self.info, resumed=resumed), resumed)

    def trial(self, number: int, values: dict[str, Any], seed: int = 0):
        """(TrialInfo, TrialContext, TrainConfig) of one trial, resolved as the searcher resolves it; its
        trial.json written as the trainable writes it."""
        plan = resolve_trial(self.spec, {"number": number, "params": {}, "overrides": values, "seed": seed},
                             self.plan.preset, False, self.plan.baseline_keys)
        cfg = dataclasses.replace(from_dict(TrainConfig, plan.config), device="cpu", threads=1)
        work = self.sweep_dir / "trials" / f"t{number:04d}"
        work.mkdir(parents=True, exist_ok=True)
        write_json(work / "trial.json", {"plan": dataclasses.asdict(plan), "config": to_dict(cfg)})
        info = TrialInfo(number=number, trial_id=f"ray_{number}", seed=seed, params=values, work_dir=work)
        ctx = TrialContext(sweep_name=self.spec.name, sweep_dir=self.sweep_dir, number=number, trial_id=f"ray_{number}",
                           seed=seed, params=values, config=to_dict(cfg), work_dir=work, resumed=False,
                           label=plan.label, config_key=plan.config_key)
        return info, ctx, cfg

    def ended(self, info: TrialInfo, state: str, reason: str | None = None) -> None:
        pairing.update(self.sweep_dir)
        self.hooks.trial_ended(info, state, reason)

    def end(self, status: str = "finished", reason: str | None = None) -> None:
        pairing.update(self.sweep_dir)
        report.write_report(records.sweep_records(self.sweep_dir), self.sweep_dir / "report")
        self.hooks.sweep_ended(self.info, status, reason)

    def fake_trial(self, number: int, values: dict, seed: int = 0, correct: dict[str, np.ndarray] | None = None,
                   state: str = "COMPLETE", reason: str | None = None, ids: np.ndarray | None = None) -> str | None:
        """Drive one trial through trial_started, the sink (with Ray counters mixed in) and trial_ended."""
        info, ctx, cfg = self.trial(number, values, seed)
        self.hooks.trial_started(info)
        sink = self.factory(ctx)
        sink.log({"train/loss": 2.0, "perf/chain_steps_per_s": 10.0, **RAY_COUNTERS}, 3)
        sink.on_eval({"eval/puzzle_acc": 0.0, "eval/cell_acc": 0.4, "cost/chain_steps": 48.0, **RAY_COUNTERS}, 6, None)
        if state == "COMPLETE":
            write_fake_final(ctx.work_dir, correct, {m: COST[m] for m in correct}, cfg.steps, ids)
            sink.log(final_eval.final_metrics(final_eval.load_results(ctx.work_dir)), cfg.steps)
        sink.close()
        self.ended(info, state, reason)
        return sink.run_id


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
    write_json(out / final_eval.RESULTS, {"step": steps, "rows": rows, "tau_curve": [], "halting_histogram": [1, 2, 3],
                                          "meta": {}})
