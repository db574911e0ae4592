"""W&B sweep files run unchanged, with W&B's meaning.

The oracle is W&B's own sweep-configuration JSON schema, read from the pinned PyPI wheel `sweeps==0.3.0`
(sweeps/config/schema.json): every file in wandb_specs/ must be valid under it (and under W&B's two
checks the schema cannot express: min < max, probabilities that sum to 1) and must validate here. Files
named after a schema definition must be read by W&B as that definition (the first `parameter` schema that
matches, as W&B picks). The values the real Optuna random sampler draws (through build_distributions and
trainer_values) must follow W&B's definition of the distribution: a Kolmogorov-Smirnov test for the
continuous ones, a chi-square test over the support for the discrete ones. No training runs.

The wheel is downloaded once into $SWEEPER_CACHE (default ~/.cache/sweeper) and checked against its sha256;
`pip install sweeps` is avoided on purpose (it pins numpy<2). A missing oracle fails the tests: CI reaches PyPI.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import jsonschema
import numpy as np
import optuna
import pytest
import yaml
from scipy import stats

from sweeper.spec import load_spec
from sweeper.sweep import space

SPECS = Path(__file__).parent / "wandb_specs"
FILES = sorted(SPECS.glob("*.yaml"))
WHEEL = "sweeps-0.3.0-py3-none-any.whl"
WHEEL_SHA256 = "e35fbfa87215000238dd4ee8589fc0fed476e4f792cbe803f65071e52d53a692"
DRAWS = 1500


@pytest.fixture(scope="session")
def wandb_schema() -> dict:
    cache = Path(os.environ.get("SWEEPER_CACHE") or Path.home() / ".cache" / "sweeper")
    wheel = cache / WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "sweeps==0.3.0", "-d", str(cache)],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not wheel.exists():
            pytest.fail(f"cannot download the W&B schema oracle (sweeps==0.3.0): {done.stderr.strip()[-500:]}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        pytest.fail(f"{wheel}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        return json.loads(z.read("sweeps/config/schema.json"))


def _format_checker() -> jsonschema.FormatChecker:
    # W&B registers these two formats (sweeps/config/schema.py): they tell int_uniform and uniform apart.
    checker = jsonschema.FormatChecker()
    checker.checks("float")(lambda v: isinstance(v, float))
    checker.checks("integer")(lambda v: isinstance(v, int))
    return checker


def wandb_definition(schema: dict, param: dict) -> str | None:
    """The definition W&B reads a parameter as: the first `parameter` anyOf entry that validates."""
    for ref in schema["definitions"]["parameter"]["anyOf"]:
        name = ref["$ref"].split("/")[-1]
        sub = {"definitions": schema["definitions"], **schema["definitions"][name]}  # param_dict refers back
        if jsonschema.Draft7Validator(sub, format_checker=_format_checker()).is_valid(param):
            return name
    return None


def wandb_params(doc: dict) -> dict[str, dict]:
    """Leaf parameters of a W&B file, nested groups (param_dict) flattened with dots."""
    out = {}
    for key, value in doc.get("parameters", {}).items():
        if "parameters" in value:
            out.update({f"{key}.{k}": v for k, v in wandb_params(value).items()})
        else:
            out[key] = value
    return out


def test_there_is_a_file_for_every_parameter_definition_and_hyperband(wandb_schema):
    wanted = {d for d in wandb_schema["definitions"] if d.startswith("param_")} | {"hyperband_stopping"}
    assert wanted <= {f.stem for f in FILES}, wanted - {f.stem for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_is_valid_wandb_and_validates_here(wandb_schema, path):
    doc = yaml.safe_load(path.read_text())
    jsonschema.Draft7Validator(wandb_schema, format_checker=_format_checker()).validate(doc)
    for name, param in wandb_params(doc).items():  # W&B's checks outside the schema
        if "min" in param and "max" in param:
            assert param["min"] < param["max"], name
        if "probabilities" in param:
            assert len(param["probabilities"]) == len(param["values"]) and math.isclose(sum(param["probabilities"]), 1)
    if path.stem.startswith("param_"):
        definitions = {wandb_definition(wandb_schema, p) for p in doc["parameters"].values()}
        assert path.stem in definitions, definitions
    spec = load_spec(path)
    assert {p.name for p in spec.parameters} == set(wandb_params(doc))
    ignored = [k for k in ("program", "command", "project", "entity", "controller", "apiVersion", "kind", "job",
                           "image_uri") if k in doc]
    assert [n.split(":")[0] for n in spec.notes if n.split(":")[0] in ignored] == ignored


def test_top_level_keys_are_each_one_note(wandb_schema):
    doc = yaml.safe_load((SPECS / "top_level_keys.yaml").read_text())
    spec = load_spec(SPECS / "top_level_keys.yaml")
    used_here = {"name", "description", "method", "metric", "metrics", "parameters", "run_cap", "early_terminate"}
    assert set(wandb_schema["properties"]) - used_here <= set(doc)  # every other W&B key is in the file
    assert len(spec.notes) == len(set(doc) - used_here) and spec.name == "wandb-keys"


def test_hyperband_bands_are_wandbs(wandb_schema):
    # W&B's documented bands: min_iter 3 (eta 3) -> 3, 9, 27, 81, ...; max_iter 27, s 2, eta 3 -> 9, 3.
    low = load_spec(SPECS / "hyperband_stopping.yaml").scheduler
    assert low.type == "wandb_hyperband" and low.rungs[:4] == (3, 9, 27, 81) and low.strict is True
    high = load_spec(SPECS / "hyperband_stopping_max_iter.yaml").scheduler
    assert high.rungs == (3, 9) and high.reduction_factor == 3 and high.strict is False


def test_metric_target_and_wandb_goal(wandb_schema):
    spec = load_spec(SPECS / "metric_target.yaml")
    assert (spec.metrics[0].target, spec.metrics[0].goal) == (0.1, "minimize")  # W&B's default goal; right for a loss


optuna.logging.set_verbosity(optuna.logging.WARNING)


def draw(spec, name: str, n: int = DRAWS) -> list:
    """n values of parameter `name` as a trial gets them: Optuna's RandomSampler draws the latent from
    build_distributions, trainer_values maps it."""
    dist = space.build_distributions(spec)[name]
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    trial = study.ask()
    return [space.trainer_values(spec, {name: sampler.sample_independent(study, trial, name, dist)})[name]
            for _ in range(n)]


def _uniform_cdf(lo, hi):
    return stats.uniform(lo, hi - lo).cdf


def _of_log(cdf, sign=1):
    """x -> cdf(sign * log x) for x > 0, and 0 at or below 0 (these distributions have no mass there)."""
    def f(x):
        x = np.asarray(x, dtype=float)
        return np.where(x > 0, cdf(sign * np.log(np.where(x > 0, x, 1.0))), 0.0)
    return f


def _above(cdf):
    return lambda y: 1 - cdf(y)


# W&B's definitions (sweeps 0.3.0 params.py and the docs), written independently with scipy: the base
# (unrounded) CDF of each distribution, from the parameter's own numbers in the file.
BASE_CDF = {
    "normal": lambda c: stats.norm(c.get("mu", 0), c.get("sigma", 1)).cdf,
    "log_normal": lambda c: stats.lognorm(s=c.get("sigma", 1), scale=math.exp(c.get("mu", 0))).cdf,
    "beta": lambda c: stats.beta(c.get("a", 1), c.get("b", 1)).cdf,
    "uniform": lambda c: _uniform_cdf(c["min"], c["max"]),
    "log_uniform": lambda c: _of_log(_uniform_cdf(c["min"], c["max"])),
    "log_uniform_values": lambda c: _of_log(_uniform_cdf(math.log(c["min"]), math.log(c["max"]))),
    # X = exp(-U): P(X <= x) = P(U >= -log x)
    "inv_log_uniform": lambda c: _of_log(_above(_uniform_cdf(c["min"], c["max"])), -1),
    "inv_log_uniform_values": lambda c: _of_log(_above(_uniform_cdf(-math.log(c["max"]), -math.log(c["min"]))), -1),
}
CONTINUOUS = {"param_normal": "normal", "param_lognormal": "log_normal", "param_beta": "beta",
              "param_uniform": "uniform", "param_loguniform": "log_uniform",
              "param_loguniform_v2": "log_uniform_values", "param_inv_loguniform": "inv_log_uniform",
              "param_inv_loguniform_v2": "inv_log_uniform_values"}
QUANTISED = {"param_qnormal": "normal", "param_qlognormal": "log_normal", "param_qbeta": "beta",
             "param_quniform": "uniform", "param_qloguniform": "log_uniform",
             "param_qloguniform_v2": "log_uniform_values"}


def only_param(stem: str):
    path = SPECS / f"{stem}.yaml"
    (name, cfg), = yaml.safe_load(path.read_text())["parameters"].items()
    return load_spec(path), name, cfg


@functools.cache
def draws_of(stem: str) -> tuple:
    """The file's single parameter: (its W&B config, DRAWS values drawn as trials get them)."""
    spec, name, cfg = only_param(stem)
    return cfg, tuple(draw(spec, name))


