"""benchmarks/yaml_standin.py reads what PyYAML reads for the presets, and refuses what it cannot read."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("yaml_standin_under_test", REPO / "benchmarks" / "yaml_standin.py")
standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(standin)

PRESETS = sorted((REPO / "trm_core" / "presets").glob("*.yaml"))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_reads_as_pyyaml_reads_it(path):
    text = path.read_text()
    assert _same(yaml.safe_load(text), standin.safe_load(text))


@pytest.mark.parametrize("text", [
    "0.001", "1e-4", "1.", "1_000", "-3", "+7", ".5", ".5e-3", "+.5", "1.0e+3", "null", "~", "Null", "true", "yes",
    "No", "on", "OFF", ".inf", "-.Inf", ".nan", "abc", "a b", "/x/y", "cuda:0", "1.2.3", "x#y", "x #y",
    "a: 1   # c\nb:\n  c: {x: 1, y: [1, 2.5, null, yes], z: {q: cuda}}\n  d:\n    e: off\nf: [a, b]\ng:\nh: 3\n",
    "# only a comment\n", "inherit: cpu-tiny\nmodel: {k: 4}\n",
])
def test_scalars_and_nesting_resolve_as_in_pyyaml(text):
    assert _same(yaml.safe_load(text), standin.safe_load(text))


@pytest.mark.parametrize("text", ["a: 'q'", 'a: "q"', "- a\n- b", "a: &x 1", "a: *x", "a: 0x1f", "a: 012",
                                  "a: 2020-01-01", "a: {b: 1", "a: 1\n   b: 2", "a: |"])
def test_unsupported_yaml_is_refused_not_misread(text):
    with pytest.raises(standin.YAMLError):
        standin.safe_load(text)
