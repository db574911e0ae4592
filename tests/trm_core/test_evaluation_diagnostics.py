"""Diagnostics give the known answers on hand-made inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trm_core.config import ModelConfig
from trm_core.evaluation import diagnostics as D
from trm_core.model import TRM


def test_oracle_accuracy_counts_a_puzzle_any_chain_solves():
    correct = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], dtype=bool)
    assert D.oracle_accuracy(correct) == 0.75


def test_failure_jaccard_is_overlap_over_union_of_failures():
    a = np.array([0, 0, 1, 1, 0], dtype=bool)  # fails 0, 1, 4
    b = np.array([0, 1, 0, 1, 1], dtype=bool)  # fails 0, 2
    assert D.failure_jaccard(a, b) == pytest.approx(1 / 4)
    assert D.failure_jaccard(np.ones(3, bool), np.ones(3, bool)) == 1.0
    m = D.failure_jaccard_matrix(np.stack([a, b, a], 1))
    assert m.shape == (3, 3) and m[0, 2] == 1.0 and m[0, 1] == m[1, 0]


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    steps, ratings = rng.integers(1, 5, 200), rng.integers(0, 30, 200) + rng.integers(1, 5, 200)
    assert D.halting_vs_difficulty(steps, ratings) == pytest.approx(spearmanr(steps, ratings).statistic, abs=1e-12)
    assert np.isnan(D.spearman(np.ones(5), np.arange(5)))


def test_halting_histogram_counts_steps_one_to_max():
    assert D.halting_histogram(np.array([1, 1, 3, 4, 4, 4]), 4) == [2, 0, 1, 3]


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident():
    prob = np.array([0.25] * 4 + [0.75] * 4)
    correct = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=bool)
    assert D.expected_calibration_error(prob, correct, n_bins=4)["ece"] == pytest.approx(0.0)
    over = D.expected_calibration_error(np.full(10, 0.95), np.zeros(10, bool))
    assert over["ece"] == pytest.approx(0.95) and over["bins"][0]["count"] == 10


def test_winner_share_and_consistency():
    # puzzle 0: chain 1 wins every step; puzzle 1: chain 0 wins steps 1-2, chain 1 wins the last.
    loss = np.array([[[2, 1], [2, 1], [2, 1]], [[0, 1], [0, 1], [1, 0]]], dtype=float)
    w = D.winner_stats(loss)
    assert w["share"] == [0.0, 1.0]
    assert w["consistency"] == pytest.approx((3 + 1) / 6)


def test_selection_vs_capability_reruns_failures_under_permutations():
    torch.manual_seed(0)
    model = TRM(ModelConfig(hidden=16, multiple_of=16, h_cycles=1, l_cycles=1, max_act_steps=2, k=1)).eval()
    labels = torch.randint(2, 11, (6, 81))
    inputs = labels.clone()
    inputs[:, :40] = 1
    failed = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    out = D.selection_vs_capability(model, inputs, labels, failed, n_perms=3, batch_rows=2)
    # A random-init model solves nothing under any relabelling: the ceiling is the base accuracy.
    assert out == {"failures": 3, "solved_by_some_perm": 0.0, "implied_ceiling": 0.5}
    assert D.selection_vs_capability(model, inputs, labels, np.zeros(6, bool))["implied_ceiling"] == 1.0


def test_selection_vs_capability_counts_a_failure_some_relabelling_solves():
    from trm_core.evaluation.views import digit_perms

    model = TRM(ModelConfig(hidden=16, multiple_of=16, h_cycles=1, l_cycles=1, max_act_steps=2, k=1)).eval()
    with torch.no_grad():  # a "model" that answers digit 1 (token 2) in every cell, whatever it sees
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[2] = 10.0
    labels = torch.stack([torch.full((81,), 5), torch.full((81,), 7)])
    inputs = torch.ones_like(labels)
    perms = digit_perms(4, seed=1)
    # Shown relabelled by perm, its constant answer maps back to the digit d with perm[d] = 0 (digit 1).
    expect = [bool((perms[:, d] == 0).any()) for d in (3, 5)]
    out = D.selection_vs_capability(model, inputs, labels, np.ones(2, bool), n_perms=4, seed=1)
    assert out["solved_by_some_perm"] == sum(expect) / 2 and 0 < sum(expect)
