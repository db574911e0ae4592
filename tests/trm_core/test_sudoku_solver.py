"""The numba solver: solution counts, uniqueness, guess ratings and grid validity."""
import numpy as np

from trm_core.sudoku.generate import generate
from trm_core.sudoku.solver import is_valid_solution, solve


def test_generated_easy_puzzles_have_one_solution_equal_to_the_answer():
    puzzles, solutions, _ = generate(200, "easy", seed=1, blanks_min=30, blanks_max=55)
    counts, _, found = solve(puzzles, limit=3)
    assert (counts == 1).all()
    assert (found == solutions).all()
    assert is_valid_solution(solutions).all()


def test_empty_grid_has_many_solutions_and_the_first_is_valid():
    counts, guesses, found = solve(np.zeros(81, np.uint8), limit=5)
    assert counts[0] == 5 and guesses[0] > 0
    assert is_valid_solution(found).all()


def test_contradictory_givens_have_no_solution():
    grid = np.zeros(81, np.uint8)
    grid[0] = grid[1] = 5  # the same digit twice in row 1
    assert solve(grid, limit=2)[0][0] == 0


def test_removing_a_given_from_a_minimal_puzzle_breaks_uniqueness():
    puzzles, _, _ = generate(3, "medium", seed=2)
    for p in puzzles:
        clues = np.flatnonzero(p)
        weaker = np.repeat(p[None], len(clues), axis=0)
        weaker[np.arange(len(clues)), clues] = 0
        assert (solve(weaker, limit=2)[0] == 2).all()


def test_validity_check_rejects_a_repeated_digit_and_a_blank():
    _, solutions, _ = generate(1, "easy", seed=3)
    bad = solutions.copy()
    bad[0, [0, 1]] = bad[0, [1, 0]]  # swap within a row: rows stay fine, columns break
    blank = solutions.copy()
    blank[0, 40] = 0
    assert not is_valid_solution(bad)[0] and not is_valid_solution(blank)[0]
