"""Batched, lock-step execution of evaluation chains, with exact cost counters and optional per-step records.

A *chain* is one recursion of one model on one view of a puzzle: (model index, latent init row k of
L_init, dihedral transform t, digit permutation p). A mode asks for a list of chains per puzzle; the runner
runs all of them in lock-step, one ACT step at a time, maps every chain's logits back to the original
frame and hands them to the mode's `decide` function, which says which puzzles are answered (and with
what). Answered puzzles leave the batch, so a mode that stops early really runs fewer chain-steps.

Rows are laid out puzzle-major per model: row b*C_m + j is the j-th chain of model m for puzzle b.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from trm_core.model import make_tokens

DIGIT_LO, DIGIT_HI = 2, 10  # token ids of the digits 1..9; 1 is blank


@dataclass(frozen=True)
class Chain:
    """One chain of a chain set: which model, which latent init, which view of the puzzle."""

    model: int = 0
    """Index into the list of models (e.g. seeds)."""
    latent: int = 0
    """Row k of the model's L_init that z_L starts from (fresh noise if the model uses z_l_init=fresh)."""
    dihedral: int = 0
    """Dihedral transform index t for trm_core.augment.dihedral (0 = identity)."""
    perm: int = -1
    """Row of the digit-permutation table applied to the puzzle (-1 = no relabelling)."""


class Decide(Protocol):
    def __call__(self, step: int, logits: Tensor, q: Tensor, final: bool) -> tuple[Tensor, Tensor]:
        """logits [b, C, 81, V] (original frame), q [b, C] for the active puzzles after ACT step `step`
        (1-based) -> (done [b] bool, prediction [b, 81] long; rows only read where done). When `final`
        is true every puzzle must be done."""


Observe = Callable[[Tensor, int, Tensor, Tensor], None]
"""observe(puzzle indices [b] into the data set, step, logits [b, C, 81, V], q [b, C]) after every step."""


@dataclass
class RunOutput:
    """What one mode's run produced: predictions and the cost it really paid."""

    preds: np.ndarray
    """[N, 81] predicted tokens in the original frame."""
    halt_step: np.ndarray
    """[N] ACT step (1-based) at which each puzzle was answered."""
    chain_steps: int = 0
    """Sum over act_step calls of the rows (chains) they ran."""
    f_calls: int = 0
    """chain_steps weighted by each model's f-calls per ACT step, H_cycles * (L_cycles + 1)."""
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


def f_calls_per_step(model) -> int:
    """Calls of the core net f in one ACT step: each H-cycle runs f L times on z_L and once on z_H."""
    return model.cfg.h_cycles * (model.cfg.l_cycles + 1)


def digit_perms(n: int, seed: int = 0) -> Tensor:
    """[n, 9] random permutations of 0..8 (row p is digit permutation p), reproducible from `seed`."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(9, generator=g) for _ in range(n)]) if n else torch.empty(0, 9, dtype=torch.long)


class Views:
    """Maps puzzles into a chain's view and that chain's logits back to the original frame."""

    def __init__(self, perms: Tensor | None):
        self.perms = perms

    def _perm(self, chain: Chain, b: int, device) -> Tensor:
        return self.perms[chain.perm].to(device).unsqueeze(0).expand(b, -1)

    def forward(self, grids: Tensor, chain: Chain) -> Tensor:
        """grids [b, 81] tokens -> the same puzzles as chain `chain` sees them."""
        if chain.dihedral == 0 and chain.perm < 0:
            return grids
        from trm_core import augment

        out = grids
        if chain.dihedral:
            out = augment.dihedral(out, chain.dihedral)
        if chain.perm >= 0:
            out = augment.relabel_digits(out, self._perm(chain, out.shape[0], out.device))
        return out

    def back(self, logits: Tensor, chain: Chain) -> Tensor:
        """logits [b, 81, V] in the chain's frame -> original frame (the inverse of `forward`, in reverse order)."""
        if chain.dihedral == 0 and chain.perm < 0:
            return logits
        from trm_core import augment

        out = logits
        if chain.perm >= 0:
            out = augment.relabel_logits_back(out, self._perm(chain, out.shape[0], out.device))
        if chain.dihedral:
            out = augment.inverse_dihedral(out, chain.dihedral)
        return out


