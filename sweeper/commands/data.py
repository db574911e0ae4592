"""`sweeper data build` and `sweeper data generate`: Sudoku datasets on disk.

numpy/numba-heavy modules are imported inside the command bodies so `sweeper --help` stays instant.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from sweeper.commands._common import friendly
from sweeper.errors import UserError

Difficulty = Literal["easy", "medium", "hard"]


@friendly
def build(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to write. An existing one is replaced only if it is empty or a dataset a build wrote (never '.', '~', or a folder holding the working directory or an input).")],
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Sudoku CSV (source,question,answer,rating) to take train puzzles from, e.g. Sudoku-Extreme's train.csv.")] = None,
    test_csv: Annotated[Optional[Path], typer.Option("--test-csv", help="Take the test puzzles from this CSV instead: its first --test rows in file order (Sudoku-Extreme's test.csv: the reference's test set).")] = None,
    shipped: Annotated[bool, typer.Option("--shipped", help="Build from the puzzles shipped in the package (offline; labelled 'shipped puzzles, not Sudoku-Extreme').")] = False,
    subsample: Annotated[int, typer.Option("--subsample", help="Train puzzles to pick (distinct under symmetry).")] = 1000,
    aug: Annotated[int, typer.Option("--aug", help="Random symmetry shuffles stored per train puzzle, besides the original.")] = 1000,
    test: Annotated[Optional[int], typer.Option("--test", help="Test puzzles (never shuffled). Default: 1000 split from --csv; 38400 with --test-csv; all the rest with --shipped.", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train pick, the split and the shuffles.")] = 0,
    label: Annotated[Optional[str], typer.Option("--label", help="What the data is, shown with every score on it, e.g. 'Sudoku-Extreme' for sapientinc/sudoku-extreme's CSVs. Default: the file names.", show_default=False)] = None,
) -> None:
    """Build a train/test dataset folder with stored symmetry shuffles (train on it with data.source=dir, data.path=OUT)."""
    from sweeper.commands.progress import Progress
    from trm_core.sudoku.build import build_dataset, build_shipped

    if shipped == (csv is not None):
        raise UserError("give exactly one of --csv FILE and --shipped")
    if shipped and (test_csv is not None or label is not None):
        raise UserError("--shipped takes neither --test-csv nor --label (its label is fixed)")
    for path in (csv, test_csv):
        if path is not None and not path.is_file():
            raise FileNotFoundError(2, "no such file", str(path))
    if test is None and csv is not None and test_csv is None:
        test = 1000
    with Progress(unit="puzzles", transient=True) as bar:  # plain lines where stdout is not a terminal
        task = bar.add("shuffling", total=subsample)
        step = lambda k: bar.update(task, advance=k)  # noqa: E731
        if shipped:
            meta = build_shipped(out, subsample, aug, seed, test, progress=step)
        else:
            meta = build_dataset(csv, out, subsample, aug, seed, test, progress=step, test_csv=test_csv, label=label)
    typer.echo(f"wrote {out} ({meta['label']}): {meta['n_train_rows']} train rows ({subsample} puzzles x {1 + aug}), "
               f"{meta['n_test_rows']} test puzzles; {meta['seconds']:.1f} s")


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
