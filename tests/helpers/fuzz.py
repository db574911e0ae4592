"""Hypothesis strategies for sweep files: arbitrary YAML documents, near-miss specs, huge grid ranges
(tests/sweeper/test_spec_fuzz.py and tests/reliability/test_hostile_input.py use them)."""
from __future__ import annotations

import yaml
from hypothesis import strategies as st

KEYS = ["name", "description", "method", "metric", "metrics", "parameters", "early_terminate", "run_cap",
        "base", "preset", "overrides", "seeds", "profile", "resources", "gpu", "trials_per_gpu", "cpus",
        "concurrency", "time_budget", "max_failures", "trial_retries", "scheduler", "type", "baseline",
        "tracking", "uri", "sampler_seed", "values", "value", "distribution", "min", "max", "q", "goal",
        "program", "command", "project", "entity", "controller", "apiVersion", "kind", "job", "image_uri",
        "warm_start", "sweep", "skip_existing", "target", "impute", "probabilities", "mu", "sigma", "a", "b",
        "min_iter", "max_iter", "s", "eta", "strict", "engine",
        "model.k", "halt.tau", "optim.muon_lr", "model.swiglu", "seed", "model", "grace_period"]
WORDS = ["grid", "tpe", "bayes", "cmaes", "nsga2", "asha", "auto", "paper", "smoke", "uniform", "int_uniform",
         "log_uniform_values", "q_uniform", "categorical", "normal", "eval/puzzle_acc", "minimize",
         "choice(1, 2)", "interval(0.1, 0.9)", "tag(log, interval(1e-4, 1e-2))", "range(1, 9, 2)",
         "int(interval(1, 4))", "0.125 * K", "min(1, K)", "15m", "../x", "range(", "choice()", "tag(x, y)",
         "q_normal", "log_normal", "q_log_normal", "beta", "q_beta", "log_uniform", "q_log_uniform",
         "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "categorical_w_probabilities",
         "hyperband", "custom", "wandb", "optuna", "range(1, 1000000000000)", "range(0, 1e308, 1e-308)",
         "range(0.0, 1.0, 1e-300)", "int(interval(-9e18, 9e18))"]

class Digits(str):
    """An integer written out in YAML (a Python int past 4,300 digits cannot even be printed)."""


# Registered on SafeDumper itself, so yaml.safe_dump of these documents works wherever they are reused
# (tests/reliability imports the strategies); only Digits values are affected.
yaml.SafeDumper.add_representer(Digits, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:int", str(value)))


def dump(doc) -> str:
    return yaml.safe_dump(doc)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(WORDS),
                    st.integers(4290, 4400).map(lambda n: Digits("9" * n)),  # Python's int() stops at 4,300
                    st.sampled_from([2**31, 2**32, 2**63, 2**64 + 1, 10**300]))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers(-3, 3))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                           st.dictionaries(keys, inner, max_size=6)),
                         max_leaves=30)
specish = st.fixed_dictionaries({}, optional={
    "method": st.sampled_from(["grid", "random", "tpe", "bayes", "gp", "cmaes", "nsga2", "qmc", "x"]),
    "run_cap": st.one_of(st.integers(-1, 50), scalars),
    "seeds": st.one_of(st.lists(st.integers(-5, 5), max_size=4), scalars),
    "parameters": st.dictionaries(st.sampled_from(KEYS[-7:] + ["optim.muon_ns_steps", "halt.explore_prob"]),
                                  st.one_of(scalars, st.dictionaries(st.sampled_from(KEYS), documents, max_size=4)),
                                  max_size=4),
    "resources": st.dictionaries(st.sampled_from(["gpu", "trials_per_gpu", "x"]), scalars, max_size=2),
    "scheduler": st.one_of(documents, st.dictionaries(st.sampled_from(["type", "grace_period", "max_t"]), scalars)),
    "base": st.one_of(documents, st.fixed_dictionaries({"overrides": st.dictionaries(st.sampled_from(KEYS[-7:]), scalars)})),
    "baseline": st.one_of(documents, st.lists(st.dictionaries(st.sampled_from(KEYS[-7:]), scalars), max_size=2)),
    "time_budget": scalars, "cpus": scalars, "metrics": documents, "name": scalars,
    "sampler_seed": scalars, "warm_start": st.one_of(scalars, documents), "early_terminate": documents,
    "program": scalars, "command": documents,
})
grid_ranges = st.fixed_dictionaries({
    "method": st.sampled_from(["grid", "random"]), "run_cap": st.just(3),
    "parameters": st.fixed_dictionaries({"steps": st.builds(lambda a, n, k: f"range({a}, {a + n}, {k})",
                                                            st.integers(-10**18, 10**18), st.integers(1, 10**18),
                                                            st.integers(1, 10**6))},
                                        optional={"optim.muon_wd": st.fixed_dictionaries(
                                            {"distribution": st.just("q_uniform"), "min": st.just(0.0),
                                             "max": st.floats(1e-6, 1e6), "q": st.floats(1e-300, 1.0)})}),
})
