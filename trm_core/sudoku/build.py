"""Seeded dataset builds from a Sudoku CSV: pick puzzles by symmetry class, split by puzzle, store shuffles.

A built folder holds token arrays (.npy, 0 pad, 1 blank, 2..10 digits) and metadata.json:
- train_inputs/labels/ratings.npy: n_train puzzles x (1 + aug) rows, puzzle i at rows i*(1+aug) ..
  (i+1)*(1+aug)-1, the original first and then its `aug` random symmetry shuffles;
- test_inputs/labels/ratings.npy: n_test original puzzles, never shuffled;
- metadata.json: format version, source file and its sha256, seed, counts.
No two selected puzzles share a symmetry-class key (shuffle.symmetry_key), so no shuffle of a train puzzle
can equal a test puzzle or one of its symmetries.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from trm_core.errors import ConfigError
from trm_core.sudoku.csvio import read_csv
from trm_core.sudoku.shuffle import shuffle_pairs, symmetry_key

FORMAT_VERSION = 1
_CHUNK = 64  # puzzles shuffled per progress step


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def select_distinct(puzzles: np.ndarray, n: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """Indices of n puzzles in random order, no two in one symmetry class (by symmetry_key).

    Keys are computed on a random pool a little larger than n (the whole set only when needed), so
    picking 2,000 puzzles from a 3.8M-row file stays cheap.
    """
    total = len(puzzles)
    if n > total:
        raise ConfigError(f"{what} has {total} puzzles, but {n} were requested")
    order = rng.permutation(total)
    pool = min(total, int(n * 1.05) + 64)
    while True:
        idx = order[:pool]
        _, first = np.unique(symmetry_key(puzzles[idx]), return_index=True)
        chosen = idx[np.sort(first)]  # keep the random order of first occurrences
        if len(chosen) >= n:
            return chosen[:n]
        if pool == total:
            raise ConfigError(f"{what} has {len(chosen)} puzzles distinct under symmetry, but {n} were requested")
        pool = min(total, pool * 2)


def split_by_puzzle(puzzles: np.ndarray, n_train: int, n_test: int, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays of distinct symmetry classes, seeded."""
    try:
        chosen = select_distinct(puzzles, n_train + n_test, np.random.default_rng(seed), what)
    except ConfigError as e:
        raise ConfigError(f"{e} (train {n_train} + test {n_test})") from None
    return chosen[:n_train], chosen[n_train:]


def _write_train(out: Path, puzzles: np.ndarray, solutions: np.ndarray, ratings: np.ndarray, aug: int,
                 rng: np.random.Generator, progress: Callable[[int], None] | None) -> None:
    """Write the train arrays through memory maps so a 1000 x 1001-row build never sits in memory twice."""
    n, per = len(puzzles), 1 + aug
    x = np.lib.format.open_memmap(out / "train_inputs.npy", "w+", np.uint8, (n * per, 81))
    y = np.lib.format.open_memmap(out / "train_labels.npy", "w+", np.uint8, (n * per, 81))
    np.save(out / "train_ratings.npy", np.repeat(ratings.astype(np.float32), per))
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        q = np.repeat(puzzles[start:stop], per, axis=0)
        a = np.repeat(solutions[start:stop], per, axis=0)
        sq, sa = shuffle_pairs(q, a, rng)
        keep_original = np.arange(len(q)) % per == 0
        sq[keep_original], sa[keep_original] = q[keep_original], a[keep_original]
        x[start * per:stop * per] = sq + 1  # digits -> tokens
        y[start * per:stop * per] = sa + 1
        if progress:
            progress(stop - start)
    x.flush()
    y.flush()
    del x, y


def build_dataset(csv_path: str | Path, out_dir: str | Path, subsample: int, aug: int, seed: int, n_test: int,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Build a dataset folder from a Sudoku CSV (see the module docstring); returns its metadata.

    progress(k) is called after every k train puzzles written. The folder appears atomically.
    """
    if subsample < 1 or n_test < 1 or aug < 0:
        raise ConfigError("build needs subsample >= 1, test >= 1 and aug >= 0")
    csv_path, out_dir = Path(csv_path), Path(out_dir)
    data = read_csv(csv_path)
    tr, te = split_by_puzzle(data.puzzles, subsample, n_test, seed, str(csv_path))
    # the shuffle stream is separate from the split stream so changing aug never changes the split
    rng = np.random.default_rng([seed, 1])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_train(tmp, data.puzzles[tr], data.solutions[tr], data.ratings[tr], aug, rng, progress)
        np.save(tmp / "test_inputs.npy", data.puzzles[te] + 1)
        np.save(tmp / "test_labels.npy", data.solutions[te] + 1)
        np.save(tmp / "test_ratings.npy", data.ratings[te].astype(np.float32))
        meta = {
            "format_version": FORMAT_VERSION, "source_file": csv_path.name, "source_sha256": file_sha256(csv_path),
            "seed": seed, "subsample": subsample, "aug": aug, "n_train_puzzles": subsample, "n_test_puzzles": n_test,
            "n_train_rows": subsample * (1 + aug), "n_test_rows": n_test, "source_rows": len(data),
            "split": "by puzzle; selected puzzles have distinct symmetry_key values",
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def read_metadata(folder: str | Path) -> dict:
    """metadata.json of a built folder, checked for the format version."""
    path = Path(folder) / "metadata.json"
    if not path.is_file():
        raise ConfigError(f"{folder}: not a dataset built by 'sweeper data build' (no metadata.json)")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{folder}: dataset format {meta.get('format_version')} is not {FORMAT_VERSION}; rebuild it")
    return meta


def write_subset(csv_path: str | Path, out_path: str | Path, per_source: dict[str, int], seed: int) -> None:
    """Write a seeded subset of a CSV (per_source puzzles from each source, distinct symmetry classes).

    This made the shipped trm_core/sudoku/data/puzzles_subset.csv.gz (see PROVENANCE.md there).
    """
    from trm_core.sudoku.csvio import write_csv

    data = read_csv(csv_path)
    rng = np.random.default_rng(seed)
    # first occurrence of each key over the whole file, so no two shipped puzzles share a class
    _, first = np.unique(symmetry_key(data.puzzles), return_index=True)
    distinct = np.zeros(len(data), bool)
    distinct[first] = True
    picked = []
    for name, count in per_source.items():
        code = data.source_names.index(name)
        pool = np.flatnonzero((data.sources == code) & distinct)
        if count > len(pool):
            raise ConfigError(f"{csv_path}: source {name} has {len(pool)} distinct puzzles, {count} requested")
        picked.append(np.sort(rng.choice(pool, count, replace=False)))
    idx = np.concatenate(picked)
    write_csv(out_path, data.puzzles[idx], data.solutions[idx], data.ratings[idx],
              [data.source_names[s] for s in data.sources[idx]])
