"""On-the-fly Sudoku augmentation in torch, batched, on whatever device the tensors live on.

Two kinds of symmetry, as in the TRM paper's Sudoku training: one of the 8 dihedral maps of the square
(rotations and reflections of the 9x9 grid) and a relabelling of the digits 1-9. Tokens: 0 pad, 1 blank,
2..10 digits 1..9. Positions are axis 1 (81 cells, row-major) of every tensor here.
"""
from __future__ import annotations

import torch
from torch import Tensor

_DIGIT0 = 2  # token of digit 1


def _dihedral_maps() -> tuple[Tensor, Tensor]:
    """[8,81] maps with out[:, i] = x[:, map[i]] (transform t = t//4 transposes, then t%4 quarter turns)
    and the inverse maps."""
    grid = torch.arange(81).reshape(9, 9)
    maps = []
    for t in range(8):
        g = grid.T if t >= 4 else grid
        maps.append(torch.rot90(g, t % 4).reshape(81))
    fwd = torch.stack(maps)
    return fwd, torch.argsort(fwd, dim=1)


_FWD, _INV = _dihedral_maps()


def _gather_positions(x: Tensor, maps: Tensor, t: Tensor | int) -> Tensor:
    table = maps.to(x.device)
    if isinstance(t, int):
        return x[:, table[t]]
    idx = table[t.to(x.device)]  # [B, 81]
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, idx)


def dihedral(x: Tensor, t: Tensor | int) -> Tensor:
    """Apply dihedral transform t (0..7; one int, or a [B] long tensor, one per row) to x [B, 81, *rest]."""
    return _gather_positions(x, _FWD, t)


def inverse_dihedral(x: Tensor, t: Tensor | int) -> Tensor:
    """Undo dihedral(., t): inverse_dihedral(dihedral(x, t), t) == x."""
    return _gather_positions(x, _INV, t)


def _token_table(perm: Tensor, vocab: int) -> Tensor:
    """[B, vocab] token lookup: digit tokens 2..10 follow perm, every other token maps to itself."""
    table = torch.arange(vocab, device=perm.device).expand(perm.shape[0], vocab).clone()
    table[:, _DIGIT0:_DIGIT0 + 9] = perm.long() + _DIGIT0
    return table


def relabel_digits(grids: Tensor, perm: Tensor) -> Tensor:
    """grids [B,81] tokens; digit d (0..8) becomes perm[b, d]; blank and pad tokens stay. Keeps dtype."""
    # a fixed table size (all tokens < 16) avoids reading grids.max(), a device sync on GPU
    table = _token_table(perm, 16)
    return torch.gather(table, 1, grids.long()).to(grids.dtype)


def relabel_logits_back(logits: Tensor, perm: Tensor) -> Tensor:
    """[B,81,V] logits of a puzzle relabelled with perm -> logits in the original digit order (for TTA).

    Original digit d was shown to the model as perm[d], so its logit is the one at token perm[d] + 2.
    """
    b, n, v = logits.shape
    table = _token_table(perm, v)
    return torch.gather(logits, 2, table[:, None, :].expand(b, n, v))


def _random_perms(rows: int, size: int, generator: torch.Generator) -> Tensor:
    return torch.argsort(torch.rand(rows, size, generator=generator, device=generator.device), dim=1)


def augment_batch(inputs: Tensor, labels: Tensor, generator: torch.Generator, permute_blank: bool = False) -> tuple[Tensor, Tensor]:
    """One random dihedral map and digit relabelling per row, the same for inputs and labels [B,81].

    generator must live on the tensors' device; the draws depend only on its state and B.
    permute_blank=True reproduces the reference code's bug: it permutes tokens 1..9 (blank and digits
    1-8), so blank can swap with a digit and labels can contain a blank. For faithfulness runs only.
    """
    b = inputs.shape[0]
    t = torch.randint(0, 8, (b,), generator=generator, device=generator.device)
    if permute_blank:
        perm9 = _random_perms(b, 9, generator) + 1  # a permutation of tokens 1..9; token 10 stays
        table = torch.arange(16, device=inputs.device).expand(b, 16).clone()
        table[:, 1:10] = perm9.to(inputs.device)

        def relabel(g: Tensor) -> Tensor:
            return torch.gather(table, 1, g.long()).to(g.dtype)
    else:
        perm = _random_perms(b, 9, generator).to(inputs.device)

        def relabel(g: Tensor) -> Tensor:
            return relabel_digits(g, perm)
    return relabel(dihedral(inputs, t)), relabel(dihedral(labels, t))