class _Group:
    """The chains of one model for the puzzles still in the batch."""

    def __init__(self, model, chains: list[tuple[int, Chain]], grids: Tensor, views: Views, generator: torch.Generator):
        self.model, self.cols, self.views = model, [c for c, _ in chains], views
        self.chains = [ch for _, ch in chains]
        b, c = grids.shape[0], len(self.chains)
        per_chain = [make_tokens(views.forward(grids, ch)) for ch in self.chains]  # c x [b, 82]
        tokens = torch.stack(per_chain, dim=1).reshape(b * c, -1)
        self.x = model.embed(tokens)
        latent = torch.tensor([ch.latent for ch in self.chains], device=grids.device).repeat(b)
        self.z_H = model.init_h(b * c)
        fresh = getattr(model.cfg, "z_l_init", "fixed") == "fresh"
        self.z_L = model.init_l(latent, fresh=fresh, generator=generator if fresh else None)

    def step(self) -> tuple[Tensor, Tensor, int]:
        """One ACT step of every row -> (logits [b, c, 81, V] in the original frame, q [b, c], rows run)."""
        self.z_H, self.z_L, logits, q = self.model.act_step(self.x, self.z_H, self.z_L)
        c = len(self.chains)
        logits = logits.view(-1, c, *logits.shape[1:])
        back = [self.views.back(logits[:, j], ch) for j, ch in enumerate(self.chains)]
        return torch.stack(back, dim=1), q.view(-1, c), self.x.shape[0]

    def keep(self, mask: Tensor) -> None:
        rows = mask.repeat_interleave(len(self.chains))
        self.x, self.z_H, self.z_L = self.x[rows], self.z_H[rows], self.z_L[rows]


@torch.inference_mode()
def run_chains(models: Sequence, chains: Sequence[Chain], inputs: Tensor, decide: Decide, *, max_steps: int,
               batch_size: int, perms: Tensor | None = None, observe: Observe | None = None,
               progress: Callable[[int], None] | None = None, seed: int = 0) -> RunOutput:
    """Run `chains` for every puzzle of `inputs` [N, 81] (on the models' device) until `decide` answers.

    Cost is counted from what really ran: every act_step call adds its row count to chain_steps.
    `progress(n)` is called with the number of puzzles answered so far.
    """
    device = models[0].H_init.device
    views = Views(perms)
    n = inputs.shape[0]
    preds = np.zeros((n, 81), dtype=np.int64)
    halt_step = np.zeros(n, dtype=np.int64)
    out = RunOutput(preds, halt_step)
    generator = torch.Generator(device=device).manual_seed(seed)
    by_model: dict[int, list[tuple[int, Chain]]] = {}
    for col, ch in enumerate(chains):
        by_model.setdefault(ch.model, []).append((col, ch))
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=device)
        grids = inputs[start:start + batch_size].to(device).long()
        groups = [_Group(models[m], chs, grids, views, generator) for m, chs in by_model.items()]
        for step in range(1, max_steps + 1):
            parts = []
            for g in groups:
                lg, qg, rows = g.step()
                out.chain_steps += rows
                out.f_calls += rows * f_calls_per_step(g.model)
                parts.append((g.cols, lg, qg))
            if len(parts) == 1:  # one model: its columns are all chains, in order
                _, logits, q = parts[0]
            else:
                logits = torch.empty(idx.shape[0], len(chains), *parts[0][1].shape[2:], device=device, dtype=parts[0][1].dtype)
                q = torch.empty(idx.shape[0], len(chains), device=device, dtype=parts[0][2].dtype)
                for cols, lg, qg in parts:
                    logits[:, cols], q[:, cols] = lg, qg
            if observe is not None:
                observe(idx, step, logits, q)
            final = step == max_steps
            done, pred = decide(step, logits, q, final)
            if final and not bool(done.all()):
                raise RuntimeError("decide() left puzzles unanswered at the last step")
            if bool(done.any()):
                rows = idx[done].cpu().numpy()
                preds[rows] = pred[done].cpu().numpy()
                halt_step[rows] = step
            if final or bool(done.all()):
                break
            keep = ~done
            idx = idx[keep]
            for g in groups:
                g.keep(keep)
        if progress is not None:
            progress(min(start + batch_size, n))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    out.wall_s = time.perf_counter() - t0
    return out
