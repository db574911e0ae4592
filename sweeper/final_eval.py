"""The end-of-trial evaluation: every mode that the comparison with the TTA baseline needs, on the held-out
puzzles of the trial's own config, from its final checkpoint.

Runs inside the trial's worker (the MLflow sink calls it from close(), before Ray is told the trial is
over) and writes to `<trial dir>/final/`:

    per_puzzle.npz   ids (uint64 hash of each puzzle's input grid), correct/<mode>, cost/<mode> (f-calls
                     per puzzle); sweeper.compare pairs trials with the baseline by these ids
    results.json     rows per mode, tau curve, halting histogram, meta, and the checkpoint step
    plots/           halting_histogram.png, accuracy_vs_cost.png, tau_curve.png

results.json is written last and atomically, so its presence means the evaluation is complete: a trial
killed half-way through re-runs it on resume, and one that finished never runs it twice.
No MLflow, Ray or Optuna here.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sweeper import plots

FINAL_MODES = ("full", "halt", "halt_first", "tta")
"""Modes of the final evaluation (tta also yields tta_vote)."""
ROW_METRICS = ("puzzle_acc", "cell_acc", "relative_cost", "efficiency", "f_calls_per_puzzle", "chain_steps_per_puzzle")
"""Per-mode values logged as final/<mode>/<key>."""
RESULTS = "results.json"
PER_PUZZLE = "per_puzzle.npz"


def final_dir(work_dir: Path) -> Path:
    """Where a trial's final evaluation lives."""
    return Path(work_dir) / "final"


def is_done(work_dir: Path) -> bool:
    """True when the final evaluation of this trial is complete on disk."""
    return (final_dir(work_dir) / RESULTS).is_file()


def final_checkpoint(ckpt_root: Path, steps: int) -> Path | None:
    """The intact checkpoint of the last training step, or None if training has not reached it."""
    from trm_core import checkpoint

    for path in reversed(checkpoint.list_checkpoints(Path(ckpt_root))):
        if checkpoint.verify(path) is None:
            return path if int(path.name.removeprefix(checkpoint.PREFIX)) >= steps else None
    return None


def puzzle_ids(inputs: np.ndarray) -> np.ndarray:
    """[N, 81] token grids -> [N] uint64 ids (the first 8 bytes of a BLAKE2b hash of each grid)."""
    grids = np.ascontiguousarray(np.asarray(inputs, dtype=np.uint8))
    return np.array([int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
                     for row in grids], dtype=np.uint64)


def run_final(config: dict[str, Any], ckpt: Path, work_dir: Path, device: str = "auto") -> dict[str, Any]:
    """Evaluate checkpoint `ckpt` in FINAL_MODES on the config's held-out puzzles; write the files above.

    Returns results.json's content. `config` is the trial's resolved TrainConfig as a dict.
    """
    import torch

    from trm_core.checkpoint import load_model
    from trm_core.config import TrainConfig, from_dict
    from trm_core.data import load_splits
    from trm_core.evaluation import evaluate

    cfg = from_dict(TrainConfig, config)
    dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    model, _, state = load_model(ckpt, dev)
    test = load_splits(cfg.data)[1]
    n = len(test) if cfg.eval_puzzles is None else min(cfg.eval_puzzles, len(test))
    res = evaluate(model, test, modes=FINAL_MODES, tau=cfg.eval_tau, device=dev, limit=n,
                   batch_size=max(64, cfg.batch_size), seed=cfg.seed)
    out = final_dir(work_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    cost = {r["method"]: float(r["f_calls_per_puzzle"]) for r in res.rows}
    arrays = {"ids": puzzle_ids(test.inputs[:n])}
    arrays.update({f"correct/{m}": np.asarray(c, bool) for m, c in res.per_puzzle.items()})
    arrays.update({f"cost/{m}": np.float64(c) for m, c in cost.items()})
    np.savez(out / PER_PUZZLE, **arrays)
    hist = res.diagnostics.get("halting_histogram", [])
    plots.halting_histogram(hist, out / "plots" / "halting_histogram.png")
    plots.accuracy_vs_cost(res.rows, res.tau_curve, out / "plots" / "accuracy_vs_cost.png")
    if res.tau_curve:
        plots.tau_curve(res.tau_curve, out / "plots" / "tau_curve.png")
    results = {"step": int(state.get("step", cfg.steps)), "checkpoint": str(ckpt), "rows": res.rows,
               "tau_curve": res.tau_curve, "halting_histogram": hist, "meta": res.meta}
    tmp = out / f".{RESULTS}.{os.getpid()}"
    tmp.write_text(json.dumps(results, indent=1, default=_plain))
    os.replace(tmp, out / RESULTS)
    return results


def load_results(work_dir: Path) -> dict[str, Any] | None:
    """results.json of a finished final evaluation, or None."""
    path = final_dir(work_dir) / RESULTS
    return json.loads(path.read_text()) if path.is_file() else None


def final_metrics(results: dict[str, Any]) -> dict[str, float]:
    """{'final/<mode>/<key>': value} for every row of results.json and every key of ROW_METRICS."""
    return {f"final/{r['method']}/{k}": float(r[k]) for r in results["rows"] for k in ROW_METRICS if k in r}


def _plain(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    return str(o)
