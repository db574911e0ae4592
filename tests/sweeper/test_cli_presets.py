"""`sweeper presets`: every preset with what it is; each variant with the keys it changes; the key table."""
import re

import pytest
import typer
from typer.testing import CliRunner

from sweeper.commands import train as train_cmd
from trm_core.config import preset_names, resolve

# The faithful presets reproduce the reference's quirks; the -fixed variants change exactly these keys
# (issue 11, item 3) and nothing else.
FIXED_KEYS = {"precision", "data.permute_blank", "wta.expunge", "wta.loss_dtype"}


@pytest.fixture(scope="module")
def output():
    app = typer.Typer()
    train_cmd.register(app)
    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    return result.output


def variant_line(output: str, name: str) -> tuple[str, set[str]]:
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
    m = re.match(r"\s+differs from (\S+) in: (.*)$", lines[at + 1])
    assert m, f"no 'differs from' line under {name}"
    return m.group(1), {item.split("=")[0] for item in m.group(2).split(", ")}


def test_lists_every_preset_with_its_description(output):
    for name in preset_names():
        line = next(line for line in output.splitlines() if line.split()[:1] == [name])
        assert len(line.split()) > 3, f"{name} has no description"
    assert {"paper", "paper-baseline", "paper-fixed", "paper-baseline-fixed"} <= set(preset_names())


@pytest.mark.parametrize("fixed,faithful", [("paper-fixed", "paper"), ("paper-baseline-fixed", "paper-baseline")])
def test_fixed_variants_differ_from_the_faithful_ones_only_in_the_fixed_keys(output, fixed, faithful):
    parent, keys = variant_line(output, fixed)
    assert parent == faithful and keys == FIXED_KEYS


def test_faithful_presets_carry_the_reference_quirks():
    for name in ("paper", "paper-baseline"):
        cfg = resolve(name)
        assert (cfg.precision, cfg.data.permute_blank, cfg.wta.expunge, cfg.wta.loss_dtype, cfg.optim.ema_before_start) == \
            ("bf16", True, "remove", "logits", "hold")
        fixed = resolve(f"{name}-fixed")
        assert (fixed.precision, fixed.data.permute_blank, fixed.wta.expunge, fixed.wta.loss_dtype) == ("auto", False, "reset", "fp32")


def test_key_table_follows_with_the_new_options(output):
    table = output.split("keys:\n", 1)[1]
    for key in ("wta.expunge", "wta.loss_dtype", "optim.ema_before_start", "wta.carry_h", "model.hidden"):
        assert re.search(rf"^\s+{re.escape(key)}\s+\S+\s+\S", table, re.M), key
