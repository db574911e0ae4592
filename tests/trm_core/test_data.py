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


def test_every_source_says_what_its_puzzles_are(tmp_path):
    from trm_core.data import data_label
    from trm_core.sudoku.shipped import SHIPPED_LABEL

    builtin = DataConfig(source="builtin", n_train=10, n_test=10)
    assert load_splits(builtin)[1].label == data_label(builtin) == SHIPPED_LABEL
    gen = DataConfig(source="generate", n_train=10, n_test=5, cache_dir=str(tmp_path))
    assert "not Sudoku-Extreme" in data_label(gen) and load_splits(gen)[0].label == data_label(gen)
    p, s, r = generate(40, "easy", seed=2, blanks_min=30, blanks_max=40)
    write_csv(tmp_path / "p.csv", p, s, r, "gen")
    build_dataset(tmp_path / "p.csv", tmp_path / "ds", subsample=20, aug=1, seed=0, n_test=10, label="Sudoku-Extreme")
    built = DataConfig(source="dir", path=str(tmp_path / "ds"), n_train=20, n_test=10)
    train, test = load_splits(built)
    assert train.label == test.label == data_label(built) == "Sudoku-Extreme"


def test_a_missing_dataset_folder_names_the_commands_that_build_it(tmp_path):
    folder = tmp_path / "data" / "paper"
    with pytest.raises(ConfigError) as err:
        load_splits(DataConfig(source="dir", path=str(folder), n_test=None))
    msg = str(err.value)
    assert "\n" not in msg and f"no dataset folder {folder}" in msg
    assert f"sweeper data build --shipped --out {folder}" in msg
    assert f"--test-csv test.csv --label Sudoku-Extreme --out {folder}" in msg


def test_n_test_null_takes_every_test_puzzle_of_a_built_dataset_and_needs_one(tmp_path):
    from trm_core.sudoku.build import build_shipped

    meta = build_shipped(tmp_path / "ds", subsample=20, aug=3, seed=0)
    train, test = load_splits(DataConfig(source="dir", path=str(tmp_path / "ds"), n_train=20, n_test=None))
    _check(train, 20 * 4)
    _check(test, meta["n_test_puzzles"])
    assert _disjoint(train, test) and test.label == meta["label"]
    with pytest.raises(ConfigError, match="data.n_test: null .* needs data.source=dir"):
        DataConfig(source="builtin", n_test=None)


def test_the_paper_pipeline_trains_on_a_shipped_build(tmp_path):
    """The paper presets' data path (source=dir with stored shuffles, every test puzzle) on shipped puzzles."""
    from trm_core.config import resolve
    from trm_core.sudoku.build import build_shipped
    from trm_core.trainer import train

    build_shipped(tmp_path / "ds", subsample=30, aug=4, seed=0)
    cfg = resolve("smoke", {"data.source": "dir", "data.path": str(tmp_path / "ds"), "data.n_train": 30,
                            "data.n_test": None, "steps": 6})
    final = train(cfg)
    assert 0.0 <= final["eval/puzzle_acc"] <= 1.0 and final["cost/chain_steps"] > 0
