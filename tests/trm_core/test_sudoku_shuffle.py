"""Symmetry shuffles keep pairs valid; the symmetry key is invariant under them."""
import numpy as np

from trm_core.sudoku.generate import generate
from trm_core.sudoku.shuffle import random_symmetries, shuffle_pairs, symmetry_key
from trm_core.sudoku.solver import is_valid_solution, solve


def _pairs(n=100, seed=0):
    p, s, _ = generate(n, "easy", seed=seed, blanks_min=30, blanks_max=50)
    return p, s


def test_shuffled_pairs_stay_valid_and_uniquely_solvable():
    p, s = _pairs()
    sp, ss = shuffle_pairs(p, s, np.random.default_rng(0))
    assert is_valid_solution(ss).all()
    assert ((sp == 0) | (sp == ss)).all()
    assert ((sp == 0).sum(1) == (p == 0).sum(1)).all()
    counts, _, found = solve(sp, limit=2)
    assert (counts == 1).all() and (found == ss).all()


def test_cell_maps_are_permutations_and_both_transposition_cases_occur():
    cell_map, digit_map = random_symmetries(np.random.default_rng(1), 64)
    assert (np.sort(cell_map, axis=1) == np.arange(81)).all()
    assert (digit_map[:, 0] == 0).all() and (np.sort(digit_map[:, 1:], axis=1) == np.arange(1, 10)).all()
    # untransposed, output cells 0 and 1 (both row 0) read one source row; transposed, two different rows
    transposed = (cell_map[:, 1] // 9) != (cell_map[:, 0] // 9)
    assert transposed.any() and (~transposed).any()


def test_key_is_invariant_under_shuffles_and_separates_different_puzzles():
    p, s = _pairs(200, seed=3)
    keys = symmetry_key(p)
    for seed in range(3):
        sp, _ = shuffle_pairs(p, s, np.random.default_rng(seed))
        assert (symmetry_key(sp) == keys).all()
    assert len(np.unique(keys)) == len(p)
