"""Evaluation modes: one function per strategy, each a chain set plus a rule for when and how to answer.

Every mode returns the runner's RunOutput (predictions in the original frame, the ACT step each puzzle
was answered at, and the chain-steps / f-calls really run). Scoring against labels is `score`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from trm_core.evaluation.runner import Chain, RunOutput, run_chains

FALLBACKS = ("prob_avg", "max_q")
BASE = Chain()  # chain 0 of model 0 from L_init[0], untransformed: the paper's single-pass metric


# --- ways to turn chain logits into one answer ------------------------------------------------------

def last_argmax(logits: Tensor) -> Tensor:
    """logits [b, 81, V] -> predicted tokens [b, 81]."""
    return logits.argmax(-1)


def prob_average(logits: Tensor) -> Tensor:
    """logits [b, C, 81, V] -> argmax of the per-cell softmax probabilities averaged over the C chains."""
    return torch.softmax(logits.float(), dim=-1).mean(1).argmax(-1)


def majority_vote(logits: Tensor) -> Tensor:
    """logits [b, C, 81, V] -> per-cell majority of the chains' argmax digits.

    Ties between equally voted digits go to the one with the larger averaged probability (adding half the
    mean probability, which is < 1, can only reorder digits with the same vote count).
    """
    votes = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(1).float()
    return (votes + 0.5 * torch.softmax(logits.float(), dim=-1).mean(1)).argmax(-1)


def halted(q: Tensor, tau: float) -> Tensor:
    """The halting rule: sigmoid(q) > tau (computed the same way everywhere, so records replay exactly)."""
    return torch.sigmoid(q.float()) > tau


def first_halter(q: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """q [b, C] -> (any chain halted [b], answering chain [b]): among the halted chains the largest q."""
    h = halted(q, tau)
    masked = torch.where(h, q.float(), torch.full_like(q, -torch.inf, dtype=torch.float32))
    return h.any(1), masked.argmax(1)


def pick_chain(logits: Tensor, chain: Tensor) -> Tensor:
    """logits [b, C, 81, V], chain [b] -> argmax tokens of each puzzle's chosen chain [b, 81]."""
    return logits[torch.arange(logits.shape[0], device=logits.device), chain].argmax(-1)


def fallback_answer(logits: Tensor, q: Tensor, fallback: str) -> Tensor:
    """The answer when no chain halted by the last step: pooled probabilities or the most confident chain."""
    if fallback == "prob_avg":
        return prob_average(logits)
    if fallback == "max_q":
        return pick_chain(logits, q.float().argmax(1))
    raise ValueError(f"unknown fallback {fallback!r} (valid: {', '.join(FALLBACKS)})")


def _no_answer(logits: Tensor) -> Tensor:
    return torch.zeros(logits.shape[0], logits.shape[2], dtype=torch.long, device=logits.device)


# --- the modes -------------------------------------------------------------------------------------

def full(models: Sequence, inputs: Tensor, *, max_steps: int, batch_size: int, progress: Callable | None = None) -> RunOutput:
    """One chain (model 0, L_init[0], no view), every ACT step; answer = argmax of the last step's logits."""

    def decide(step, logits, q, final):
        return torch.full((logits.shape[0],), final, device=logits.device), last_argmax(logits[:, 0])

    return run_chains(models, [BASE], inputs, decide, max_steps=max_steps, batch_size=batch_size, progress=progress)


def halt(models: Sequence, inputs: Tensor, *, tau: float, max_steps: int, batch_size: int,
         progress: Callable | None = None) -> RunOutput:
    """One chain; answer at the first step with sigmoid(q) > tau (else the last); answered puzzles leave."""

    def decide(step, logits, q, final):
        done = halted(q[:, 0], tau) | final
        return done, last_argmax(logits[:, 0])

    return run_chains(models, [BASE], inputs, decide, max_steps=max_steps, batch_size=batch_size, progress=progress)


