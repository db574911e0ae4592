"""`sweeper data build|generate` through typer's CliRunner on a local app."""
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from sweeper.commands import data
from trm_core.sudoku.csvio import read_csv
from trm_core.sudoku.solver import solve


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.callback()(lambda: None)  # keep `data` a sub-group even when it is the only command
    data.register(app)
    return app


def test_generate_writes_a_readable_csv_of_unique_puzzles(app, tmp_path):
    out = tmp_path / "g.csv"
    result = CliRunner().invoke(app, ["data", "generate", "--count", "12", "--difficulty", "medium", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    puzzles = read_csv(out)
    assert len(puzzles) == 12
    counts, _, found = solve(puzzles.puzzles, limit=2)
    assert (counts == 1).all() and (found == puzzles.solutions).all()


def test_build_writes_a_dataset_folder(app, tmp_path):
    csv = tmp_path / "g.csv"
    CliRunner().invoke(app, ["data", "generate", "--count", "30", "--out", str(csv)])
    args = ["data", "build", "--csv", str(csv), "--subsample", "10", "--aug", "2", "--test", "5", "--seed", "0", "--out", str(tmp_path / "ds")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "ds" / "train_inputs.npy").shape == (30, 81)


@pytest.mark.parametrize("case", ["missing", "bad_row", "too_many", "bad_count"])
def test_bad_input_gives_one_line_and_exit_code_2(app, tmp_path, case):
    csv = tmp_path / "bad.csv"
    csv.write_text("source,question,answer,rating\nx,123,456,1\n")
    args = {
        "missing": ["data", "build", "--csv", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")],
        "bad_row": ["data", "build", "--csv", str(csv), "--out", str(tmp_path / "o")],
        "too_many": ["data", "generate", "--count", "3", "--out", str(tmp_path / "g.csv")],
        "bad_count": ["data", "generate", "--count", "0", "--out", str(tmp_path / "g.csv")],
    }[case]
    if case == "too_many":
        CliRunner().invoke(app, args)
        args = ["data", "build", "--csv", str(tmp_path / "g.csv"), "--subsample", "3", "--test", "1", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    if case == "bad_row":
        assert f"{csv}:2: expected 4 fields" in lines[0] or f"{csv}:2: question has 3 characters" in lines[0]
