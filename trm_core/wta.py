"""Winner-take-all ("oracle-first") training over K parallel z_L chains (paper, Sec. WTA), and ACT halting.

Rows are laid out puzzle-major: row b*K + k is chain k of puzzle b. Per puzzle only the chain with the
lowest loss contributes loss; the carry policies decide what the chains keep; expunging deals with
chains that have collapsed onto another; the halting rule decides when a puzzle leaves its slot.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from trm_core.config import TrainConfig


def stablemax_log_probs(logits: Tensor) -> Tensor:
    """log of stablemax (the original TRM's alternative to softmax): s(x) = x+1 for x>=0, 1/(1-x) else."""
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits))
    return torch.log(s / s.sum(-1, keepdim=True))


def cell_loss(logits: Tensor, labels: Tensor, smoothing: float, kind: str = "softmax", fp32: bool = True) -> Tensor:
    """Per-puzzle mean over the 81 cells of the label-smoothed CE. logits [N,81,V], labels [N,81] -> [N].

    fp32=True computes in float32; False keeps the logits' dtype (the reference: bf16 logits give
    bf16-quantised losses). Smoothing follows PyTorch's convention: target = (1-s)*one_hot + s/V.
    """
    if fp32:
        logits = logits.float()
    if kind == "stablemax":
        logp = stablemax_log_probs(logits)
        nll = -logp.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
        loss = (1 - smoothing) * nll - smoothing * logp.mean(-1)
    else:
        n, s, v = logits.shape
        loss = F.cross_entropy(logits.reshape(n * s, v), labels.reshape(-1).long(), reduction="none", label_smoothing=smoothing).view(n, s)
    return loss.mean(-1)


def winners(losses: Tensor) -> Tensor:
    """losses [B, K] -> index of the lowest-loss chain per puzzle [B] (the lowest index on ties, as the reference)."""
    return losses.detach().argmin(dim=1)


def gather_chain(x: Tensor, win: Tensor) -> Tensor:
    """x [B, K, ...], win [B] -> x[b, win[b]] of shape [B, ...]."""
    idx = win.view(-1, *([1] * (x.dim() - 1))).expand(-1, 1, *x.shape[2:])
    return x.gather(1, idx).squeeze(1)


def wta_objective(logits: Tensor, q: Tensor, labels: Tensor, k: int, cfg: TrainConfig, alive: Tensor | None = None) -> dict:
    """WTA loss for puzzle-major rows; `alive` [B, K] marks the chains still competing (None = all).

    Per puzzle, only the lowest-loss alive chain contributes: its label-smoothed CE over the 81 cells
    plus halt.loss_weight * BCE(q, whole grid right). A removed chain has loss +inf, so it never wins
    and gets no gradient. With K = 1 this is the plain TRM loss.
    """
    b = labels.shape[0]
    losses = cell_loss(logits, labels.repeat_interleave(k, dim=0), cfg.optim.label_smoothing, cfg.optim.loss,
                       fp32=cfg.wta.loss_dtype == "fp32").view(b, k)
    if alive is not None:
        losses = torch.where(alive, losses, torch.full_like(losses, float("inf")))
    win = winners(losses)
    lm_loss = gather_chain(losses, win).mean()
    logits_w = gather_chain(logits.view(b, k, *logits.shape[1:]), win)
    q_w = gather_chain(q.view(b, k), win).float()
    correct = (logits_w.argmax(-1) == labels).all(-1)
    halt_loss = F.binary_cross_entropy_with_logits(q_w, correct.float())
    return {"loss": lm_loss + cfg.halt.loss_weight * halt_loss, "lm_loss": lm_loss, "halt_loss": halt_loss,
            "winner": win, "q_winner": q_w, "correct": correct, "chain_losses": losses}


# ---------------------------------------------------------------------------------------------------
# carry