def halt_first(models: Sequence, inputs: Tensor, chains: Sequence[Chain], *, tau: float, max_steps: int,
               batch_size: int, fallback: str = "prob_avg", perms: Tensor | None = None,
               progress: Callable | None = None) -> RunOutput:
    """Chains in lock-step; the first chain to halt answers (ties: largest q); answered puzzles leave.

    If no chain has halted by the last step, `fallback` answers: "prob_avg" (default: every chain has run
    to the end anyway, so pooling their probabilities costs nothing and is the strongest guess) or "max_q".
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r} (valid: {', '.join(FALLBACKS)})")

    def decide(step, logits, q, final):
        any_halt, chain = first_halter(q, tau)
        pred = pick_chain(logits, chain)
        if final:
            pred = torch.where(any_halt.unsqueeze(1), pred, fallback_answer(logits, q, fallback))
            return torch.ones_like(any_halt), pred
        return any_halt, pred

    return run_chains(models, chains, inputs, decide, max_steps=max_steps, batch_size=batch_size, perms=perms,
                      progress=progress)


def prob_avg(models: Sequence, inputs: Tensor, chains: Sequence[Chain], *, max_steps: int, batch_size: int,
             perms: Tensor | None = None, progress: Callable | None = None) -> RunOutput:
    """Chains in lock-step for every step; answer = argmax of the per-cell probabilities averaged over chains."""

    def decide(step, logits, q, final):
        done = torch.full((logits.shape[0],), final, device=logits.device)
        return done, prob_average(logits) if final else _no_answer(logits)

    return run_chains(models, chains, inputs, decide, max_steps=max_steps, batch_size=batch_size, perms=perms,
                      progress=progress)


def tta(models: Sequence, inputs: Tensor, *, max_steps: int, batch_size: int, n_digit_perms: int = 0,
        perms: Tensor | None = None, progress: Callable | None = None) -> tuple[RunOutput, RunOutput]:
    """The TTA baseline: model 0, chain 0 on the 8 dihedral views (times `n_digit_perms` relabellings, if
    any, each view with its own permutation), all steps, each mapped back; one run scored two ways:
    probability averaging ("tta") and per-cell majority vote ("tta_vote"). Both carry the run's full cost.
    """
    chains = tta_chains(n_digit_perms)
    votes: dict[int, np.ndarray] = {}
    offset = [0]

    def decide(step, logits, q, final):
        done = torch.full((logits.shape[0],), final, device=logits.device)
        if not final:
            return done, _no_answer(logits)
        votes[offset[0]] = majority_vote(logits).cpu().numpy()
        offset[0] += logits.shape[0]
        return done, prob_average(logits)

    avg = run_chains(models, chains, inputs, decide, max_steps=max_steps, batch_size=batch_size, perms=perms,
                     progress=progress)
    # No puzzle leaves early here, so batches finish in data order and the vote rows line up.
    vote_preds = np.concatenate([votes[k] for k in sorted(votes)]) if votes else avg.preds.copy()
    vote = RunOutput(vote_preds, avg.halt_step.copy(), avg.chain_steps, avg.f_calls, avg.wall_s)
    return avg, vote


def tta_chains(n_digit_perms: int = 0) -> list[Chain]:
    """The 8 dihedral views of chain 0 of model 0; with P > 0 digit permutations, 8 * P views (t, p)."""
    if n_digit_perms <= 0:
        return [Chain(dihedral=t) for t in range(8)]
    return [Chain(dihedral=t, perm=p) for t in range(8) for p in range(n_digit_perms)]


# --- scoring -----------------------------------------------------------------------------------------

def score(preds: np.ndarray, labels: np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray | float]:
    """Cell accuracy over all cells (the paper's) and over blank cells, and per-puzzle correctness."""
    right = preds == labels.astype(np.int64)
    blank = inputs == 1
    return {
        "cell_acc": float(right.mean()) if right.size else 0.0,
        "cell_acc_blank": float(right[blank].mean()) if blank.any() else 1.0,
        "correct": right.all(1),
    }