@pytest.mark.parametrize("stem", sorted(CONTINUOUS))
def test_continuous_draws_follow_wandbs_distribution(stem):
    cfg, values = draws_of(stem)
    values = np.array(values, dtype=float)
    result = stats.kstest(values, BASE_CDF[CONTINUOUS[stem]](cfg))
    assert result.pvalue > 1e-3, (stem, result)


def chi_square_pvalue(values: list, probabilities: dict) -> float:
    """Chi-square goodness of fit; cells with fewer than 5 expected draws are pooled into one."""
    counts = Counter(values)
    assert set(counts) <= set(probabilities), set(counts) - set(probabilities)  # nothing outside the support
    n = len(values)
    big = [k for k, p in probabilities.items() if p * n >= 5]
    observed = [counts[k] for k in big] + [n - sum(counts[k] for k in big)]
    expected = [probabilities[k] * n for k in big] + [n * (1 - sum(probabilities[k] for k in big))]
    if expected[-1] < 1e-9:
        observed, expected = observed[:-1], expected[:-1]
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("stem", sorted(QUANTISED))
def test_quantised_draws_follow_wandbs_distribution(stem):
    # W&B: round(X / q) * q (round half to even), an int when q is written as an int. P(value k*q) is the
    # base distribution's mass in [(k - 1/2) q, (k + 1/2) q].
    cfg, values = draws_of(stem)
    q = cfg.get("q", 1.0)
    assert all(isinstance(v, int) for v in values) if isinstance(q, int) else True
    cdf = BASE_CDF[QUANTISED[stem]](cfg)
    ks = sorted({round(v / q) for v in values})
    assert all(math.isclose(v, round(v / q) * q, rel_tol=1e-12, abs_tol=1e-12) for v in values)
    support = range(ks[0] - 3, ks[-1] + 4)
    lo_edge = {k: (k - 0.5) * q for k in support}
    probs = {round(k * q, 12): float(cdf((k + 0.5) * q) - cdf(lo_edge[k])) for k in support}
    assert chi_square_pvalue([round(v, 12) for v in values], probs) > 1e-3, stem


