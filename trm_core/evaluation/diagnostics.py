"""Diagnostics of what chains can do versus what a selection rule picks (the paper's analysis section).

Pure functions on arrays (bool correctness, halting steps, q probabilities, losses), plus the one that
needs the model again: `selection_vs_capability`, which re-runs failures under digit permutations.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from trm_core.evaluation.chains import Chain, RunOptions
from trm_core.evaluation.views import digit_perms


def oracle_accuracy(correct: np.ndarray) -> float:
    """correct [N, C] bool -> share of puzzles that at least one chain gets right (an upper bound of any selector)."""
    correct = np.asarray(correct, dtype=bool)
    return float(correct.any(1).mean()) if correct.size else 0.0


def failure_jaccard(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """|fail_a & fail_b| / |fail_a | fail_b| between two runs (e.g. seeds); 1.0 when neither fails anything.

    High overlap means the runs fail on the same puzzles, so ensembling them can add little.
    """
    fa, fb = ~np.asarray(correct_a, dtype=bool), ~np.asarray(correct_b, dtype=bool)
    union = (fa | fb).sum()
    return float((fa & fb).sum() / union) if union else 1.0


def failure_jaccard_matrix(correct: np.ndarray) -> np.ndarray:
    """correct [N, M] (M runs) -> [M, M] pairwise failure Jaccard."""
    m = correct.shape[1]
    return np.array([[failure_jaccard(correct[:, i], correct[:, j]) for j in range(m)] for i in range(m)])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); nan if either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    # Tied values share the mean of their ranks.
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


def halting_vs_difficulty(halt_step: np.ndarray, ratings: np.ndarray) -> float:
    """Spearman correlation between the step a puzzle halted at and its difficulty rating (paper: speed is confidence)."""
    return spearman(halt_step, ratings)


def halting_histogram(halt_step: np.ndarray, max_steps: int) -> list[int]:
    """Counts of puzzles answered at ACT step 1..max_steps."""
    return np.bincount(np.asarray(halt_step, dtype=np.int64), minlength=max_steps + 1)[1:max_steps + 1].tolist()


def expected_calibration_error(prob: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """ECE of the halting head: sigmoid(q) read as P(grid right), in `n_bins` equal-width bins.

    Returns {"ece", "bins": [{"lo", "hi", "count", "confidence", "accuracy"}]}.
    """
    prob, correct = np.asarray(prob, dtype=float).ravel(), np.asarray(correct, dtype=float).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for i in range(n_bins):
        m = which == i
        if not m.any():
            continue
        conf, acc = float(prob[m].mean()), float(correct[m].mean())
        ece += m.mean() * abs(conf - acc)
        bins.append({"lo": float(edges[i]), "hi": float(edges[i + 1]), "count": int(m.sum()), "confidence": conf, "accuracy": acc})
    return {"ece": float(ece), "bins": bins}


def winner_stats(loss: np.ndarray) -> dict:
    """loss [N, S, C] vs labels -> winner (lowest-loss chain, for analysis only) statistics.

    share: fraction of puzzles each chain wins at the last step; consistency: mean over puzzles of the share
    of steps whose winner is the last step's winner (1.0 = the winner never changes).
    """
    loss = np.asarray(loss)
    win = loss.argmin(2)  # [N, S]
    c = loss.shape[2]
    share = np.bincount(win[:, -1], minlength=c) / max(len(win), 1)
    consistency = float((win == win[:, -1:]).mean()) if win.size else 0.0
    return {"share": share.tolist(), "consistency": consistency}


def selection_vs_capability(model, inputs: torch.Tensor, labels: torch.Tensor, failed: np.ndarray, *,
                            n_perms: int = 8, max_steps: int | None = None, batch_rows: int = 256, seed: int = 0,
                            base_acc: float | None = None) -> dict:
    """Is a failure a lack of capability or a bad pick? Re-run each failed puzzle (chain 0, `full`) under
    `n_perms` random digit relabellings; a puzzle some relabelling solves was within the model's reach.

    Returns failures, share solved by some permutation, and the implied ceiling
    base_acc + (1 - base_acc) * share (base_acc defaults to 1 - failure rate).
    """
    from trm_core.evaluation.tau_curve import record_chains

    failed = np.asarray(failed, dtype=bool)
    idx = np.flatnonzero(failed)
    base = 1.0 - failed.mean() if base_acc is None else base_acc
    if len(idx) == 0 or n_perms <= 0:
        return {"failures": int(len(idx)), "solved_by_some_perm": 0.0, "implied_ceiling": float(base)}
    steps = max_steps or model.cfg.max_act_steps
    chains = [Chain(perm=p) for p in range(n_perms)]
    sel = torch.as_tensor(idx)
    opts = RunOptions(max_steps=steps, batch_rows=batch_rows, perms=digit_perms(n_perms, seed))
    rec = record_chains([model], chains, inputs[sel], labels[sel], opts)
    share = float(rec.correct[:, -1, :].any(1).double().mean())
    return {"failures": int(len(idx)), "solved_by_some_perm": share, "implied_ceiling": float(base + (1 - base) * share)}


def seed_columns(chains: Sequence[Chain]) -> list[int]:
    """Columns holding chain 0, untransformed, of each model (one per seed), for failure overlaps."""
    seen, cols = set(), []
    for i, ch in enumerate(chains):
        if ch.latent == 0 and ch.dihedral == 0 and ch.perm < 0 and ch.model not in seen:
            seen.add(ch.model)
            cols.append(i)
    return cols
