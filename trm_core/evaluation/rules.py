"""Rules that turn chain outputs into one answer, and the halting rule, shared by the modes and the replays.

Every mode and every tau-curve replay calls these same functions on the same q values, so a replay from a
record gives exactly what an explicit run would.
"""
from __future__ import annotations

import torch
from torch import Tensor


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
    """The halting rule: sigmoid(q) > tau, in fp32 (the reference's q > 0 is tau = 0.5)."""
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
    """The halt-first answer when no chain halted by the last step (see evaluation.config.FALLBACKS)."""
    if fallback == "chain0":
        return logits[:, 0].argmax(-1)
    if fallback == "prob_avg":
        return prob_average(logits)
    if fallback == "max_q":
        return pick_chain(logits, q.float().argmax(1))
    raise ValueError(f"unknown fallback {fallback!r}")
