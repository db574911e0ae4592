"""Sudoku symmetries on digit grids (numpy, vectorised over rows): random shuffles and a symmetry-class key.

A shuffle is an element of the Sudoku symmetry group: relabel the digits 1-9 (blank stays blank),
transpose with probability 0.5, permute the bands and the rows within each band, and the stacks and the
columns within each stack. It maps a valid (puzzle, solution) pair to a valid pair.
"""
from __future__ import annotations

import numpy as np

_ROW = np.arange(81) // 9
_COL = np.arange(81) % 9
_BOX = (_ROW // 3) * 3 + _COL // 3
# Maps are built in uint8 (cells 0..80, digits 0..9): a 1000 x 1001-row build moves 8x fewer bytes than
# with numpy's default int64 and takes a few seconds instead of tens.


def _line_orders(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 9] row (or column) orders: a random band order and a random order within each band."""
    bands = np.argsort(rng.random((n, 3)), axis=1)
    within = np.argsort(rng.random((n, 3, 3)), axis=2)
    return (bands[:, :, None] * 3 + within).reshape(n, 9).astype(np.uint8)


def random_symmetries(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n random symmetries: cell maps [n,81] (out[i] = grid[map[i]]) and digit maps [n,10] (0 -> 0)."""
    rows, cols = _line_orders(rng, n), _line_orders(rng, n)
    transpose = rng.random(n) < 0.5
    r_src = rows[:, _ROW]  # [n, 81] source row of each output cell
    c_src = cols[:, _COL]
    straight = r_src * np.uint8(9) + c_src
    # transposing first and then permuting reads the source at (col, row)
    cell_map = np.where(transpose[:, None], c_src * np.uint8(9) + r_src, straight)
    digits = np.zeros((n, 10), dtype=np.uint8)
    digits[:, 1:] = np.argsort(rng.random((n, 9)), axis=1).astype(np.uint8) + np.uint8(1)
    return cell_map, digits


def apply_symmetries(grids: np.ndarray, cell_map: np.ndarray, digit_map: np.ndarray) -> np.ndarray:
    """Apply symmetries row-wise to digit grids [n,81] (0 blank); returns a new uint8 array."""
    moved = np.take_along_axis(np.asarray(grids, dtype=np.uint8), cell_map, axis=1)
    return np.take_along_axis(digit_map.astype(np.uint8, copy=False), moved, axis=1)


def shuffle_pairs(puzzles: np.ndarray, solutions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random symmetry per row, the same one applied to the puzzle and its solution."""
    cell_map, digit_map = random_symmetries(rng, len(puzzles))
    return apply_symmetries(puzzles, cell_map, digit_map), apply_symmetries(solutions, cell_map, digit_map)


_K = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """A fixed 64-bit integer mixer (splitmix64's finaliser), elementwise; wraps on overflow by design."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hash of the unordered pair {a, b}, so that transposition (rows <-> columns) leaves it unchanged."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return _mix(lo * _K + _mix(hi))


def _refine(h: np.ndarray, q: np.ndarray, clue: np.ndarray) -> np.ndarray:
    """One colour-refinement round: each clue's new colour hashes its colour with the sums of the colours
    in its row, column, box, band, stack and among clues of the same digit (all group-invariant)."""
    n = len(h)
    g = h.reshape(n, 9, 9)
    row, col = g.sum(2, dtype=np.uint64)[:, _ROW], g.sum(1, dtype=np.uint64)[:, _COL]
    box = g.reshape(n, 3, 3, 3, 3).sum((2, 4), dtype=np.uint64).reshape(n, 9)[:, _BOX]
    band = g.reshape(n, 3, 27).sum(2, dtype=np.uint64)[:, _ROW // 3]
    stack = g.reshape(n, 9, 3, 3).sum((1, 3), dtype=np.uint64)[:, _COL // 3]
    digit = np.stack([np.where(q == d, h, 0).sum(1, dtype=np.uint64) for d in range(10)], axis=1)
    same_digit = np.take_along_axis(digit, q.astype(np.int64), axis=1)
    # (row, band) and (col, stack) swap together under transposition, so pair them as units
    new = _mix(h * _K + _pair(_mix(row) + band, _mix(col) + stack) + _mix(box ^ _K) + _mix(same_digit + _K))
    return np.where(clue, new | np.uint64(1), np.uint64(0))


def symmetry_key(puzzles: np.ndarray, rounds: int = 3) -> np.ndarray:
    """[N,81] digit puzzles -> [N] uint64 keys, equal for all puzzles in one Sudoku symmetry class.

    Not a canonical form (that needs a search over the ~1.2e12 group elements) but an invariant of the
    whole group (digit relabelling, transposition, band/stack and row/column-within permutations): colour
    refinement (Weisfeiler-Lehman) on the clue graph, where each clue's colour is repeatedly hashed with the
    colour sums of its row, column, box, band, stack and same-digit clues, and the key hashes the multiset
    of final colours. Every symmetry maps rows to rows (or, transposed, to columns) and digit classes to
    digit classes, so equivalent puzzles always share a key, which is what a train/test split needs. Two
    inequivalent puzzles may share one too; that only drops an extra puzzle in deduplication.
    """
    q = np.asarray(puzzles).astype(np.int64)
    clue = q > 0
    h = np.where(clue, np.uint64(1), np.uint64(0))
    with np.errstate(over="ignore"):
        for _ in range(rounds):
            h = _refine(h, q, clue)
        # a sum of mixed colours is order-free, i.e. a hash of the multiset (blanks mix to 0)
        return _mix(_mix(h).sum(axis=1, dtype=np.uint64))
