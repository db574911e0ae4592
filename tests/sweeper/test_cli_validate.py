"""`sweeper validate`: exit 0 and a readable summary on good files, exit 2 and one line on bad ones."""
import importlib.util
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sweeper.commands import validate

SPACES = sorted((Path(__file__).parents[2] / "search_spaces").glob("*.yaml"))


@pytest.fixture(scope="module")
def app():
    # A local app with only this command: the unit under test, independent of the other commands.
    app = typer.Typer()
    validate.register(app)
    app.callback()(lambda: None)  # keep `validate` a named subcommand
    return app


def test_the_shipped_search_spaces_exist():
    assert {p.stem for p in SPACES} >= {"k_sweep", "lr_sweep", "muon_sweep", "halting_sweep", "smoke"}


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_every_shipped_search_space_validates(app, path):
    text = path.read_text()
    assert text.startswith("# Question:") and "GPU" in text and "CPU" in text
    result = CliRunner().invoke(app, ["validate", str(path), "--cpu"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "parameter" in out and "distribution" in out and "trials: " in out
    assert "profile: " in out and "resources per trial: gpu" in out


def test_k_sweep_summary(app):
    result = CliRunner().invoke(app, ["validate", "search_spaces/k_sweep.yaml", "--cpu"])
    assert "trials: 10 " in result.output and "1, 4" in result.output
    assert "preset 'cpu-sweep'" in result.output and "gpu 0.125-0.5 (0.125 * K)" in result.output
    gpu = CliRunner().invoke(app, ["validate", "search_spaces/k_sweep.yaml", "--gpu"])
    assert gpu.exit_code == 0 and "preset 'paper'" in gpu.output


def test_smoke_sweep_fits_the_tests():
    from sweeper.spec import load_spec
    from sweeper.sweep import space

    spec = load_spec("search_spaces/smoke.yaml")
    assert space.trial_count(spec) >= 4 and spec.scheduler.type == "asha" and spec.profile == "smoke"


def run_bad(app, tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path), "--cpu"])
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}:"), result.stderr
    return lines[0]


@pytest.mark.parametrize("text, fragment", [
    ("parameters: {optim.muon_lrr: {values: [0.1]}}\n", "parameters.optim.muon_lrr: unknown parameter (did you mean 'optim.muon_lr'?)"),
    ("seeds: [0, 1\n", "invalid YAML"),
    ("resources: {gpu: '0.75 * K'}\nparameters: {model.k: {values: [1, 2]}}\n", "resources.gpu: '0.75 * K' gives 1.5"),
])
def test_bad_files_exit_2_with_one_line(app, tmp_path, text, fragment):
    assert fragment in run_bad(app, tmp_path, text)


def test_a_missing_sampler_backend_is_reported_before_anything_starts(app, tmp_path):
    if importlib.util.find_spec("cmaes") is not None:
        pytest.skip("cmaes is installed")
    line = run_bad(app, tmp_path, "method: cmaes\nrun_cap: 3\nparameters: {halt.tau: 'interval(0.3, 0.9)'}\n")
    assert "method: cmaes needs the 'cmaes' package" in line


def test_missing_file_exits_2(app, tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file"


def test_user_text_is_printed_literally_never_as_markup(app, tmp_path):
    # rich would parse "[/]" as a closing tag (MarkupError) and drop "[bold]" as a style (text vanishes)
    path = tmp_path / "markup.yaml"
    path.write_text('description: "see [bold]this[/bold] and [/] :smile:"\n'
                    'parameters: {data.path: {values: ["/x/[/]a.csv", "/y/[bold]b.csv", "[red]c[/red]"]}}\n')
    result = CliRunner().invoke(app, ["validate", str(path), "--cpu"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "see [bold]this[/bold] and [/] :smile:" in out
    for value in ("/x/[/]a.csv", "/y/[bold]b.csv", "[red]c[/red]"):
        assert value in out


def test_wandb_keys_print_their_notes(app, tmp_path):
    path = tmp_path / "wandb.yaml"
    path.write_text("program: train.py\nproject: trm\nmethod: random\nrun_cap: 4\n"
                    "metric: {name: eval/cell_acc, goal: maximize, target: 0.9}\n"
                    "parameters: {halt.tau: {distribution: normal, mu: 0.5, sigma: 0.05}}\n"
                    "early_terminate: {type: hyperband, min_iter: 1, eta: 2}\n")
    result = CliRunner().invoke(app, ["validate", str(path), "--cpu"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps long lines at the terminal width
    assert "note: program: ignored, every trial runs the TRM trainer" in out and "note: project: ignored" in out
    assert "target 0.9" in out and "W&B hyperband (bands 1, 2, 4, 8, 16, 32, ... evaluations, eta 2" in out
    assert "mu 0.5, sigma 0.05 -> values" in out


def test_a_huge_range_under_tpe_validates_quickly(app, tmp_path):
    # the resource corners count a range before listing it (it used to build the whole list)
    path = tmp_path / "huge.yaml"
    path.write_text("method: tpe\nrun_cap: 4\ncpus: 'max(1, K / 4)'\n"
                    "parameters: {steps: 'range(1, 1000000000000)', model.k: 'range(1, 100000000)'}\n")
    result = CliRunner().invoke(app, ["validate", str(path), "--cpu"])
    assert result.exit_code == 0, result.output
    assert "cpus 1-2.5e+07 (max(1, K / 4))" in result.output
