"""The chain runner: puzzle slots kept full, every chain of a slot in lock-step, exact cost counters.

A *chain* is one recursion of one model on one view of a puzzle: (model, latent init row k, dihedral
transform t, digit permutation p). A mode asks for a set of C chains per puzzle and a `decide` rule. The
runner keeps batch_rows // C puzzle slots, each running the C chains of its puzzle, as the trainer's slot
pool does (a fixed row count keeps memory, and on CPU cache use, the same in every mode). After every ACT
step, `decide` says which slots have their answer; those slots take the next puzzles at once, on the
device (slots.SlotPool: no host sync), so every forward pass stays full.

The host reads the pool every `sync_every` steps: to report progress, to stop, to raise if a mode left a
puzzle unanswered at the last step, and, once no puzzle is left to load, to drop the empty slots. Cost is
counted from what ran for puzzles (slot-steps of occupied slots x chains); rows of empty slots that ran
before a read dropped them are padding, reported apart (none with sync_every=1).

Rows are puzzle-major per model: row s*C_m + j is the j-th chain of model m in slot s.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from trm_core.evaluation.slots import SlotPool
from trm_core.evaluation.views import ChainViews
from trm_core.model import make_tokens
from trm_core.precision import autocast


@dataclass(frozen=True)
class Chain:
    """One chain of a chain set: which model, which latent init, which view of the puzzle."""

    model: int = 0
    """Index into the list of models (e.g. seeds)."""
    latent: int = 0
    """Row k of the model's L_init that z_L starts from (or fresh noise, see RunOptions.fresh_latents)."""
    dihedral: int = 0
    """Dihedral transform index t for trm_core.augment.dihedral (0 = identity)."""
    perm: int = -1
    """Row of the digit-permutation table applied to the puzzle (-1 = no relabelling)."""


@dataclass(frozen=True)
class RunOptions:
    """How to run chains (shared by every mode of one evaluation)."""

    max_steps: int
    """ACT steps after which every puzzle must be answered."""
    batch_rows: int
    """Rows (puzzle slots x chains) per forward pass; at least one slot."""
    perms: Tensor | None = None
    """[P, 9] digit-permutation table that Chain.perm indexes."""
    tau: float | None = None
    """If set, record per puzzle the first step at which any chain had sigmoid(q) > tau."""
    autocast: torch.dtype | None = None
    """Autocast dtype of the ACT steps (None = none; see trm_core.precision)."""
    sync_every: int = 1
    """ACT steps between host reads of the pool."""
    fresh_latents: bool = False
    """Start z_L from fresh noise for models trained with z_l_init=fresh (else L_init rows)."""
    seed: int = 0
    """Seed of the fresh z_L noise."""


class Decide(Protocol):
    def __call__(self, step: Tensor, logits: Tensor, q: Tensor, final: Tensor) -> tuple[Tensor, Tensor]:
        """step [S] (1-based ACT step each slot just ran), logits [S, C, 81, V] (original frame), q [S, C],
        final [S] (step == max_steps) -> (done [S] bool, answers [S, 81] or [S, R, 81] long; read only where
        done). Every final slot must be done. Called for every slot, occupied or not (no host sync)."""


Observe = Callable[[Tensor, Tensor, Tensor, Tensor], None]
"""observe(puzzle [S], step [S], logits [S, C, 81, V], q [S, C]) after every ACT step. Empty slots carry
puzzle index N (one past the data) and a step that may exceed max_steps: write them to a spare row."""


@dataclass
class RunOutput:
    """What one run produced: answers and the cost it really paid."""

    preds: np.ndarray
    """[N, 81] answers in the original frame ([N, R, 81] if decide gave R answers per slot)."""
    halt_step: np.ndarray
    """[N] ACT step (1-based) at which each puzzle was answered."""
    chain_steps: int = 0
    """Chain-steps run for puzzles: the ACT steps each puzzle ran, times its chains."""
    f_calls: int = 0
    """chain_steps weighted by each model's f-calls per ACT step, H_cycles * (L_cycles + 1)."""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """CPU seconds of this process during the run (time.process_time; for benchmarks on shared machines)."""
    padding_rows: int = 0
    """Rows of empty slots that ran before a host read dropped them (not part of the cost)."""
    first_halt: np.ndarray | None = None
    """[N] first step at which any chain had sigmoid(q) > RunOptions.tau (max_steps if never)."""


def f_calls_per_step(model) -> int:
    """Calls of the core net f in one ACT step: each H-cycle runs f L times on z_L and once on z_H."""
    return model.cfg.h_cycles * (model.cfg.l_cycles + 1)


