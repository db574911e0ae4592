"""Numba Sudoku solver: bitmask constraint propagation + depth-first search with minimum remaining values.

Grids here are digit arrays (uint8, 0 = blank, 1..9 = digit), 81 cells row-major. Candidates are 9-bit
masks (bit d-1 = digit d). Propagation applies naked singles (a cell with one candidate removes it from its
units) and hidden singles (a digit with one place in a unit goes there) until nothing changes.

The search counts solutions up to a limit (limit 2 decides uniqueness) and counts guesses: each value tried
at a branching cell counts one guess, so a puzzle solved by propagation alone rates 0. With limit=1 this is
the same quantity as tdoku's `rating` column (guesses until the first solution), though the numbers differ
because tdoku propagates more (locked candidates etc.) and orders its guesses differently.
"""
from __future__ import annotations

import numpy as np
from numba import njit

ALL = 0x1FF  # all nine digits possible


def _units() -> np.ndarray:
    rows = [[r * 9 + c for c in range(9)] for r in range(9)]
    cols = [[r * 9 + c for r in range(9)] for c in range(9)]
    boxes = [[(br * 3 + i) * 9 + bc * 3 + j for i in range(3) for j in range(3)] for br in range(3) for bc in range(3)]
    return np.array(rows + cols + boxes, dtype=np.int64)


UNITS = _units()  # [27, 9] cell indices; numba freezes module-level arrays as constants


@njit(cache=True, inline="always")
def _popcount(m):
    n = 0
    while m:
        m &= m - 1
        n += 1
    return n


@njit(cache=True)
def _bit_index(bit):
    """Index of the only set bit (bit is a power of two)."""
    i = 0
    while bit > 1:
        bit >>= 1
        i += 1
    return i


@njit(cache=True)
def _propagate(cand):
    """Apply naked and hidden singles in place until a fixed point; False on a contradiction."""
    changed = True
    while changed:
        changed = False
        for u in range(27):
            unit = UNITS[u]
            solved = 0
            for k in range(9):
                m = np.int64(cand[unit[k]])
                if m & (m - 1) == 0:  # a single (or empty, caught below)
                    if m == 0 or solved & m:
                        return False  # empty cell or the same digit twice in a unit
                    solved |= m
            once = 0
            twice = 0
            for k in range(9):
                c = unit[k]
                m = np.int64(cand[c])
                if m & (m - 1) != 0:
                    m2 = m & ~solved
                    if m2 == 0:
                        return False
                    if m2 != m:
                        cand[c] = m2
                        changed = True
                    m = m2
                twice |= once & m
                once |= m
            if once != ALL:
                return False  # some digit has no place left in this unit
            hidden = once & ~twice & ~solved
            while hidden:
                bit = hidden & -hidden
                hidden &= hidden - 1
                for k in range(9):
                    c = unit[k]
                    if cand[c] & bit:
                        cand[c] = bit
                        changed = True
                        break
    return True


@njit(cache=True)
def _pick_cell(cand):
    """The unsolved cell with the fewest candidates (-1 when the grid is solved)."""
    best = -1
    best_n = 10
    for c in range(81):
        m = np.int64(cand[c])
        if m & (m - 1):
            n = _popcount(m)
            if n < best_n:
                best_n = n
                best = c
                if n == 2:
                    break
    return best


@njit(cache=True)
def _init_candidates(grid, cand):
    for c in range(81):
        d = grid[c]
        cand[c] = ALL if d == 0 else (1 << (d - 1))


@njit(cache=True)
def _search(grid, limit, solution, randomise):
    """Count solutions of `grid` up to `limit`; write the first into `solution`. Returns (count, guesses).

    Iterative DFS: stack[d] is the propagated state at depth d; rem[d] the values not yet tried at the
    branching cell cell_at[d]. randomise=True tries values in random order (for making random grids).
    """
    stack = np.empty((82, 81), dtype=np.uint16)
    rem = np.zeros(82, dtype=np.uint16)
    cell_at = np.zeros(82, dtype=np.int64)
    _init_candidates(grid, stack[0])
    count = 0
    guesses = 0
    depth = 0
    expand = True  # True: propagate stack[depth] and branch; False: backtrack
    while True:
        if expand:
            cand = stack[depth]
            if _propagate(cand):
                c = _pick_cell(cand)
                if c < 0:
                    count += 1
                    if count == 1:
                        for i in range(81):
                            solution[i] = _bit_index(cand[i]) + 1
                    if count >= limit:
                        return count, guesses
                else:
                    rem[depth] = cand[c]
                    cell_at[depth] = c
        # find the deepest level with an untried value
        while rem[depth] == 0:
            if depth == 0:
                return count, guesses
            depth -= 1
        m = np.int64(rem[depth])
        bit = m & -m
        if randomise:
            k = np.random.randint(0, _popcount(m))
            left = m
            for _ in range(k):
                left &= left - 1
            bit = left & -left
        rem[depth] = m & ~bit
        stack[depth + 1, :] = stack[depth]
        stack[depth + 1, cell_at[depth]] = bit
        rem[depth + 1] = 0
        depth += 1
        guesses += 1
        expand = True


@njit(cache=True)
def count_solutions(grid, limit):
    """(number of solutions up to limit, guesses, first solution) of one digit grid."""
    sol = np.zeros(81, dtype=np.uint8)
    n, g = _search(grid, limit, sol, False)
    return n, g, sol


@njit(cache=True)
def solve_batch(grids, limit):
    """Solve each row of grids [N,81] (digits, 0 blank): solution counts (capped at limit), guesses, solutions."""
    n = grids.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    guesses = np.zeros(n, dtype=np.int64)
    sols = np.zeros((n, 81), dtype=np.uint8)
    for i in range(n):
        counts[i], guesses[i] = _search(grids[i], limit, sols[i], False)
    return counts, guesses, sols


def solve(grids: np.ndarray, limit: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve digit grids [N,81] or [81] (0 blank, 1..9 digits).

    Returns (counts, guesses, solutions): counts capped at `limit` (1 = unique when limit >= 2), the guess
    count of the whole search (a difficulty rating), and the first solution found (zeros if none).
    """
    g = np.ascontiguousarray(np.atleast_2d(grids), dtype=np.uint8)
    if g.shape[-1] != 81:
        raise ValueError(f"expected grids with 81 cells, got shape {grids.shape}")
    return solve_batch(g, int(limit))


def is_valid_solution(grids: np.ndarray) -> np.ndarray:
    """[N,81] digit grids -> [N] bool: every row, column and box holds the digits 1..9 exactly once."""
    g = np.atleast_2d(np.asarray(grids, dtype=np.int64))
    # blanks/out-of-range cells get bit 0, so their unit can never reach all nine bits
    bits = np.where((g >= 1) & (g <= 9), 1 << np.clip(g - 1, 0, 8), 0)
    # nine cells whose bits OR to all nine digits hold each digit exactly once
    return (np.bitwise_or.reduce(bits[:, UNITS], axis=2) == ALL).all(axis=1)
