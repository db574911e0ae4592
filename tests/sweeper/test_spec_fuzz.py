"""Property: whatever a sweep file holds, load_spec returns a SweepSpec or raises UserError (one line)."""
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweeper.errors import UserError
from sweeper.spec import SweepSpec, load_spec

KEYS = ["name", "description", "method", "metric", "metrics", "parameters", "early_terminate", "run_cap",
        "base", "preset", "overrides", "seeds", "profile", "resources", "gpu", "trials_per_gpu", "cpus",
        "concurrency", "time_budget", "max_failures", "trial_retries", "scheduler", "type", "baseline",
        "tracking", "uri", "sampler_seed", "values", "value", "distribution", "min", "max", "q", "goal",
        "model.k", "halt.tau", "optim.muon_lr", "model.swiglu", "seed", "model", "grace_period"]
WORDS = ["grid", "tpe", "bayes", "cmaes", "nsga2", "asha", "auto", "paper", "smoke", "uniform", "int_uniform",
         "log_uniform_values", "q_uniform", "categorical", "normal", "eval/puzzle_acc", "minimize",
         "choice(1, 2)", "interval(0.1, 0.9)", "tag(log, interval(1e-4, 1e-2))", "range(1, 9, 2)",
         "int(interval(1, 4))", "0.125 * K", "min(1, K)", "15m", "../x", "range(", "choice()", "tag(x, y)"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(WORDS))
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
})

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates -> invalid UTF-8
        try:
            assert isinstance(load_spec(path), SweepSpec)
        except UserError as e:
            assert "\n" not in str(e) and str(e).startswith(str(path))


@FUZZ
@given(documents)
def test_arbitrary_documents_only_raise_user_error(doc):
    check(yaml.safe_dump(doc))


@FUZZ
@given(specish)
def test_near_miss_specs_only_raise_user_error(doc):
    check(yaml.safe_dump(doc))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("abk:-[]{},'\"!&*#|>%@`\n\t .0123456789()")) | st.characters(), max_size=200))
def test_random_text_only_raises_user_error(text):
    check(text)
