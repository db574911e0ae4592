"""Seeded dataset builds in the layout of the paper's data: train puzzles with stored symmetry shuffles.

A built folder holds token arrays (.npy, 0 pad, 1 blank, 2..10 digits) and metadata.json:
- train_inputs/labels/ratings.npy: n_train puzzles x (1 + aug) rows, puzzle i at rows i*(1+aug) ..
  (i+1)*(1+aug)-1, the original first and then its `aug` random symmetry shuffles;
- test_inputs/labels/ratings.npy: n_test original puzzles, never shuffled;
- metadata.json: format version, what the data is (`label`), every source file with its sha256, seed,
  counts and how the test puzzles were chosen.
Three ways to choose the test puzzles:
- split: one CSV split by symmetry class (no shuffle of a train puzzle equals a test puzzle);
- test CSV: the first n_test rows of another file in file order, as the reference evaluates Sudoku-Extreme
  (the first 38,400 rows of its test.csv); train puzzles sharing a symmetry class with one of them are
  skipped (Sudoku-Extreme's split has none, so this picks what the reference would);
- shipped: the puzzles shipped in the package, split as above (labelled as not Sudoku-Extreme).
The reference picks its 1000 train puzzles with an unseeded rng.choice; here the pick is seeded and no two
picked puzzles share a symmetry class. Its shuffles are the same group (shuffle.py).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from trm_core import durable
from trm_core.errors import ConfigError
from trm_core.sudoku.csvio import CsvPuzzles, read_csv
from trm_core.sudoku.outdir import check_out_dir
from trm_core.sudoku.shipped import SHIPPED_LABEL, shipped_csv
from trm_core.sudoku.shuffle import shuffle_pairs, symmetry_key

FORMAT_VERSION = 1
_CHUNK = 64  # puzzles shuffled per progress step
PAPER_TEST = 38_400
"""Test puzzles of the reference's evaluation: the first 38,400 rows of Sudoku-Extreme's test.csv."""


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def select_distinct(puzzles: np.ndarray, n: int, rng: np.random.Generator, what: str,
                    exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of n puzzles in random order, no two in one symmetry class (by symmetry_key) and none
    whose key is in `exclude`.

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
        keys = symmetry_key(puzzles[idx])
        allowed = np.ones(len(idx), bool) if exclude is None else ~np.isin(keys, exclude)
        _, first = np.unique(keys[allowed], return_index=True)
        chosen = idx[allowed][np.sort(first)]  # keep the random order of first occurrences
        if len(chosen) >= n:
            return chosen[:n]
        if pool == total:
            raise ConfigError(f"{what} has {len(chosen)} puzzles distinct under symmetry"
                              f"{' and from the test puzzles' if exclude is not None else ''}, but {n} were requested")
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


def _source(role: str, path: Path, rows: int, used: str) -> dict:
    return {"role": role, "file": path.name, "sha256": file_sha256(path), "rows": rows, "used": used}


def _choose(train_csv: Path, test_csv: Path | None, subsample: int, n_test: int | None, seed: int
            ) -> tuple[CsvPuzzles, np.ndarray, CsvPuzzles, np.ndarray, list[dict]]:
    """(train data, train rows, test data, test rows, sources) for a split or a separate test CSV."""
    data = read_csv(train_csv)
    if test_csv is None:
        n_test = len(data) - subsample if n_test is None else n_test
        if n_test < 1:
            raise ConfigError(f"{train_csv} has {len(data)} puzzles: none left for testing after {subsample} train")
        tr, te = split_by_puzzle(data.puzzles, subsample, n_test, seed, str(train_csv))
        used = f"{subsample} train + {n_test} test puzzles, split by symmetry class (seed {seed})"
        return data, tr, data, te, [_source("train+test", train_csv, len(data), used)]
    n_test = PAPER_TEST if n_test is None else n_test
    test = read_csv(test_csv, limit=n_test)
    if len(test) < n_test:
        raise ConfigError(f"{test_csv} has {len(test)} puzzles, but --test {n_test} were requested")
    tr = select_distinct(data.puzzles, subsample, np.random.default_rng(seed), str(train_csv),
                         exclude=np.unique(symmetry_key(test.puzzles)))
    sources = [_source("train", train_csv, len(data), f"{subsample} puzzles picked at random (seed {seed})"),
               _source("test", test_csv, len(test), f"the first {n_test} rows in file order")]
    return data, tr, test, np.arange(n_test), sources


def build_dataset(csv_path: str | Path, out_dir: str | Path, subsample: int, aug: int, seed: int,
                  n_test: int | None, progress: Callable[[int], None] | None = None, *,
                  test_csv: str | Path | None = None, label: str | None = None) -> dict:
    """Build a dataset folder from a Sudoku CSV (see the module docstring); returns its metadata.

    n_test None: all puzzles left after the train pick (split), or PAPER_TEST rows (test_csv). `label`
    names the data in every report (default: the file names). progress(k) is called after every k train
    puzzles written. The folder appears atomically; an existing one is replaced only if a build wrote it.
    """
    if subsample < 1 or (n_test is not None and n_test < 1) or aug < 0:
        raise ConfigError("build needs --subsample >= 1, --test >= 1 and --aug >= 0")
    csv_path, out_dir = Path(csv_path), Path(out_dir).expanduser()
    test_path = None if test_csv is None else Path(test_csv)
    check_out_dir(out_dir, [csv_path] + ([test_path] if test_path else []))
    t0 = time.perf_counter()
    data, tr, test, te, sources = _choose(csv_path, test_path, subsample, n_test, seed)
    # the shuffle stream is separate from the split stream so changing aug never changes the split
    rng = np.random.default_rng([seed, 1])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_train(tmp, data.puzzles[tr], data.solutions[tr], data.ratings[tr], aug, rng, progress)
        np.save(tmp / "test_inputs.npy", test.puzzles[te] + 1)
        np.save(tmp / "test_labels.npy", test.solutions[te] + 1)
        np.save(tmp / "test_ratings.npy", test.ratings[te].astype(np.float32))
        default = csv_path.name if test_path is None else f"{csv_path.name} + {test_path.name}"
        meta = {
            "format_version": FORMAT_VERSION, "label": label or default, "sources": sources,
            "source_file": csv_path.name, "source_sha256": sources[0]["sha256"],
            "seed": seed, "subsample": subsample, "aug": aug, "n_train_puzzles": subsample, "n_test_puzzles": len(te),
            "n_train_rows": subsample * (1 + aug), "n_test_rows": len(te), "source_rows": len(data),
            "split": "by puzzle; selected puzzles have distinct symmetry_key values",
            "test": "split from the train file" if test_path is None else f"first {len(te)} rows of {test_path.name}",
            "seconds": round(time.perf_counter() - t0, 2),
        }
        for f in tmp.glob("*.npy"):
            durable.fsync_file(f)
        durable.write_text(tmp / "metadata.json", json.dumps(meta, indent=2) + "\n")
        durable.swap_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when the swap succeeded
    return meta


def build_shipped(out_dir: str | Path, subsample: int, aug: int, seed: int, n_test: int | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """The same build from the puzzles shipped in the package, labelled SHIPPED_LABEL (never Sudoku-Extreme)."""
    with shipped_csv() as path:
        return build_dataset(path, out_dir, subsample, aug, seed, n_test, progress, label=SHIPPED_LABEL)


def read_metadata(folder: str | Path) -> dict:
    """metadata.json of a built folder, checked for the format version."""
    path = Path(folder) / "metadata.json"
    if not path.is_file():
        raise ConfigError(f"{folder}: not a dataset built by 'sweeper data build' (no metadata.json)")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e}); rebuild the dataset") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise ConfigError(f"{folder}: dataset format {found} is not {FORMAT_VERSION}; rebuild it")
    meta.setdefault("label", f"built from {meta.get('source_file')}")  # folders built before labels existed
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