def test_int_uniform_and_categoricals_follow_wandbs_distribution():
    cfg, values = draws_of("param_int_uniform")
    k = range(cfg["min"], cfg["max"] + 1)
    assert chi_square_pvalue(values, {v: 1 / len(k) for v in k}) > 1e-3
    cfg, values = draws_of("param_categorical")
    assert chi_square_pvalue(values, {v: 1 / len(cfg["values"]) for v in cfg["values"]}) > 1e-3
    cfg, values = draws_of("param_categorical_w_probabilities")
    assert chi_square_pvalue(values, dict(zip(cfg["values"], cfg["probabilities"]))) > 1e-3


def test_the_tests_can_tell_distributions_apart():
    # Power check: the same draws against a slightly different definition are rejected.
    cfg, values = draws_of("param_normal")
    values = np.array(values, dtype=float)
    assert stats.kstest(values, stats.norm(cfg["mu"] + 0.25 * cfg["sigma"], cfg["sigma"]).cdf).pvalue < 1e-3
    cfg, values = draws_of("param_categorical_w_probabilities")
    wrong = dict(zip(cfg["values"], [0.15, 0.15, 0.3, 0.4]))
    assert chi_square_pvalue(values, wrong) < 1e-3


def test_single_value_is_a_constant_not_sampled():
    spec = load_spec(SPECS / "param_single_value.yaml")
    assert "model.swiglu" not in space.build_distributions(spec)
    assert [p.values for p in spec.parameters if p.kind == "constant"] == [("standard",)]


def test_grid_lists_what_wandbs_grid_lists():
    spec = load_spec(SPECS / "docs_grid.yaml")
    # values, int_uniform min..max, q_uniform numpy.arange(min, max, q)
    assert space.grid_space(spec) == {"model.k": [1, 2, 4], "optim.muon_ns_steps": [3, 4, 5],
                                      "optim.muon_wd": [0.0, 0.01]}
    assert space.grid_size(spec) == 18
