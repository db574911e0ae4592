"""Winner-take-all ("oracle-first") training over K parallel z_L chains (paper, Sec. WTA).

Rows are laid out puzzle-major: row b*K + k is chain k of puzzle b. Per puzzle only the chain with the
lowest loss (computed in fp32) contributes loss; the carry policies decide what the chains keep.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def stablemax_log_probs(logits: Tensor) -> Tensor:
    """log of stablemax (the original TRM's alternative to softmax): s(x) = x+1 for x>=0, 1/(1-x) else."""
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits))
    return torch.log(s / s.sum(-1, keepdim=True))


def cell_loss(logits: Tensor, labels: Tensor, smoothing: float, kind: str = "softmax") -> Tensor:
    """Per-puzzle mean over the 81 cells of the label-smoothed CE, in fp32. logits [N,81,V], labels [N,81] -> [N].

    Smoothing follows PyTorch's convention: target = (1-s)*one_hot + s/V on every class.
    """
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
    """losses [B, K] -> index of the lowest-loss chain per puzzle [B] (first on ties)."""
    return losses.detach().argmin(dim=1)


def gather_chain(x: Tensor, win: Tensor) -> Tensor:
    """x [B, K, ...], win [B] -> x[b, win[b]] of shape [B, ...]."""
    idx = win.view(-1, *([1] * (x.dim() - 1))).expand(-1, 1, *x.shape[2:])
    return x.gather(1, idx).squeeze(1)


def carry(z_H: Tensor, z_L: Tensor, win: Tensor, carry_h: str, carry_l: str, z_H_init: Tensor, z_L_init: Tensor) -> tuple[Tensor, Tensor]:
    """Apply the carry policies to [B, K, S, D] states after an ACT step; returns detached states.

    Each policy means the same for z_H and z_L: copy_top1 -> every chain gets the winner's state (the
    paper's z_H default); all -> each chain keeps its own (the paper's z_L default); top1 -> the winner
    keeps its state and the losers restart from their initial state (`*_init`, [B, K, S, D]).
    """
    return _carry_one(z_H.detach(), win, carry_h, z_H_init), _carry_one(z_L.detach(), win, carry_l, z_L_init)


def _carry_one(z: Tensor, win: Tensor, policy: str, init: Tensor) -> Tensor:
    k = z.shape[1]
    if policy == "all" or k == 1:
        return z
    if policy == "copy_top1":
        return gather_chain(z, win).unsqueeze(1).expand(-1, k, -1, -1).contiguous()
    if policy == "top1":
        is_win = (torch.arange(k, device=win.device).unsqueeze(0) == win.unsqueeze(1)).view(-1, k, 1, 1)
        return torch.where(is_win, z, init.to(z.dtype))
    raise ValueError(f"unknown carry policy {policy!r}")


def expunge_mask(z_L: Tensor, threshold: float) -> Tensor:
    """[B, K] bool: chain k duplicates a lower-index chain of the same puzzle (cosine of flattened z_L > threshold).

    Such chains have collapsed onto another and add cost without diversity; the trainer re-initialises them.
    """
    b, k = z_L.shape[:2]
    flat = F.normalize(z_L.reshape(b, k, -1).float(), dim=-1)
    cos = flat @ flat.transpose(1, 2)  # [B, K, K]
    lower = torch.tril(torch.ones(k, k, dtype=torch.bool, device=z_L.device), diagonal=-1)
    return ((cos > threshold) & lower).any(-1)
