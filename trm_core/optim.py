"""Optimisers (Muon on the mixer matrices, AdamW on the rest), the cosine schedule and the EMA."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from trm_core.config import OptimConfig


def split_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(muon, adamw): Muon takes the 2-D weights inside the mixer blocks; AdamW takes the embedding,
    the output and halting heads and every bias (the paper's split; Muon is only defined for matrices)."""
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (muon if name.startswith("reasoning.") and p.ndim == 2 else adamw).append(p)
    return muon, adamw


def build_optimizers(model: nn.Module, cfg: OptimConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    muon_params, adam_params = split_params(model)
    # torch.optim.Muon is the paper's Muon: Nesterov momentum, Newton-Schulz orthogonalisation and
    # Keller's "original" lr adjustment sqrt(max(1, A/B)).
    muon = torch.optim.Muon(muon_params, lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=True,
                            ns_steps=cfg.muon_ns_steps, weight_decay=cfg.muon_wd, adjust_lr_fn="original")
    adamw = torch.optim.AdamW(adam_params, lr=cfg.adam_lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
                              weight_decay=cfg.adam_wd)
    for opt in (muon, adamw):
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    return muon, adamw


def lr_scale(step: int, total: int, warmup: int = 0, floor: float = 0.0) -> float:
    """Multiplier of the base lr at `step` (0-based): linear warmup, then cosine from 1 down to `floor`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizers, scale: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * scale


class EMA:
    """Exponential moving average of the weights, used for evaluation (the paper: decay 0.9 from update 5000).

    At update `start` (1-based count) the shadow is set to the weights; after it, shadow <- decay * shadow
    + (1 - decay) * weights. Before it, `before_start` decides: "track" copies the weights at every
    update, "hold" (the reference) leaves the shadow at the initial weights, and `in_use` is False so
    evaluation takes the raw weights.
    """

    def __init__(self, model: nn.Module, decay: float, start: int, before_start: str = "track"):
        self.decay, self.start, self.before_start = decay, start, before_start
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in the weights after update `step` (0-based, so this is update step + 1)."""
        if self.before_start == "hold" and step + 1 < self.start:
            return
        d = self.decay if step >= self.start else 0.0
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)

    def in_use(self, updates: int) -> bool:
        """Whether evaluation after `updates` optimiser updates should use the shadow."""
        return self.before_start == "track" or updates >= self.start

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
