"""Puzzle generation: blank counts, difficulty windows, seeds."""
import numpy as np

from trm_core.sudoku.generate import DIFFICULTY_RATINGS, generate


def test_easy_puzzles_keep_their_solution_as_givens_and_hit_the_blank_range():
    puzzles, solutions, _ = generate(300, "easy", seed=0, blanks_min=20, blanks_max=35)
    blanks = (puzzles == 0).sum(1)
    assert blanks.min() >= 20 and blanks.max() <= 35
    assert ((puzzles == 0) | (puzzles == solutions)).all()


def test_same_seed_same_puzzles_other_seed_other_puzzles():
    a = generate(20, "easy", seed=5)[0]
    assert (a == generate(20, "easy", seed=5)[0]).all()
    assert (a != generate(20, "easy", seed=6)[0]).any()


def test_medium_and_hard_ratings_fall_in_their_windows():
    for difficulty in ("medium", "hard"):
        _, _, ratings = generate(20, difficulty, seed=0)
        lo, hi = DIFFICULTY_RATINGS[difficulty]
        assert ((ratings >= lo) & (ratings <= hi)).all()


def test_minimal_puzzles_have_few_clues():
    puzzles, _, _ = generate(50, "hard", seed=1)
    assert np.mean((puzzles > 0).sum(1)) < 30
