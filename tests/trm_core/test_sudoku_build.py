"""Dataset builds: reproducible for a seed, split by symmetry class, shuffles valid."""
import json

import numpy as np
import pytest

from trm_core.config import ConfigError
from trm_core.sudoku.build import build_dataset
from trm_core.sudoku.csvio import write_csv
from trm_core.sudoku.generate import generate
from trm_core.sudoku.shuffle import symmetry_key
from trm_core.sudoku.solver import is_valid_solution


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "p.csv"
    p, s, r = generate(120, "easy", seed=9, blanks_min=35, blanks_max=50)
    write_csv(path, p, s, r, "gen")
    return path


def _arrays(folder):
    return {f.name: np.load(f) for f in sorted(folder.glob("*.npy"))}


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, csv_path):
    build_dataset(csv_path, tmp_path / "a", subsample=40, aug=5, seed=1, n_test=20)
    build_dataset(csv_path, tmp_path / "b", subsample=40, aug=5, seed=1, n_test=20)
    build_dataset(csv_path, tmp_path / "c", subsample=40, aug=5, seed=2, n_test=20)
    a, b, c = (_arrays(tmp_path / k) for k in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train_inputs.npy"], c["train_inputs.npy"])
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert meta["n_train_rows"] == 240 and meta["seed"] == 1 and len(meta["source_sha256"]) == 64


def test_train_rows_are_valid_shuffles_and_no_test_class_is_in_train(tmp_path, csv_path):
    build_dataset(csv_path, tmp_path / "d", subsample=40, aug=5, seed=3, n_test=20)
    arr = _arrays(tmp_path / "d")
    x, y = arr["train_inputs.npy"].astype(int) - 1, arr["train_labels.npy"].astype(int) - 1
    assert is_valid_solution(y).all() and ((x == 0) | (x == y)).all()
    keys = symmetry_key(x).reshape(40, 6)
    assert (keys == keys[:, :1]).all()  # each block of 6 rows is one puzzle and its shuffles
    test_keys = symmetry_key(arr["test_inputs.npy"].astype(int) - 1)
    assert not set(keys[:, 0]) & set(test_keys)


def test_too_many_puzzles_is_a_one_line_config_error(tmp_path, csv_path):
    with pytest.raises(ConfigError, match=r"has 120 puzzles, but 150 were requested \(train 100 \+ test 50\)"):
        build_dataset(csv_path, tmp_path / "e", subsample=100, aug=1, seed=0, n_test=50)
    assert not (tmp_path / "e").exists()
