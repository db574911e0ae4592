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


# -- --out safety: a build replaces only an empty folder or a dataset a build wrote ---------------------
# (`--out /` is checked without a build in tests/trm_core/test_sudoku_build.py: were the check ever broken,
# a build test would delete the machine's files.)

def _digests(root):
    """{relative path: sha256 or 'dir'} of everything under root, to compare before and after."""
    import hashlib

    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def scratch(app, tmp_path, monkeypatch):
    """tmp/work (the working directory: src/thesis.tex, in/p.csv, a dataset ds/), tmp/home ($HOME)."""
    work, home = tmp_path / "work", tmp_path / "home"
    (work / "src").mkdir(parents=True)
    (work / "src" / "thesis.tex").write_text("\\documentclass{article} years of work\n")
    (work / "in").mkdir()
    home.mkdir()
    (home / "notes.txt").write_text("keep me\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    result = CliRunner().invoke(app, ["data", "generate", "--count", "30", "--out", "in/p.csv"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["data", "build", "--csv", "in/p.csv", "--subsample", "10", "--aug", "1",
                                      "--test", "5", "--out", "ds"])
    assert result.exit_code == 0, result.output
    return tmp_path


REFUSED = {
    ".": "refusing to replace this folder", "..": "refusing to replace this folder",
    "~": "is your home folder",
    "WORK": "is the working directory", "PARENT": "contains the working directory", "in": "is the folder of in/p.csv", "src": "not a dataset built by",
    "no_version": "not a dataset built by", "ds_with_notes": "holds 'notes.txt'", "a_file": "is not a folder",
}


@pytest.mark.parametrize("out", list(REFUSED))
def test_build_refuses_an_out_folder_it_did_not_write_and_leaves_it_intact(app, scratch, out):
    work = scratch / "work"
    if out == "no_version":
        (work / "no_version").mkdir()
        (work / "no_version" / "metadata.json").write_text('{"mine": true}')
    elif out == "ds_with_notes":
        import shutil

        shutil.copytree(work / "ds", work / "ds_with_notes")
        (work / "ds_with_notes" / "notes.txt").write_text("not a dataset file\n")
    elif out == "a_file":
        (work / "a_file").write_text("data\n")
    arg = {"WORK": str(work), "PARENT": str(scratch)}.get(out, out)
    before = _digests(scratch)
    result = CliRunner().invoke(app, ["data", "build", "--csv", "in/p.csv", "--subsample", "10", "--aug", "1",
                                      "--test", "5", "--out", arg])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert REFUSED[out] in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert _digests(scratch) == before


def test_build_fills_an_empty_folder_and_replaces_its_own_dataset(app, scratch):
    work = scratch / "work"
    (work / "empty").mkdir()
    for out in ("empty", "ds"):
        before = np.load(work / "ds" / "train_inputs.npy")
        result = CliRunner().invoke(app, ["data", "build", "--csv", "in/p.csv", "--subsample", "12", "--aug", "1",
                                          "--test", "4", "--seed", "3", "--out", out])
        assert result.exit_code == 0, result.output
        assert np.load(work / out / "train_inputs.npy").shape == (24, 81)
    assert not np.array_equal(before, np.load(work / "ds" / "train_inputs.npy"))
    assert sorted(p.name for p in work.iterdir()) == ["ds", "empty", "in", "src"]  # nothing left aside


def test_build_from_the_shipped_puzzles_and_its_argument_checks(app, scratch):
    result = CliRunner().invoke(app, ["data", "build", "--shipped", "--subsample", "20", "--aug", "2", "--out", "paper"])
    assert result.exit_code == 0, result.output
    assert "shipped puzzles, not Sudoku-Extreme" in result.output
    for args in (["--out", "x"], ["--shipped", "--csv", "in/p.csv", "--out", "x"],
                 ["--shipped", "--label", "Sudoku-Extreme", "--out", "x"]):
        result = CliRunner().invoke(app, ["data", "build", *args])
        assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output
