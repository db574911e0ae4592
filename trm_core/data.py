"""Puzzle sets for training: `PuzzleSet` and `load_splits(DataConfig)` over every data source.

Tokens everywhere: 0 pad, 1 blank, 2..10 digits 1..9 (digit d -> d+1), 81 cells row-major; a digit grid
(0 blank) becomes tokens by adding 1. Splits are by puzzle and, for every source, no two puzzles across
train and test share a symmetry-class key (trm_core.sudoku.shuffle.symmetry_key).

Every PuzzleSet carries a `label` saying what the puzzles are ("Sudoku-Extreme" only when the dataset was
built and labelled so from its CSVs; "shipped puzzles, not Sudoku-Extreme" for the shipped ones), and
`data_label(cfg)` gives it without loading the puzzles, so results and reports can say what they score.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm_core import durable
from trm_core.config import DataConfig
from trm_core.errors import ConfigError
from trm_core.sudoku.shipped import SHIPPED_LABEL, shipped_csv

GENERATOR_VERSION = 1  # bump when generated puzzles for a given seed change, to invalidate caches


@dataclass
class PuzzleSet:
    """Puzzles as token arrays; row i of inputs and labels is one (puzzle, unique solution) pair."""

    inputs: np.ndarray  # [N,81] uint8 tokens (1 blank, 2..10 digits)
    labels: np.ndarray  # [N,81] uint8 tokens 2..10 (the unique solution)
    ratings: np.ndarray  # [N] float32 difficulty (CSV rating or solver guesses; nan if unknown)
    label: str = ""  # what the puzzles are, for every report of a score on them (see data_label)

    def __len__(self) -> int:
        return len(self.inputs)


def _tokens(puzzles: np.ndarray, solutions: np.ndarray, ratings: np.ndarray) -> PuzzleSet:
    return PuzzleSet(
        inputs=np.ascontiguousarray(puzzles, dtype=np.uint8) + np.uint8(1),
        labels=np.ascontiguousarray(solutions, dtype=np.uint8) + np.uint8(1),
        ratings=np.asarray(ratings, dtype=np.float32).copy(),
    )


def load_splits(cfg: DataConfig) -> tuple[PuzzleSet, PuzzleSet]:
    """(train, test) puzzle sets for cfg.source (generate, builtin, csv, dir), split by puzzle and seeded;
    both carry data_label(cfg).

    Raises ConfigError with one line when the source is missing, malformed or too small.
    """
    loaders = {"generate": _generated, "builtin": _builtin, "csv": _csv, "dir": _built_dir}
    train, test = loaders[cfg.source](cfg)
    train.label = test.label = data_label(cfg)
    return train, test


def data_label(cfg: DataConfig) -> str:
    """What cfg's puzzles are, in words, for results and reports (reads at most a dataset's metadata.json).

    A built folder's label is the one given at build time (`sweeper data build --label Sudoku-Extreme`
    for the official CSVs); the shipped puzzles are always SHIPPED_LABEL.
    """
    if cfg.source == "builtin":
        return SHIPPED_LABEL
    if cfg.source == "generate":
        blanks = f", {cfg.blanks_min}-{cfg.blanks_max} blanks" if cfg.difficulty == "easy" else ""
        return f"generated puzzles ({cfg.difficulty}{blanks}), not Sudoku-Extreme"
    if cfg.source == "csv":
        return f"{Path(cfg.path).name} (split by puzzle)"
    from trm_core.sudoku.build import read_metadata

    return str(read_metadata(_dataset_folder(cfg))["label"])


# ---------------------------------------------------------------------------------------------------
# real puzzles: builtin (shipped) and csv

def _split_csv(data, cfg: DataConfig, what: str) -> tuple[PuzzleSet, PuzzleSet]:
    from trm_core.sudoku.build import split_by_puzzle

    tr, te = split_by_puzzle(data.puzzles, cfg.n_train, cfg.n_test, cfg.seed, what)
    return (_tokens(data.puzzles[tr], data.solutions[tr], data.ratings[tr]),
            _tokens(data.puzzles[te], data.solutions[te], data.ratings[te]))


def _builtin(cfg: DataConfig) -> tuple[PuzzleSet, PuzzleSet]:
    from trm_core.sudoku.csvio import read_csv

    with shipped_csv() as path:
        data = read_csv(path)
    return _split_csv(data, cfg, "the builtin puzzle set")


def _csv(cfg: DataConfig) -> tuple[PuzzleSet, PuzzleSet]:
    from trm_core.sudoku.csvio import read_csv

    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise ConfigError(f"data.path: no such CSV file: {path}")
    return _split_csv(read_csv(path), cfg, str(path))


# ---------------------------------------------------------------------------------------------------
# a folder made by `sweeper data build`

def build_commands(folder: str | Path) -> str:
    """The commands that build a dataset folder, for error messages."""
    return (f"`sweeper data build --csv train.csv --test-csv test.csv --label Sudoku-Extreme --out {folder}` "
            f"(train.csv and test.csv of sapientinc/sudoku-extreme), or offline `sweeper data build --shipped "
            f"--out {folder}` (scores are then labelled '{SHIPPED_LABEL}')")


def _dataset_folder(cfg: DataConfig) -> Path:
    folder = Path(cfg.path).expanduser()
    if not folder.exists():
        raise ConfigError(f"data.path: no dataset folder {folder}; build it with {build_commands(cfg.path)}")
    return folder


def _built_dir(cfg: DataConfig) -> tuple[PuzzleSet, PuzzleSet]:
    """The first n_train train puzzles (each with all its stored shuffles) and the first n_test test puzzles
    (all of them when n_test is None)."""
    from trm_core.sudoku.build import read_metadata

    folder = _dataset_folder(cfg)
    meta = read_metadata(folder)
    n_test = meta["n_test_puzzles"] if cfg.n_test is None else cfg.n_test
    for split, n in (("train", cfg.n_train), ("test", n_test)):
        have = meta[f"n_{split}_puzzles"]
        if n > have:
            raise ConfigError(f"{folder}: has {have} {split} puzzles, but data.n_{split}={n}")
    per = 1 + meta["aug"]

    def part(split: str, rows: int) -> PuzzleSet:
        arr = {k: np.load(folder / f"{split}_{k}.npy", mmap_mode="r")[:rows] for k in ("inputs", "labels", "ratings")}
        return PuzzleSet(np.array(arr["inputs"]), np.array(arr["labels"]), np.array(arr["ratings"], dtype=np.float32))

    return part("train", cfg.n_train * per), part("test", n_test)


# ---------------------------------------------------------------------------------------------------
# generated puzzles, cached on disk

def cache_root(cfg: DataConfig) -> Path:
    """cfg.cache_dir, else $SWEEPER_CACHE, else ~/.cache/sweeper."""
    root = cfg.cache_dir or os.environ.get("SWEEPER_CACHE") or Path.home() / ".cache" / "sweeper"
    return Path(root).expanduser()


def _generated(cfg: DataConfig) -> tuple[PuzzleSet, PuzzleSet]:
    total = cfg.n_train + cfg.n_test
    blanks = f"-b{cfg.blanks_min}-{cfg.blanks_max}" if cfg.difficulty == "easy" else ""
    name = f"{cfg.difficulty}{blanks}-n{total}-seed{cfg.seed}-v{GENERATOR_VERSION}"
    folder = cache_root(cfg) / "sudoku-generated" / name
    if not (folder / "meta.json").is_file():
        _generate_to(folder, cfg, total)
    arr = {k: np.load(folder / f"{k}.npy") for k in ("inputs", "labels", "ratings")}
    n = cfg.n_train
    return (PuzzleSet(arr["inputs"][:n], arr["labels"][:n], arr["ratings"][:n]),
            PuzzleSet(arr["inputs"][n:], arr["labels"][n:], arr["ratings"][n:]))


def _generate_distinct(cfg: DataConfig, total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """total generated puzzles with distinct symmetry keys (random grids almost never collide; a few extra
    are made so that the count never falls short)."""
    from trm_core.sudoku.generate import generate
    from trm_core.sudoku.shuffle import symmetry_key

    extra = max(16, total // 20)
    p, s, r = generate(total + extra, cfg.difficulty, cfg.seed, cfg.blanks_min, cfg.blanks_max)
    _, first = np.unique(symmetry_key(p), return_index=True)
    keep = np.sort(first)
    if len(keep) < total:
        raise ConfigError(
            f"only {len(keep)} of {total + extra} generated puzzles are distinct under symmetry "
            f"(blanks {cfg.blanks_min}-{cfg.blanks_max} is too few); raise data.blanks_min")
    keep = keep[:total]
    return p[keep], s[keep], r[keep]


def _generate_to(folder: Path, cfg: DataConfig, total: int) -> None:
    """Generate and store atomically: a concurrent process either sees the whole folder or none."""
    t0 = time.perf_counter()
    p, s, r = _generate_distinct(cfg, total)
    sets = _tokens(p, s, r)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for key in ("inputs", "labels", "ratings"):
            np.save(tmp / f"{key}.npy", getattr(sets, key))
            durable.fsync_file(tmp / f"{key}.npy")
        meta = {"generator_version": GENERATOR_VERSION, "difficulty": cfg.difficulty, "blanks_min": cfg.blanks_min,
                "blanks_max": cfg.blanks_max, "count": total, "seed": cfg.seed,
                "seconds": round(time.perf_counter() - t0, 3)}
        durable.write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
        try:
            os.replace(tmp, folder)
            durable.fsync_dir(folder.parent)
        except OSError as e:  # another process finished the same folder first (its content is identical)
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
