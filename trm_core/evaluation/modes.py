"""Evaluation modes: one function per strategy, each a chain set plus a rule for when and how to answer.

Every mode returns the runner's RunOutput (answers in the original frame, the ACT step each puzzle was
answered at, and the chain-steps / f-calls really run). Scoring against labels is `score`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from trm_core.evaluation.chains import Chain, RunOptions, RunOutput, run_chains
from trm_core.evaluation.config import FALLBACKS
from trm_core.evaluation.rules import fallback_answer, first_halter, halted, majority_vote, pick_chain, prob_average

BASE = Chain()  # chain 0 of model 0 from L_init[0], untransformed: the paper's single-pass metric
Progress = Callable[[int], None] | None


def full(models: Sequence, inputs: Tensor, opts: RunOptions, *, progress: Progress = None) -> RunOutput:
    """One chain (model 0, L_init[0], no view), every ACT step; answer = argmax of the last step's logits."""

    def decide(step, logits, q, final):
        return final, logits[:, 0].argmax(-1)

    return run_chains(models, [BASE], inputs, decide, opts, progress=progress)


def halt(models: Sequence, inputs: Tensor, opts: RunOptions, *, tau: float, progress: Progress = None) -> RunOutput:
    """One chain; answer at the first step with sigmoid(q) > tau (else the last); answered puzzles leave."""

    def decide(step, logits, q, final):
        return halted(q[:, 0], tau) | final, logits[:, 0].argmax(-1)

    return run_chains(models, [BASE], inputs, decide, opts, progress=progress)


def halt_first(models: Sequence, inputs: Tensor, chains: Sequence[Chain], opts: RunOptions, *, tau: float,
               fallback: str = "chain0", progress: Progress = None) -> RunOutput:
    """Chains in lock-step; the first chain to halt answers (ties: largest q); answered puzzles leave.

    If no chain has halted by the last step, `fallback` answers (evaluation.config.FALLBACKS).
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r} (valid: {', '.join(FALLBACKS)})")

    def decide(step, logits, q, final):
        any_halt, chain = first_halter(q, tau)
        pred = torch.where((final & ~any_halt).unsqueeze(1), fallback_answer(logits, q, fallback), pick_chain(logits, chain))
        return any_halt | final, pred

    return run_chains(models, chains, inputs, decide, opts, progress=progress)


def prob_avg(models: Sequence, inputs: Tensor, chains: Sequence[Chain], opts: RunOptions, *,
             progress: Progress = None) -> RunOutput:
    """Chains in lock-step for every step; answer = argmax of the per-cell probabilities averaged over chains."""

    def decide(step, logits, q, final):
        return final, prob_average(logits)

    return run_chains(models, chains, inputs, decide, opts, progress=progress)


def avg_and_vote(models: Sequence, inputs: Tensor, chains: Sequence[Chain], opts: RunOptions, *,
                 progress: Progress = None) -> tuple[RunOutput, RunOutput]:
    """One all-steps run of `chains` scored two ways: probability averaging and per-cell majority vote.

    Both rows carry the run's full cost (each rule alone would need the same run).
    """

    def decide(step, logits, q, final):
        return final, torch.stack([prob_average(logits), majority_vote(logits)], dim=1)

    run = run_chains(models, chains, inputs, decide, opts, progress=progress)
    avg = dataclasses.replace(run, preds=run.preds[:, 0])
    return avg, dataclasses.replace(run, preds=run.preds[:, 1])


def tta_family(name: str, models: Sequence, inputs: Tensor, chains: Sequence[Chain], opts: RunOptions, *,
               tau: float, fallback: str, progress: Callable[[str, int], None] | None = None) -> dict[str, RunOutput]:
    """The rows of a TTA family over the views `chains`: `name` (probability averaging), `name`_vote
    (majority vote, same run) and `name`_halt_first (halt-first over the views, its own run)."""
    tick = (lambda row: (lambda done: progress(row, done))) if progress else (lambda row: None)
    avg, vote = avg_and_vote(models, inputs, chains, opts, progress=tick(name))
    first = halt_first(models, inputs, chains, opts, tau=tau, fallback=fallback, progress=tick(f"{name}_halt_first"))
    return {name: avg, f"{name}_vote": vote, f"{name}_halt_first": first}


def tta_chains(n_digit_perms: int = 0) -> list[Chain]:
    """The 8 dihedral views of chain 0 of model 0; with P > 0 digit permutations, 8 * P views (t, p)."""
    if n_digit_perms <= 0:
        return [Chain(dihedral=t) for t in range(8)]
    return [Chain(dihedral=t, perm=p) for t in range(8) for p in range(n_digit_perms)]


def perm_chains(n: int) -> list[Chain]:
    """Chain 0 of model 0 under rows 0..n-1 of a digit-permutation table (views.perm_family: identity first)."""
    return [Chain(perm=p) for p in range(n)]


def score(preds: np.ndarray, labels: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray | float]:
    """Cell accuracy over all cells (the paper's) and over blank cells, and per-puzzle correctness."""
    right = preds == labels.astype(np.int64)
    blank = inputs == 1
    return {
        "cell_acc": float(right.mean()) if right.size else 0.0,
        "cell_acc_blank": float(right[blank].mean()) if blank.any() else 1.0,
        "correct": right.all(1),
    }