def carry(z_H: Tensor, z_L: Tensor, win: Tensor, carry_h: str, carry_l: str, z_H_init: Tensor, z_L_init: Tensor,
          *, prev: tuple[Tensor, Tensor] | None = None, runner_up: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Apply the carry policies to the [B, K, S, D] outputs of an ACT step; returns detached states.

    Each policy means the same for z_H and z_L (see WTAConfig.carry_h for the list). `*_init` are the
    chains' initial states (top1_reset); `prev` = (z_H, z_L) before this step (top1, top2, none);
    `runner_up` [B] the second-lowest-loss chain (top2).
    """
    prev_h, prev_l = prev if prev is not None else (None, None)
    return (_carry_one(z_H.detach(), win, carry_h, z_H_init, prev_h, runner_up),
            _carry_one(z_L.detach(), win, carry_l, z_L_init, prev_l, runner_up))


def _carry_one(z: Tensor, win: Tensor, policy: str, init: Tensor, prev: Tensor | None, runner_up: Tensor | None) -> Tensor:
    k = z.shape[1]
    if policy == "all" or (k == 1 and policy != "none"):
        return z
    if policy == "copy_top1":
        return gather_chain(z, win).unsqueeze(1).expand(-1, k, -1, -1).contiguous()
    chain = torch.arange(k, device=win.device).unsqueeze(0)
    if policy == "top1_reset":
        return torch.where((chain == win.unsqueeze(1)).view(-1, k, 1, 1), z, init.to(z.dtype))
    if prev is None:
        raise ValueError(f"carry policy {policy!r} needs the state before the step")
    if policy == "none":
        return prev.detach()
    keep = chain == win.unsqueeze(1)
    if policy == "top2":
        keep = keep | (chain == runner_up.unsqueeze(1))
    elif policy != "top1":
        raise ValueError(f"unknown carry policy {policy!r}")
    return torch.where(keep.view(-1, k, 1, 1), z, prev.detach().to(z.dtype))


# ---------------------------------------------------------------------------------------------------
# expunging collapsed chains

def pair_cosines(z_L: Tensor) -> Tensor:
    """[B, K, S, D] -> [B, K, K] cosine of the flattened z_L of each pair of chains of a puzzle.

    Normalised as z / (||z|| + 1e-8) in float32, the reference's formula.
    """
    b, k = z_L.shape[:2]
    flat = z_L.reshape(b, k, -1).float()
    flat = flat / (flat.norm(dim=-1, keepdim=True) + 1e-8)
    return flat @ flat.transpose(1, 2)


def expunge_mask(z_L: Tensor, threshold: float) -> Tensor:
    """[B, K] bool, `wta.expunge: reset`: chain k duplicates a lower-index chain (cosine of z_L > threshold).

    Such chains have collapsed onto another and add cost without diversity; the trainer restarts them.
    """
    k = z_L.shape[1]
    lower = torch.tril(torch.ones(k, k, dtype=torch.bool, device=z_L.device), diagonal=-1)
    return ((pair_cosines(z_L) > threshold) & lower).any(-1)


def expunge_remove(z_L: Tensor, losses: Tensor, alive: Tensor, running: Tensor, threshold: float) -> Tensor:
    """[B, K] bool, `wta.expunge: remove` (the reference's rule): the chain to remove from each puzzle.

    For each running puzzle, among its alive chains that are in some pair with cosine > threshold, the
    one with the largest loss of this step (the first on ties); at most one per puzzle per step.
    """
    k = z_L.shape[1]
    other = ~torch.eye(k, dtype=torch.bool, device=z_L.device)
    pairs = (pair_cosines(z_L) > threshold) & other & alive.unsqueeze(1) & alive.unsqueeze(2)
    in_pair = pairs.any(-1)  # [B, K]
    worst = torch.where(in_pair, losses.detach().float(), torch.full_like(losses, -float("inf"), dtype=torch.float32)).argmax(1)
    hit = in_pair.any(-1) & running
    return (torch.arange(k, device=z_L.device).unsqueeze(0) == worst.unsqueeze(1)) & hit.unsqueeze(1)


# ---------------------------------------------------------------------------------------------------
# halting

class ExplorationDraws:
    """The per-step random numbers of the halting rule: (u [B] in [0, 1), m [B] in [2, max_steps]).

    A puzzle explores this step when u < halt.explore_prob; it then cannot halt on confidence before
    ACT step m. Drawn afresh every step for every slot, as the reference does. A Run holds one; tests
    replace it to feed recorded draws.
    """

    def __init__(self, generator: torch.Generator, max_steps: int):
        self.generator, self.max_steps = generator, max_steps

    def __call__(self, b: int) -> tuple[Tensor, Tensor]:
        g = self.generator
        return torch.rand(b, generator=g, device=g.device), torch.randint(2, self.max_steps + 1, (b,), generator=g, device=g.device)


def halt_decision(steps: Tensor, q: Tensor, min_steps: Tensor, max_steps: int, tau: float) -> Tensor:
    """Halt at max steps, or when sigmoid(q) > tau once `min_steps` is reached (0 when not exploring).

    Equal to the reference's (h >= max or q > 0) and (not exploring or h >= m) at tau = 0.5, since m <= max.
    """
    return (steps >= max_steps) | ((torch.sigmoid(q) > tau) & (steps >= min_steps))
