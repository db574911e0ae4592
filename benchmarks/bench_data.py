"""Data-layer throughput on one core: solver, generators, CSV reader, augmentations; solver-rating quality.

    python benchmarks/bench_data.py                      # the shipped 5k-puzzle subset
    python benchmarks/bench_data.py --csv puzzles_rated.csv   # a full Sudoku CSV (hard puzzles, rows/s)

Prints a table and writes JSON (benchmarks/results/bench_data.json). Targets: >= 1,000 hard solves/s,
>= 300 minimal puzzles/s, >= 200k CSV rows/s. Hard puzzles are the forum_hardest sources of the CSV.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

TARGETS = {"hard_solves_per_s": 1000, "minimal_puzzles_per_s": 300, "csv_rows_per_s": 200_000}


def rate(fn, count: int) -> float:
    """count / seconds of one call of fn (after a warm-up call that also triggers numba compilation)."""
    t0 = time.perf_counter()
    fn()
    return count / (time.perf_counter() - t0)


def bench_solver(data, n_rated: int) -> dict:
    from scipy.stats import spearmanr

    from trm_core.sudoku.solver import solve

    hard_codes = [i for i, s in enumerate(data.source_names) if "forum_hardest" in s]
    hard = data.puzzles[np.isin(data.sources, hard_codes)][:2000]
    solve(hard[:2], 2)
    out = {"hard_puzzles": len(hard),
           "hard_solves_per_s": rate(lambda: solve(hard, 1), len(hard)),
           "hard_unique_checks_per_s": rate(lambda: solve(hard, 2), len(hard))}
    idx = np.random.default_rng(0).choice(len(data), min(n_rated, len(data)), replace=False)
    for limit in (1, 2):
        guesses = solve(data.puzzles[idx], limit)[1]
        out[f"spearman_guesses_limit{limit}_vs_rating"] = float(spearmanr(guesses, data.ratings[idx]).statistic)
    out["spearman_sample"] = len(idx)
    return out


def bench_generators() -> dict:
    from trm_core.sudoku.generate import generate, generate_minimal

    generate_minimal(1, 0, 10**9, 0)
    generate(1, "easy", 0)
    return {"minimal_puzzles_per_s": rate(lambda: generate_minimal(1000, 0, 10**9, 1), 1000),
            "easy_20_35_puzzles_per_s": rate(lambda: generate(5000, "easy", 1, 20, 35), 5000),
            "easy_45_55_puzzles_per_s": rate(lambda: generate(2000, "easy", 1, 45, 55), 2000)}


def bench_csv(path: Path) -> dict:
    from trm_core.sudoku.csvio import read_csv

    rows = sum(1 for _ in path.open()) - 1
    return {"csv_rows": rows, "csv_rows_per_s": rate(lambda: read_csv(path), rows)}


def bench_augment(data) -> dict:
    import torch

    from trm_core.augment import augment_batch

    x = torch.from_numpy(data.puzzles[:384] + 1)
    y = torch.from_numpy(data.solutions[:384] + 1)
    g = torch.Generator().manual_seed(0)
    augment_batch(x, y, g)
    reps = 50
    return {"augmentations_per_s": rate(lambda: [augment_batch(x, y, g) for _ in range(reps)], reps * len(x))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, help="Sudoku CSV to read and to take hard puzzles from (default: the shipped subset)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_data.json")
    args = ap.parse_args()
    import numba
    import torch

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    from trm_core.sudoku.csvio import read_csv, write_csv

    with tempfile.TemporaryDirectory() as tmp:
        if args.csv:
            path = args.csv
        else:  # the shipped subset, uncompressed, so the rate measures parsing rather than gunzip
            with resources.as_file(resources.files("trm_core.sudoku") / "data" / "puzzles_subset.csv.gz") as gz:
                sub = read_csv(gz)
            path = Path(tmp) / "subset.csv"
            write_csv(path, sub.puzzles, sub.solutions, sub.ratings, [sub.source_names[s] for s in sub.sources])
        data = read_csv(path)
        results = {"csv": str(args.csv or "shipped subset"), "threads": 1}
        for part in (bench_solver(data, 2000), bench_generators(), bench_csv(path), bench_augment(data)):
            results.update(part)
    width = max(map(len, results))
    print(f"{'metric':<{width}}  {'value':>12}  target")
    for key, value in results.items():
        shown = f"{value:>12,.2f}" if isinstance(value, float) else f"{value!s:>12}"
        target = TARGETS.get(key)
        mark = "" if target is None else f">= {target:,}  {'ok' if value >= target else 'MISSED'}"
        print(f"{key:<{width}}  {shown}  {mark}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
