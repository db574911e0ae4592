"""load_splits over every source: sizes, tokens, caching, disjoint symmetry classes, clear errors."""
import time

import numpy as np
import pytest

from trm_core.config import ConfigError, DataConfig
from trm_core.data import PuzzleSet, load_splits
from trm_core.sudoku.build import build_dataset
from trm_core.sudoku.csvio import write_csv
from trm_core.sudoku.generate import generate
from trm_core.sudoku.shuffle import symmetry_key
from trm_core.sudoku.solver import is_valid_solution


def _check(ps: PuzzleSet, n: int):
    assert len(ps) == n and ps.inputs.shape == (n, 81) and ps.inputs.dtype == np.uint8
    assert ps.ratings.shape == (n,) and ps.ratings.dtype == np.float32
    assert ps.inputs.min() >= 1 and ps.inputs.max() <= 10 and ps.labels.min() >= 2
    assert is_valid_solution(ps.labels.astype(int) - 1).all()
    assert ((ps.inputs == 1) | (ps.inputs == ps.labels)).all()


def _disjoint(train: PuzzleSet, test: PuzzleSet) -> bool:
    return not set(symmetry_key(train.inputs.astype(int) - 1)) & set(symmetry_key(test.inputs.astype(int) - 1))


def test_generated_splits_are_cached_identical_and_disjoint(tmp_path):
    cfg = DataConfig(source="generate", n_train=300, n_test=50, blanks_min=20, blanks_max=35, seed=3, cache_dir=str(tmp_path))
    train, test = load_splits(cfg)
    t0 = time.perf_counter()
    train2, test2 = load_splits(cfg)
    assert time.perf_counter() - t0 < 0.5
    assert np.array_equal(train.inputs, train2.inputs) and np.array_equal(test.labels, test2.labels)
    _check(train, 300)
    _check(test, 50)
    assert _disjoint(train, test)
    blanks = (train.inputs == 1).sum(1)
    assert blanks.min() >= 20 and blanks.max() <= 35


def test_generate_honours_sweeper_cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPER_CACHE", str(tmp_path))
    load_splits(DataConfig(source="generate", n_train=10, n_test=5, difficulty="medium"))
    assert list((tmp_path / "sudoku-generated").glob("medium-n15-seed0-*/inputs.npy"))


def test_builtin_gives_seeded_disjoint_real_puzzles():
    cfg = DataConfig(source="builtin", n_train=300, n_test=200, seed=1)
    train, test = load_splits(cfg)
    _check(train, 300)
    _check(test, 200)
    assert _disjoint(train, test)
    assert np.array_equal(load_splits(cfg)[0].inputs, train.inputs)
    assert not np.isnan(train.ratings).any()


def test_builtin_too_large_is_a_config_error():
    with pytest.raises(ConfigError, match="builtin puzzle set has 5000 puzzles"):
        load_splits(DataConfig(source="builtin", n_train=5000, n_test=1))


def test_csv_and_built_dir_sources(tmp_path):
    p, s, r = generate(60, "easy", seed=2, blanks_min=30, blanks_max=40)
    write_csv(tmp_path / "p.csv", p, s, r, "gen")
    train, test = load_splits(DataConfig(source="csv", path=str(tmp_path / "p.csv"), n_train=40, n_test=20))
    _check(train, 40)
    assert _disjoint(train, test)
    build_dataset(tmp_path / "p.csv", tmp_path / "ds", subsample=30, aug=3, seed=0, n_test=10)
    train, test = load_splits(DataConfig(source="dir", path=str(tmp_path / "ds"), n_train=20, n_test=10))
    _check(train, 80)
    _check(test, 10)
    with pytest.raises(ConfigError, match="has 30 train puzzles, but data.n_train=31"):
        load_splits(DataConfig(source="dir", path=str(tmp_path / "ds"), n_train=31, n_test=10))
    with pytest.raises(ConfigError, match="no metadata.json"):
        load_splits(DataConfig(source="dir", path=str(tmp_path), n_train=1, n_test=1))
    with pytest.raises(ConfigError, match="no such CSV file"):
        load_splits(DataConfig(source="csv", path=str(tmp_path / "nope.csv")))
