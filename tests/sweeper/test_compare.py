"""sweeper.compare: McNemar against scipy's binomial test, bootstrap coverage, pairing by puzzle id."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sweeper.results import compare as C


@pytest.mark.parametrize("wins,losses", [(0, 0), (1, 0), (3, 9), (10, 10), (17, 4), (0, 25), (120, 90)])
def test_mcnemar_equals_binomial_test_on_discordant_pairs(wins, losses):
    expected = 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue
    assert C.mcnemar_exact(wins, losses) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_compare_counts_discordant_pairs_and_uses_mcnemar():
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.7, rng.random(300) < 0.6
    res = C.compare([(a, b)], cost=2.0, base_cost=8.0)
    wins, losses = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (res.wins, res.losses, res.n) == (wins, losses, 300)
    assert res.p_value == pytest.approx(stats.binomtest(wins, wins + losses, 0.5).pvalue)
    assert res.delta == pytest.approx(a.mean() - b.mean())
    assert res.ci_low <= res.delta <= res.ci_high
    assert res.cost_ratio == pytest.approx(0.25)


def test_identical_results_give_p_one_and_zero_interval():
    a = np.array([True, False, True, True, False])
    res = C.compare([(a, a.copy())])
    assert res.p_value == 1.0
    assert res.delta == 0.0 and res.ci_low == 0.0 and res.ci_high == 0.0
    assert res.verdict() == "no difference"


def test_bootstrap_interval_covers_the_true_delta_most_of_the_time():
    # Synthetic paired data with a known delta of +0.10 (P(up) = 0.15, P(down) = 0.05).
    rng = np.random.default_rng(0)
    covered, reps, n = 0, 200, 400
    for r in range(reps):
        u = rng.random(n)
        base = rng.random(n) < 0.5
        trial = base.copy()
        trial[u < 0.15] = True
        trial[(u >= 0.15) & (u < 0.20)] = False
        base[u < 0.15] = False
        base[(u >= 0.15) & (u < 0.20)] = True
        low, high = C.bootstrap_delta_ci([(trial, base)], samples=1000, seed=r)
        covered += low <= 0.10 <= high
    assert covered / reps >= 0.90  # nominal 95%; allow for Monte Carlo noise over 200 replications


def test_pooled_seeds_resample_within_each_seed():
    a1, b1 = np.ones(50, bool), np.zeros(50, bool)  # seed 1: every pair a win
    a2, b2 = np.zeros(50, bool), np.zeros(50, bool)  # seed 2: every pair a tie
    res = C.compare([(a1, b1), (a2, b2)])
    # Within-seed resampling keeps 50 wins in every resample: the interval has no width.
    assert res.delta == pytest.approx(0.5) and res.ci_low == pytest.approx(0.5) and res.ci_high == pytest.approx(0.5)
    assert res.verdict() == "better"


def test_paired_matches_puzzles_by_id_not_by_row(tmp_path):
    trial = C.PerPuzzle(np.array([5, 6, 7], np.uint64), {"halt_first": np.array([True, False, True])}, {"halt_first": 3.0})
    base = C.PerPuzzle(np.array([7, 9, 5], np.uint64), {"tta": np.array([False, True, True])}, {"tta": 24.0})
    a, b = C.paired(trial, base)
    assert a.tolist() == [True, True] and b.tolist() == [True, False]  # puzzles 5 and 7
    res = C.compare_files([trial], [base])
    assert res.n == 2 and res.cost_ratio == pytest.approx(0.125)


def test_per_puzzle_file_round_trip(tmp_path):
    path = tmp_path / "per_puzzle.npz"
    np.savez(path, ids=np.array([1, 2], np.uint64), **{"correct/tta": np.array([True, False]), "cost/tta": np.float64(8.5)})
    p = C.PerPuzzle.load(path)
    assert p.ids.tolist() == [1, 2] and p.correct["tta"].tolist() == [True, False] and p.cost == {"tta": 8.5}


def test_seed_summary():
    assert C.seed_summary([0.5]) == (0.5, 0.0)
    mean, std = C.seed_summary([0.4, 0.6, None])
    assert mean == pytest.approx(0.5) and std == pytest.approx(np.std([0.4, 0.6], ddof=1))
