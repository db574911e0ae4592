"""Hostile sweep files (security review finding 4): an alias bomb, a huge grid range, a 5,000-digit integer
and an out-of-range sampler seed each end in one error line, fast and in little memory, from `load_spec`
and from `sweeper validate` (exit code 2, no traceback)."""
import time
import tracemalloc

import pytest
import typer
from typer.testing import CliRunner

from sweeper.commands import validate
from sweeper.errors import UserError
from sweeper.spec import load_spec


def alias_bomb(levels: int = 9) -> str:
    """The review's file: each anchor is a list of ten aliases of the previous one, so `repr` of the last
    one is 10**levels elements long (9 levels: under 600 bytes, gigabytes once expanded)."""
    anchors = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "base:\n  overrides:\n    optim.adam_lr: [" + ", ".join(anchors) + "]\n"


ATTACKS = {
    "alias_bomb": (alias_bomb(), "anchors and aliases"),
    "huge_grid_range": ("method: grid\nparameters: {steps: 'range(1, 1000000000000)'}\n",
                        "parameters: the grid has more than 100000 configurations"),
    "huge_q_uniform_grid": ("method: grid\nparameters: {optim.muon_wd: {distribution: q_uniform, min: 0, max: 1, "
                            "q: 1.0e-300}}\n", "parameters: the grid has more than 100000 configurations"),
    "integer_of_5000_digits": ("run_cap: " + "9" * 5000 + "\n", "an integer has more than 4300 digits"),
    "sampler_seed_2_pow_32": ("sampler_seed: 4294967296\n", "sampler_seed: input should be less than 2147483648"),
    "sampler_seed_huge": ("sampler_seed: 18446744073709551617\n", "sampler_seed: input should be less than 2147483648"),
}


def test_the_alias_bomb_is_the_reviewed_size():
    assert len(alias_bomb().encode()) < 700


@pytest.mark.parametrize("name", ATTACKS)
def test_load_spec_gives_one_line_fast_in_little_memory(tmp_path, name):
    text, fragment = ATTACKS[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(UserError) as err:
            load_spec(path)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    line = str(err.value)
    assert line.startswith(str(path)) and fragment in line and "\n" not in line and len(line) < 400, line
    assert seconds < 1.0, f"{name}: {seconds:.2f} s"
    assert peak < 32 * 2**20, f"{name}: peak {peak / 2**20:.1f} MiB"


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    validate.register(app)
    app.callback()(lambda: None)
    return app


@pytest.mark.parametrize("name", ATTACKS)
def test_validate_gives_one_error_line_and_exit_2(app, tmp_path, name):
    text, fragment = ATTACKS[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["validate", str(path), "--cpu"])
    seconds = time.perf_counter() - start
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert result.stdout == "" and len(lines) == 1 and lines[0].startswith(f"error: {path}") and fragment in lines[0]
    assert "Traceback" not in result.output
    assert seconds < 1.0, f"{name}: {seconds:.2f} s"


@pytest.mark.parametrize("text, fragment", [
    ("a: &x 1\nb: *x\n", ":1: invalid YAML: anchors and aliases"),
    ("a: {x: 1}\nb:\n  <<: *missing\n", ":3: invalid YAML: anchors and aliases"),
    ("name: 2020-13-45\n", "invalid YAML value: month must be in 1..12"),
    ("parameters: {model.k: {values: [" + "9" * 4000 + "]}}\n", "is out of range (integers stay below 2**63"),
    ("method: random\nrun_cap: 2\nparameters: {steps: 'range(0, 1e308, 1e-308)'}\n", "range() has too many values"),
    ("parameters: {model.k: {values: [" + ", ".join(str(i) for i in range(1, 1100)) + "]}}\n", "values: 1099 values; at most 1000"),
])
def test_other_hostile_values_are_one_line(tmp_path, text, fragment):
    path = tmp_path / "h.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_spec(path)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)
