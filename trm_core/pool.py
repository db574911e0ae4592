"""The in-flight training state: B puzzle slots x K chains, refilled as puzzles halt.

Deep supervision carries each puzzle's (detached) latent states across up to max_act_steps optimiser
steps; when a puzzle halts, its slot takes the next puzzle of the sampler. Everything here is part of a
checkpoint, so a resumed run continues with exactly the same puzzles, augmentations and states.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trm_core.augment import augment_batch
from trm_core.model import TRM


@dataclass
class Sampler:
    """Epoch-wise random order over the training puzzles; `pos` is the next index into `order`."""

    order: Tensor
    pos: int
    epoch: int

    @classmethod
    def create(cls, n: int, generator: torch.Generator) -> "Sampler":
        return cls(torch.randperm(n, generator=generator, device=generator.device), 0, 0)

    def take(self, count: int, generator: torch.Generator) -> Tensor:
        out = []
        while count > 0:
            if self.pos >= len(self.order):
                self.order = torch.randperm(len(self.order), generator=generator, device=generator.device)
                self.pos, self.epoch = 0, self.epoch + 1
            chunk = self.order[self.pos:self.pos + count]
            self.pos += len(chunk)
            count -= len(chunk)
            out.append(chunk)
        return torch.cat(out)


class SlotPool:
    """Per slot: augmented inputs/labels, ACT step count; per slot x chain: z_H, z_L, their inits and
    whether the chain still competes (`alive`, cleared by `wta.expunge: remove`, restored on refill)."""

    def __init__(self, model: TRM, batch: int, device: torch.device, dtype: torch.dtype):
        k, s, d = model.cfg.k, model.cfg.seq_len, model.cfg.hidden
        self.k = k
        self.inputs = torch.ones(batch, 81, dtype=torch.long, device=device)
        self.labels = torch.full((batch, 81), 2, dtype=torch.long, device=device)
        self.steps = torch.zeros(batch, dtype=torch.long, device=device)
        self.halted = torch.ones(batch, dtype=torch.bool, device=device)  # empty slots count as halted
        self.z_H = torch.zeros(batch, k, s, d, device=device, dtype=dtype)
        self.z_L = torch.zeros_like(self.z_H)
        self.h0 = torch.zeros_like(self.z_H)  # each chain's initial states (for top1 carry and expunging)
        self.l0 = torch.zeros_like(self.z_H)
        # A checkpoint written before chains could be removed has no `alive`; load_state_dict then keeps
        # this all-True mask, which is exactly the state such a run was in.
        self.alive = torch.ones(batch, k, dtype=torch.bool, device=device)

    def refill(self, model: TRM, sampler: Sampler, inputs: Tensor, labels: Tensor, generator: torch.Generator,
               augment: bool, permute_blank: bool, fresh_l: bool) -> int:
        """Load new puzzles into halted slots and reset their states. Returns how many were loaded."""
        slots = self.halted.nonzero().squeeze(1)
        n = len(slots)
        if n == 0:
            return 0
        idx = sampler.take(n, generator)
        x, y = inputs[idx].long(), labels[idx].long()
        if augment:
            x, y = augment_batch(x, y, generator, permute_blank=permute_blank)
        self.inputs[slots], self.labels[slots] = x, y
        self.steps[slots] = 0
        self.halted[slots] = False
        self.alive[slots] = True
        chains = torch.arange(self.k, device=slots.device).repeat(n)
        h0 = model.init_h(n * self.k).reshape(n, self.k, *self.z_H.shape[2:])
        l0 = model.init_l(chains, fresh=fresh_l, generator=generator).reshape(n, self.k, *self.z_H.shape[2:])
        self.h0[slots], self.l0[slots] = h0.to(self.z_H.dtype), l0.to(self.z_H.dtype)
        self.z_H[slots], self.z_L[slots] = self.h0[slots], self.l0[slots]
        return n

    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in vars(self).items() if isinstance(v, Tensor)}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).copy_(v)
