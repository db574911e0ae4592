"""`sweeper data build` and `sweeper data generate`: Sudoku datasets on disk.

numpy/numba-heavy modules are imported inside the command bodies so `sweeper --help` stays instant.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from sweeper.commands._common import friendly

Difficulty = Literal["easy", "medium", "hard"]


@friendly
def build(
    csv: Annotated[Path, typer.Option("--csv", help="Sudoku CSV (source,question,answer,rating), e.g. Sudoku-Extreme train.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (replaced atomically if it exists).")],
    subsample: Annotated[int, typer.Option("--subsample", help="Train puzzles to pick (distinct under symmetry).")] = 1000,
    aug: Annotated[int, typer.Option("--aug", help="Random symmetry shuffles stored per train puzzle, besides the original.")] = 1000,
    test: Annotated[int, typer.Option("--test", help="Held-out test puzzles (originals, never shuffled, other symmetry classes).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the shuffles.")] = 0,
) -> None:
    """Build a seeded train/test dataset folder from a CSV (load it with data.source=dir, data.path=OUT)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from trm_core.sudoku.build import build_dataset

    if not csv.is_file():
        raise FileNotFoundError(2, "no such file", str(csv))
    columns = (TextColumn("shuffling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("build", total=subsample)
        meta = build_dataset(csv, out, subsample, aug, seed, test, progress=lambda k: bar.advance(task, k))
    typer.echo(f"wrote {out}: {meta['n_train_rows']} train rows ({subsample} puzzles x {1 + aug}), "
               f"{meta['n_test_rows']} test puzzles")


@friendly
def generate(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (.csv, or .csv.gz to compress).")],
    count: Annotated[int, typer.Option("--count", help="Puzzles to generate.")] = 1000,
    difficulty: Annotated[Difficulty, typer.Option("--difficulty", help="easy: solved grid with blanks; medium/hard: minimal puzzles by guess rating.")] = "easy",
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 0,
    blanks_min: Annotated[int, typer.Option("--blanks-min", help="easy only: fewest blanks.")] = 20,
    blanks_max: Annotated[int, typer.Option("--blanks-max", help="easy only: most blanks.")] = 35,
) -> None:
    """Generate uniquely-solvable puzzles and write them in the Sudoku-Extreme CSV layout."""
    from trm_core.config import ConfigError
    from trm_core.sudoku.csvio import write_csv
    from trm_core.sudoku.generate import generate as make

    if count < 1:
        raise ConfigError("--count must be >= 1")
    if not 0 <= blanks_min <= blanks_max <= 64:
        raise ConfigError("blanks must satisfy 0 <= --blanks-min <= --blanks-max <= 64")
    puzzles, solutions, ratings = make(count, difficulty, seed, blanks_min, blanks_max)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, puzzles, solutions, ratings, f"generated_{difficulty}_seed{seed}")
    typer.echo(f"wrote {count} {difficulty} puzzles to {out}")


def register(app: typer.Typer) -> None:
    """Add the `data` group (build, generate) to the app."""
    group = typer.Typer(help="Sudoku datasets: build from a CSV, generate puzzles.", no_args_is_help=True)
    group.command("build")(build)
    group.command("generate")(generate)
    app.add_typer(group, name="data")
