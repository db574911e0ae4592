"""Views of a puzzle (a dihedral transform and a digit relabelling) for many chains at once.

Each chain of a chain set may see the puzzle under its own view. `ChainViews` turns the views of C chains
into index tables once, so mapping a batch of puzzles into every chain's view, and every chain's logits
back to the original frame, is one gather each instead of a loop over chains. Gathers copy values, so the
result equals applying trm_core.augment's transforms chain by chain, bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from trm_core import augment

TOKENS = 16  # every token id is < 16 (0 pad, 1 blank, 2..10 digits, 11 HALT)


def digit_perms(n: int, seed: int = 0) -> Tensor:
    """[n, 9] random permutations of 0..8 (row p is digit permutation p), reproducible from `seed`."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(9, generator=g) for _ in range(n)]) if n else torch.empty(0, 9, dtype=torch.long)


def perm_family(n: int, seed: int = 0) -> Tensor:
    """[n, 9]: the identity first, then n - 1 random digit permutations (the TTA-over-relabellings views).

    The identity is included so that the family, like the 8 dihedral views, contains the puzzle as given;
    its first chain is then the plain single pass (what a chain0 fallback answers with).
    """
    return torch.cat([torch.arange(9).unsqueeze(0), digit_perms(n - 1, seed)]) if n > 0 else digit_perms(0)


class ChainViews:
    """Index tables for the views of C chains: chain c sees dihedral transform dihedrals[c] and digit
    permutation perms[perm_rows[c]] (a negative row = no relabelling)."""

    def __init__(self, dihedrals: Sequence[int], perm_rows: Sequence[int], perms: Tensor | None, device):
        self.c = len(dihedrals)
        self.identity = all(t == 0 for t in dihedrals) and all(p < 0 for p in perm_rows)
        cells = torch.arange(81).unsqueeze(0)
        self.fwd = torch.stack([augment.dihedral(cells, t)[0] for t in dihedrals]).to(device)  # [C, 81]
        self.inv = torch.stack([augment.inverse_dihedral(cells, t)[0] for t in dihedrals]).to(device)
        tokens = torch.arange(TOKENS).unsqueeze(0)
        tables = [tokens[0] if p < 0 else augment.relabel_digits(tokens, perms[p].unsqueeze(0))[0] for p in perm_rows]
        self.table = torch.stack(tables).to(device)  # [C, 16]: token u is shown to chain c as table[c, u]

    def forward(self, grids: Tensor) -> Tensor:
        """grids [S, 81] tokens -> [S, C, 81]: each puzzle as each chain sees it."""
        s = grids.shape[0]
        if self.identity:
            return grids.unsqueeze(1).expand(s, self.c, 81)
        viewed = grids[:, self.fwd]  # [S, C, 81]: cell i of chain c's view is cell fwd[c, i] of the puzzle
        return torch.gather(self.table.unsqueeze(0).expand(s, -1, -1), 2, viewed)

    def back(self, logits: Tensor) -> Tensor:
        """logits [S, C, 81, V] in each chain's frame -> the original frame (cells and digits)."""
        if self.identity:
            return logits
        s, c, cells, v = logits.shape
        out = torch.gather(logits, 2, self.inv.view(1, c, cells, 1).expand(s, c, cells, v))
        # The original digit u was shown as table[u], so its logit is the one at token table[u].
        return torch.gather(out, 3, self.table[:, :v].view(1, c, 1, v).expand(s, c, cells, v))
