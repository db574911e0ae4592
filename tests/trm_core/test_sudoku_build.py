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


@pytest.fixture(scope="module")
def test_csv_path(tmp_path_factory):
    """A separate test file whose first rows are known, plus one train puzzle's class among later rows."""
    path = tmp_path_factory.mktemp("csv") / "test.csv"
    p, s, r = generate(30, "easy", seed=11, blanks_min=35, blanks_max=50)
    write_csv(path, p, s, r, "gen-test")
    return path


def test_a_test_csv_gives_its_first_rows_in_file_order_and_train_avoids_their_classes(tmp_path, csv_path, test_csv_path):
    from trm_core.sudoku.csvio import read_csv
    from trm_core.sudoku.shuffle import shuffle_pairs

    # plant a symmetry of train puzzle 0 among the test rows: the train pick must then skip that puzzle
    train = read_csv(csv_path)
    twin_q, twin_a = shuffle_pairs(train.puzzles[:1], train.solutions[:1], np.random.default_rng(5))
    test = read_csv(test_csv_path)
    planted = tmp_path / "test_planted.csv"
    q = np.concatenate([test.puzzles[:3], twin_q, test.puzzles[3:]])
    a = np.concatenate([test.solutions[:3], twin_a, test.solutions[3:]])
    write_csv(planted, q, a, np.zeros(len(q), np.float32), "planted")

    every_other_class = len(np.unique(symmetry_key(train.puzzles))) - 1  # so puzzle 0 would be picked if allowed
    meta = build_dataset(csv_path, tmp_path / "ds", subsample=every_other_class, aug=2, seed=0, n_test=12,
                         test_csv=planted, label="my label")
    arr = _arrays(tmp_path / "ds")
    assert np.array_equal(arr["test_inputs.npy"], q[:12] + 1)  # the first 12 rows, in file order
    assert np.array_equal(arr["test_labels.npy"], a[:12] + 1)
    train_keys = symmetry_key(arr["train_inputs.npy"][::3].astype(int) - 1)
    assert not set(train_keys) & set(symmetry_key(q[:12]))
    assert symmetry_key(train.puzzles[:1])[0] not in set(train_keys)  # its twin is a test puzzle
    assert meta["label"] == "my label" and meta["n_test_puzzles"] == 12
    roles = {s["role"]: s for s in meta["sources"]}
    assert roles["test"]["file"] == "test_planted.csv" and roles["test"]["used"] == "the first 12 rows in file order"
    from trm_core.sudoku.build import file_sha256

    assert roles["test"]["sha256"] == file_sha256(planted) and roles["train"]["sha256"] == file_sha256(csv_path)


def test_a_test_csv_shorter_than_requested_is_one_line(tmp_path, csv_path, test_csv_path):
    with pytest.raises(ConfigError, match="test.csv has 30 puzzles, but --test 31 were requested"):
        build_dataset(csv_path, tmp_path / "ds", subsample=10, aug=1, seed=0, n_test=31, test_csv=test_csv_path)
    assert not (tmp_path / "ds").exists()


def test_shipped_build_keeps_every_other_puzzle_for_testing_and_says_it_is_not_sudoku_extreme(tmp_path):
    from trm_core.sudoku.build import build_shipped
    from trm_core.sudoku.shipped import SHIPPED_LABEL, shipped_csv

    meta = build_shipped(tmp_path / "ds", subsample=50, aug=3, seed=0)
    with shipped_csv() as path:
        from trm_core.sudoku.csvio import read_csv

        total = len(read_csv(path))
    assert meta["label"] == SHIPPED_LABEL and "not Sudoku-Extreme" in SHIPPED_LABEL
    assert meta["n_test_puzzles"] == total - 50 and meta["n_train_rows"] == 50 * 4
    arr = _arrays(tmp_path / "ds")
    assert not set(symmetry_key(arr["train_inputs.npy"][::4].astype(int) - 1)) & set(
        symmetry_key(arr["test_inputs.npy"].astype(int) - 1))


def test_rebuilding_over_a_dataset_replaces_it_and_leaves_nothing_beside_it(tmp_path, csv_path):
    build_dataset(csv_path, tmp_path / "ds", subsample=20, aug=1, seed=1, n_test=10)
    first = _arrays(tmp_path / "ds")
    build_dataset(csv_path, tmp_path / "ds", subsample=20, aug=1, seed=2, n_test=10)
    assert not np.array_equal(first["train_inputs.npy"], _arrays(tmp_path / "ds")["train_inputs.npy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize("out", ["/", "//", "/.."])
def test_the_root_folder_is_never_an_output_folder(out):
    from trm_core.sudoku.outdir import check_out_dir

    with pytest.raises(ConfigError, match="refusing to replace"):
        check_out_dir(out, [])
