"""The evaluation's slot pool: which puzzle each slot holds, handed out and answered on the device.

Like the trainer's pool (trm_core.pool), a slot whose puzzle is answered takes the next puzzle at once, so
batches stay full as puzzles halt. Everything per step is a tensor op with fixed shapes (no host sync): a
cumulative sum over the answered slots hands out the next puzzle indices, and answers are scattered into
per-puzzle buffers. Puzzle index N marks an empty slot; buffers have a spare row N that empty slots write to.
The host looks only in `read()`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from trm_core.evaluation.rules import halted


class SlotPool:
    def __init__(self, inputs: Tensor, slots: int, max_steps: int):
        """inputs [N, 81] long on the device; `slots` <= N puzzle slots, filled with puzzles 0..slots-1."""
        dev, n = inputs.device, inputs.shape[0]
        self.n, self.max_steps = n, max_steps
        self.grids_all = torch.cat([inputs, torch.ones(1, 81, dtype=torch.long, device=dev)])
        self.puzzle = torch.arange(slots, device=dev)
        self.step = torch.zeros(slots, dtype=torch.long, device=dev)
        """ACT steps the slot's puzzle has run (1-based after advance())."""
        self.occupied = torch.ones(slots, dtype=torch.bool, device=dev)
        self.first = torch.full((slots,), max_steps, dtype=torch.long, device=dev)
        """First step at which any chain of the slot had sigmoid(q) > tau (max_steps until then)."""
        self.next = torch.tensor(slots, device=dev)
        self.slot_steps = torch.zeros((), dtype=torch.long, device=dev)
        """ACT steps run by occupied slots: the cost, in slot-steps."""
        self.unanswered = torch.zeros((), dtype=torch.bool, device=dev)
        self.answers: Tensor | None = None
        self.halt_at = torch.zeros(n + 1, dtype=torch.long, device=dev)
        self.first_at = torch.full((n + 1,), max_steps, dtype=torch.long, device=dev)
        self.exhausted = slots >= n
        """True once the host has seen that no puzzle is left to load."""

    @property
    def size(self) -> int:
        return self.puzzle.shape[0]

    def grids(self) -> Tensor:
        """[S, 81] the puzzle of every slot (an all-blank grid for empty ones)."""
        return self.grids_all[self.puzzle]

    def advance(self) -> None:
        """Count the ACT step every slot is about to run."""
        self.step = self.step + 1
        self.slot_steps += self.occupied.sum()

    def answer(self, done: Tensor, pred: Tensor, q: Tensor, tau: float | None) -> Tensor:
        """Store the answers `pred` [S, 81] or [S, R, 81] of the occupied slots that are `done`; returns those."""
        self.unanswered |= ((self.step >= self.max_steps) & self.occupied & ~done).any()
        done = done & self.occupied
        if tau is not None:
            self.first = torch.where(halted(q, tau).any(1), torch.minimum(self.first, self.step), self.first)
        if self.answers is None:
            self.answers = torch.zeros(self.n + 1, *pred.shape[1:], dtype=torch.long, device=pred.device)
        target = torch.where(done, self.puzzle, self.n)
        self.answers[target], self.halt_at[target], self.first_at[target] = pred.long(), self.step, self.first
        return done

    def refill(self, done: Tensor) -> None:
        """Answered slots take the next puzzles, in slot order (empty once none is left)."""
        fresh = self.next + torch.cumsum(done, 0) - 1
        loaded = done & (fresh < self.n)
        self.puzzle = torch.where(done, torch.where(loaded, fresh, self.n), self.puzzle)
        self.occupied = (self.occupied & ~done) | loaded
        self.next = self.next + done.sum()
        self.step = torch.where(done, 0, self.step)
        self.first = torch.where(done, self.max_steps, self.first)

    def read(self) -> tuple[int, int]:
        """One host sync -> (puzzles answered, occupied slots). Raises if a slot passed the last step unanswered."""
        nxt, occupied, bad = torch.stack([self.next, self.occupied.sum(), self.unanswered.long()]).tolist()
        if bad:
            raise RuntimeError("decide() left puzzles unanswered at the last step")
        self.exhausted = nxt >= self.n
        return min(nxt, self.n) - occupied, occupied

    def drop_empty(self) -> Tensor:
        """Remove the empty slots (only once exhausted: nothing can load into them); returns the kept mask."""
        kept = self.occupied
        self.puzzle, self.step, self.first, self.occupied = self.puzzle[kept], self.step[kept], self.first[kept], kept[kept]
        return kept

    def results(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(answers [N, ...], answer step [N], first halting step [N], slot-steps) on the host."""
        n = self.n
        return (self.answers[:n].cpu().numpy(), self.halt_at[:n].cpu().numpy(), self.first_at[:n].cpu().numpy(),
                int(self.slot_steps))