class _Group:
    """One model's chains for every slot (rows s*C + j), with their views and initial states."""

    def __init__(self, model, cols: list[int], chains: list[Chain], opts: RunOptions, device, generator):
        self.model, self.cols, self.c = model, cols, len(chains)
        self.views = ChainViews([ch.dihedral for ch in chains], [ch.perm for ch in chains], opts.perms, device)
        self.latent = torch.tensor([ch.latent for ch in chains], device=device)
        self.fresh = opts.fresh_latents and getattr(model.cfg, "z_l_init", "fixed") == "fresh"
        self.generator = generator
        self.x = self.z_H = self.z_L = None

    def load(self, grids: Tensor, reset: Tensor | None) -> None:
        """Start the chains of slots where `reset` [S] is true (all slots if None) on puzzles `grids` [S, 81]."""
        s = grids.shape[0]
        tokens = make_tokens(self.views.forward(grids).reshape(s * self.c, 81))
        x, z_h = self.model.embed(tokens), self.model.init_h(s * self.c)
        z_l = self.model.init_l(self.latent.repeat(s), fresh=self.fresh, generator=self.generator if self.fresh else None)
        if reset is None:
            self.x, self.z_H, self.z_L = x, z_h, z_l
            return
        rows = reset.repeat_interleave(self.c).view(-1, 1, 1)
        # where() promotes dtypes; it never rounds a carried state (an fp32 init beside a bf16 autocast state).
        self.x, self.z_H, self.z_L = torch.where(rows, x, self.x), torch.where(rows, z_h, self.z_H), torch.where(rows, z_l, self.z_L)

    def step(self, dtype: torch.dtype | None) -> tuple[Tensor, Tensor]:
        """One ACT step of every row -> (logits [S, C, 81, V] in the original frame, q [S, C])."""
        with autocast(dtype, self.x.device):
            self.z_H, self.z_L, logits, q = self.model.act_step(self.x, self.z_H, self.z_L)
        return self.views.back(logits.view(-1, self.c, *logits.shape[1:])), q.view(-1, self.c)

    def keep(self, slots: Tensor) -> None:
        rows = slots.repeat_interleave(self.c)
        self.x, self.z_H, self.z_L = self.x[rows], self.z_H[rows], self.z_L[rows]


@torch.inference_mode()
def run_chains(models: Sequence, chains: Sequence[Chain], inputs: Tensor, decide: Decide, opts: RunOptions, *,
               observe: Observe | None = None, progress: Callable[[int], None] | None = None) -> RunOutput:
    """Run `chains` for every puzzle of `inputs` [N, 81] (on the models' device) until `decide` answers.

    `progress(n)` is called at host reads with the number of puzzles answered so far.
    """
    device = models[0].H_init.device
    n, c = inputs.shape[0], len(chains)
    if n == 0:
        return RunOutput(np.zeros((0, 81), np.int64), np.zeros(0, np.int64), first_halt=np.zeros(0, np.int64))
    by_model: dict[int, list[tuple[int, Chain]]] = {}
    for col, ch in enumerate(chains):
        by_model.setdefault(ch.model, []).append((col, ch))
    generator = torch.Generator(device=device).manual_seed(opts.seed)
    groups = [_Group(models[m], [col for col, _ in chs], [ch for _, ch in chs], opts, device, generator)
              for m, chs in by_model.items()]
    pool = SlotPool(inputs.to(device).long(), min(max(1, opts.batch_rows // c), n), opts.max_steps)
    for g in groups:
        g.load(pool.grids(), None)
    rows_run, ticks, t0, cpu0 = 0, 0, time.perf_counter(), time.process_time()
    while True:
        ticks += 1
        pool.advance()
        logits, q = _assemble(groups, [g.step(opts.autocast) for g in groups], c)
        rows_run += pool.size * c
        if observe is not None:
            observe(pool.puzzle, pool.step, logits, q)
        done, pred = decide(pool.step, logits, q, pool.step >= opts.max_steps)
        done = pool.answer(done, pred, q, opts.tau)
        # ALGO LOGIC: answered slots take the next puzzles and restart their chains
        pool.refill(done)
        if not pool.exhausted:
            grids = pool.grids()
            for g in groups:
                g.load(grids, done)
        if ticks % opts.sync_every:
            continue
        answered, occupied = pool.read()
        if progress is not None:
            progress(answered)
        if pool.exhausted and occupied == 0:
            break
        if pool.exhausted and occupied < pool.size:
            kept = pool.drop_empty()
            for g in groups:
                g.keep(kept)
    preds, halt_step, first_halt, slot_steps = pool.results()  # host copies: they wait for the device
    f_per_slot_step = sum(g.c * f_calls_per_step(g.model) for g in groups)
    return RunOutput(preds, halt_step, chain_steps=slot_steps * c, f_calls=slot_steps * f_per_slot_step,
                     wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - cpu0,
                     padding_rows=rows_run - slot_steps * c, first_halt=first_halt)


def _assemble(groups: list[_Group], parts: list[tuple[Tensor, Tensor]], c: int) -> tuple[Tensor, Tensor]:
    """Per-model (logits, q) -> [S, C, 81, V], [S, C] in chain-set column order."""
    if len(parts) == 1:  # one model: its columns are all chains, in order
        return parts[0]
    lg0, q0 = parts[0]
    logits = torch.empty(lg0.shape[0], c, *lg0.shape[2:], device=lg0.device, dtype=lg0.dtype)
    q = torch.empty(q0.shape[0], c, device=q0.device, dtype=q0.dtype)
    for g, (lg, qg) in zip(groups, parts):
        logits[:, g.cols], q[:, g.cols] = lg, qg
    return logits, q
