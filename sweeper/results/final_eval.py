"""The end-of-trial evaluation: every mode that the comparison with the TTA baseline needs, on the held-out
puzzles of the trial's own config, from its final checkpoint.

Runs inside the trial's worker, from the trainable, once the trial has trained to its last step (before
Ray is told the trial is over), whether tracking is on or not; writes to `<trial dir>/final/`:

    per_puzzle.npz   ids (uint64 hash of each puzzle's input grid), correct/<mode>, cost/<mode> (f-calls
                     per puzzle); sweeper.results.compare pairs trials with the baseline by these ids
    results.json     rows per mode, tau curve, halting histogram, meta, and the checkpoint step
    plots/           halting_histogram.png, accuracy_vs_cost.png, tau_curve.png

results.json is written last and atomically, so its presence means the evaluation is complete: a trial
killed half-way through re-runs it on resume, and one that finished never runs it twice.
No MLflow, Ray or Optuna here.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.results import plots
from sweeper.util.files import write_json

FINAL_MODES = ("full", "halt", "halt_first")
"""Modes of every trial's final evaluation: one chain all steps, one chain until it halts, and the
configuration's own inference (its K chains, the first to halt answers)."""
BASELINE_MODES = ("tta", "tta_perm")
"""Added for baseline trials: the TTA family every trial is compared with. `tta` gives the rows tta
(probability averaging), tta_vote (per-cell majority) and tta_halt_first over the 8 dihedral views;
`tta_perm` the same three over the identity and 7 digit relabellings. (Only the baseline's TTA is ever
compared with, so other trials skip its 8-fold cost.)"""
ROW_METRICS = ("puzzle_acc", "cell_acc", "relative_cost", "efficiency", "f_calls_per_puzzle", "chain_steps_per_puzzle",
               "mean_halt_step")
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


def ensure(work_dir: Path, cfg, baseline: bool) -> dict[str, Any]:
    """The final evaluation of the trial in `work_dir` that trained `cfg` (a TrainConfig) to its last step
    (with the TTA family when it is a `baseline` trial): run once, then reused (a resumed trial that has it
    does not evaluate again)."""
    done = load_results(work_dir)
    if done is not None:
        return done
    ckpt = final_checkpoint(Path(work_dir) / "checkpoints", cfg.steps)
    if ckpt is None:
        raise RuntimeError(f"{work_dir}: no intact checkpoint of step {cfg.steps} to evaluate")
    return run_final(cfg, ckpt, work_dir, FINAL_MODES + (BASELINE_MODES if baseline else ()))


def run_final(cfg, ckpt: Path, work_dir: Path, modes: tuple[str, ...] = FINAL_MODES) -> dict[str, Any]:
    """Evaluate checkpoint `ckpt` in `modes` on the held-out puzzles of `cfg` (the trial's TrainConfig, device
    included); write the files above. Returns results.json's content."""
    from trm_core.checkpoint import load_model
    from trm_core.data import data_label, load_splits
    from trm_core.device import pick_device
    from trm_core.evaluation import evaluate

    dev = str(pick_device(cfg.device))
    model, _, state = load_model(ckpt, dev)
    test = load_splits(cfg.data)[1]
    n = len(test) if cfg.eval_puzzles is None else min(cfg.eval_puzzles, len(test))
    res = evaluate(model, test, cfg, modes=modes, device=dev)  # cfg: the in-training eval's rule
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
               "tau_curve": res.tau_curve, "halting_histogram": hist,
               "meta": {**res.meta, "data_label": data_label(cfg.data)}}
    write_json(out / RESULTS, results)
    return results


def load_results(work_dir: Path) -> dict[str, Any] | None:
    """results.json of a finished final evaluation, or None."""
    path = final_dir(work_dir) / RESULTS
    return json.loads(path.read_text()) if path.is_file() else None


def final_metrics(results: dict[str, Any]) -> dict[str, float]:
    """{'final/<mode>/<key>': value} for every row of results.json and every key of ROW_METRICS."""
    return {f"final/{r['method']}/{k}": float(r[k]) for r in results["rows"] for k in ROW_METRICS if k in r}
