"""Sweep files -> SweepSpec: every documented key parses; every problem is one line with file and key path."""
import dataclasses
import textwrap

import pytest

from sweeper.errors import UserError
from sweeper.spec import SweepSpec, load_spec

FULL = """
name: full-spec_1
description: every key once
method: bayes
metrics:
  - {name: eval/puzzle_acc, goal: maximize}
  - {name: cost/chain_steps, goal: minimize}
parameters:
  model.k: {values: [1, 2]}
  model.swiglu: {value: standard}
  optim.muon_lr: {distribution: log_uniform_values, min: 1e-3, max: 1.0e-1}
  optim.muon_momentum: {distribution: uniform, min: 0.5, max: 0.9}
  optim.muon_ns_steps: {distribution: int_uniform, min: 3, max: 5}
  optim.muon_wd: {distribution: q_uniform, min: 0.0, max: 0.02, q: 0.005}
  halt.tau: {distribution: categorical, values: [0.4, 0.6]}
  halt.loss_weight: interval(0.01, 0.1)
run_cap: 12
base: {preset: cpu-tiny, overrides: {steps: 100, optim.adam_lr: 1e-3}}
seeds: [0, 1, 2]
profile: cpu-sweep
resources: {gpu: "0.125 * K"}
cpus: "max(1, K / 2)"
concurrency: 2
time_budget: 1h30m
max_failures: 2
trial_retries: 1
baseline: [{model.k: 1}, {model.k: 4, halt.tau: 0.5}]
tracking: {uri: "file:./mlruns"}
sampler_seed: 7
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path, text, name="s.yaml"):
    return load_spec(write(tmp_path, text, name))


def error(tmp_path, text, name="s.yaml"):
    with pytest.raises(UserError) as err:
        load(tmp_path, text, name)
    line = str(err.value)
    assert "\n" not in line and line.startswith(str(tmp_path / name))
    return line


def test_every_documented_key_parses(tmp_path):
    spec = load(tmp_path, FULL)
    assert spec.name == "full-spec_1" and spec.method == "tpe" and spec.run_cap == 12
    assert [m.goal for m in spec.metrics] == ["maximize", "minimize"]
    params = {p.name: p for p in spec.parameters}
    assert params["model.swiglu"].kind == "constant" and params["model.swiglu"].values == ("standard",)
    assert params["optim.muon_lr"].low == pytest.approx(1e-3) and params["optim.muon_lr"].log
    assert (params["optim.muon_ns_steps"].kind, params["optim.muon_ns_steps"].high) == ("int", 5)
    assert params["optim.muon_wd"].q == 0.005 and params["halt.loss_weight"].kind == "float"
    assert spec.base_preset == "cpu-tiny" and dict(spec.base_overrides) == {"steps": 100, "optim.adam_lr": 0.001}
    assert spec.seeds == (0, 1, 2) and spec.profile == "cpu-sweep"
    assert spec.gpu == "0.125 * K" and spec.cpus == "max(1, K / 2)"
    assert (spec.concurrency, spec.time_budget, spec.max_failures, spec.trial_retries) == (2, 5400.0, 2, 1)
    assert [dict(b) for b in spec.baseline] == [{"model.k": 1}, {"model.k": 4, "halt.tau": 0.5}]
    assert spec.tracking_uri == "file:./mlruns" and spec.sampler_seed == 7


def test_defaults_and_wandb_early_terminate(tmp_path):
    spec = load(tmp_path, """
        parameters: {model.k: {values: [1, 2]}}
        early_terminate: {type: hyperband, min_iter: 2, eta: 2}
    """)
    assert spec.name == "s" and spec.method == "grid" and spec.seeds == (0,) and spec.profile == "auto"
    assert spec.metrics[0].name == "eval/puzzle_acc" and spec.gpu == 1.0 and spec.cpus == 1.0
    assert spec.baseline is None and spec.tracking_uri is None
    # W&B's bands for min_iter: min_iter * eta^k (k = 0..99), here kept while below 2**31 evaluations
    assert (spec.scheduler.type, spec.scheduler.reduction_factor, spec.scheduler.strict) == ("wandb_hyperband", 2.0, True)
    assert spec.scheduler.rungs == tuple(2 * 2**k for k in range(31)) and spec.scheduler.max_t is None


@pytest.mark.parametrize("budget, seconds", [(90, 90.0), ("90", 90.0), ("15m", 900.0), ("2h", 7200.0),
                                             ("1h30m", 5400.0), ("1d", 86400.0)])
def test_time_budget_forms(tmp_path, budget, seconds):
    assert load(tmp_path, f"time_budget: {budget!r}\n" if isinstance(budget, str) else f"time_budget: {budget}\n").time_budget == seconds


def test_trials_per_gpu_and_scheduler(tmp_path):
    spec = load(tmp_path, "resources: {trials_per_gpu: 4}\nscheduler: {type: median, grace_period: 3}\n")
    assert spec.gpu == 0.25 and spec.scheduler.type == "median" and spec.scheduler.grace_period == 3
    assert load(tmp_path, "scheduler: {type: none}\n").scheduler is None


def test_spec_is_frozen_and_its_hash_ignores_spelling(tmp_path):
    a = load(tmp_path, "name: x\nseeds: [0, 1]\nparameters: {model.k: {values: [1, 2]}, halt.tau: {values: [0.5]}}\n")
    b = load(tmp_path, "parameters: {halt.tau: 'choice(0.5)', model.k: 'choice(1, 2.0)'}\nseeds: [0, 1]\nname: x\n")
    c = load(tmp_path, "name: x\nseeds: [0, 1]\nparameters: {model.k: {values: [1, 4]}, halt.tau: {values: [0.5]}}\n")
    assert isinstance(a, SweepSpec) and a == b and a.spec_hash == b.spec_hash != c.spec_hash
    assert dataclasses.replace(a, description="prose only").spec_hash == a.spec_hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "y"


@pytest.mark.parametrize("text, expected", [
    ("methd: grid\n", "methd: unknown key (did you mean 'method'?)"),
    ("parameters: {optim.muon_lrr: {values: [0.01]}}\n",
     "parameters.optim.muon_lrr: unknown parameter (did you mean 'optim.muon_lr'?)"),
    ("parameters: {model.k: {vals: [1]}}\n", "parameters.model.k.vals: unknown key (did you mean 'values'?)"),
    ("parameters: {model: {values: [1]}}\n", "parameters.model: 'model' is a section"),
    ("parameters: {seed: {values: [1, 2]}}\n", "parameters.seed: seeds come from the top-level `seeds` key"),
    ("parameters: {model.k: 'choise(1, 2)'}\n", "parameters.model.k: unknown or malformed sweep function choise() (did you mean 'choice'?)"),
    ("parameters: {model.k: [1, 2]}\n", "parameters.model.k: a bare list is ambiguous"),
    ("parameters: {model.k: choice(1, 2)}\n", "parameters.model.k: malformed sweep function 'choice(1' (in a {...} mapping, quote it"),
    ("parameters: {model.swiglu: {values: [modified, fancy]}}\n", "parameters.model.swiglu: 'fancy' is not one of modified, standard"),
    ("parameters: {model.k: {distribution: uniform, min: 1, max: 4}}\nmethod: random\nrun_cap: 2\n",
     "parameters.model.k: model.k is an integer"),
    ("parameters: {model.swiglu: {min: 1, max: 2}}\n", "parameters.model.swiglu: model.swiglu is not a number"),
    ("parameters: {halt.tau: {min: 0.9, max: 0.1}}\nmethod: random\nrun_cap: 2\n", "parameters.halt.tau: min 0.9 is not below max 0.1"),
    ("parameters: {halt.tau: 'interval(0.9, 0.1)'}\nmethod: random\nrun_cap: 2\n", "parameters.halt.tau: empty or single-value range"),
    ("parameters: {halt.tau: {distribution: log_uniform_values, min: 0, max: 0.5}}\nmethod: random\nrun_cap: 2\n",
     "parameters.halt.tau: log ranges need min > 0"),
    ("parameters: {halt.tau: {values: [0.5, 0.5]}}\n", "parameters.halt.tau.values: 0.5 is listed twice"),
    ("parameters: {halt.tau: {values: [0.5], min: 0.1}}\n", "parameters.halt.tau: `values` sets the choices; drop min"),
    ("parameters: {halt.tau: {distribution: uniform, min: 0.1, max: 0.5}}\n", "parameters.halt.tau: method grid needs listed values"),
    ("method: tpee\n", "method: 'tpee' is not supported (did you mean 'tpe'?)"),
    ("metric: {name: eval/puzle_acc}\n", "metric.name: unknown metric 'eval/puzle_acc' (did you mean 'eval/puzzle_acc'?)"),
    ("metric: {name: eval/puzzle_acc, goal: maximise}\n", "metric.goal: 'maximise' is not one of maximize, minimize (did you mean 'maximize'?)"),
    ("metric: {name: train/loss}\nmetrics: [{name: train/loss}]\n", "metrics: give `metric` (one objective) or `metrics` (several), not both"),
    ("metrics: [{name: train/loss}, {name: eval/cell_acc}]\nmethod: cmaes\nrun_cap: 3\n", "method: cmaes optimises one metric"),
    ("metrics: [{name: train/loss}, {name: eval/cell_acc}]\nscheduler: {type: asha}\n", "scheduler: early stopping needs a single metric"),
    ("scheduler: {type: ashaa}\n", "scheduler.type: 'ashaa' is not one of asha, hyperband, median, none (did you mean 'asha'?)"),
    ("scheduler: {type: asha}\nearly_terminate: {type: hyperband, min_iter: 1}\n", "early_terminate: give `scheduler`"),
    ("scheduler: {grace: 2}\n", "scheduler.grace: unknown key (did you mean 'grace_period'?)"),
    ("metrics: [{name: train/loss, gaol: minimize}]\n", "metrics[0].gaol: unknown key (did you mean 'goal'?)"),
    ("scheduler: {grace_period: 0}\n", "scheduler.grace_period: input should be greater than or equal to 1"),
    ("base: {preset: papr}\n", "base.preset: unknown preset 'papr' (did you mean 'paper'?)"),
    ("profile: cpu-swep\n", "profile: unknown profile 'cpu-swep' (did you mean 'cpu-sweep'?)"),
    ("base: {overrides: {optim.muon_lrr: 0.1}}\n", "base.overrides.optim.muon_lrr: unknown key (did you mean 'optim.muon_lr'?)"),
    ("base: {overrides: {model.k: 0}}\n", "base.overrides: model.k must be >= 1"),
    ("base: {overrides: {seed: 3}}\n", "base.overrides.seed: seeds come from the top-level `seeds` key"),
    ("baseline: [{model.kk: 2}]\n", "baseline[0].model.kk: unknown key (did you mean 'model.k'?)"),
    ("seeds: [1, 1]\n", "seeds: expected a non-empty list of distinct integers"),
    ("seeds: [1, x]\n", "seeds[1]: input should be a valid integer, got 'x'"),
    ("seeds: 3\n", "seeds: input should be a valid list, got 3"),
    ("resources: {gpu: 0.5, trials_per_gpu: 2}\n", "resources: give `gpu` or `trials_per_gpu`, not both"),
    ("resources: {gpu: \"__import__('os').system('x')\"}\n", "resources.gpu: unexpected character"),
    ("resources: {gpu: open(K)}\n", "resources.gpu: only min() and max() may be called, not open()"),
    ("resources: {gpu: 0.1 * kk}\n", "resources.gpu: unknown name 'kk' (did you mean 'K'?)"),
    ("cpus: -1\n", "cpus: expected a positive number or an expression"),
    ("time_budget: 15 minutes\n", "time_budget: expected seconds or a duration"),
    ("tracking: {url: x}\n", "tracking.url: unknown key (did you mean 'uri'?)"),
    ("method: custom\n", "method: custom means W&B's scheduler.engine runs your optimizer"),
    ("scheduler: {engine: optuna, source: opt.py}\n", "scheduler.engine: 'optuna' runs optimizer code from a file"),
    ("kind: job\n", "kind: 'job' is not one of sweep"),
    ("controller: {type: remote}\n", "controller.type: 'remote' is not one of local, cloud"),
    ("sampler_seed: 4294967295\n", "sampler_seed: input should be less than 2147483648"),
    ("sampler_seed: -1\n", "sampler_seed: input should be greater than or equal to 0"),
    ("seeds: [0, 2147483648]\n", "seeds[1]: input should be less than 2147483648"),
    ("warm_start: ../other\n", "warm_start: '../other' is not a sweep name"),
    ("name: a\nwarm_start: {sweep: a}\n", "warm_start.sweep: a sweep cannot warm-start from itself"),
    ("warm_start: {sweep: b, skip: true}\n", "warm_start.skip: unknown key (did you mean 'skip_existing'?)"),
    ("metric: {name: eval/cell_acc, target: .nan}\n", "metric.target: expected a finite number"),
    ("parameters: {optim: {parameters: {muon_lr: {value: 0.01}}}, optim.muon_lr: {value: 0.02}}\n",
     "parameters.optim.muon_lr: given twice"),
    ("parameters: {optim: {parameters: {muon_lr: {value: 0.01}}, values: [1]}}\n",
     "parameters.optim.values: a nested group (W&B's param_dict) holds only `parameters`"),
    ("parameters: {optim: {parameters: {}}}\n", "parameters.optim.parameters: expected a non-empty mapping"),
    ("parameters: {optim: {parameters: {muon_lrr: {value: 0.01}}}}\n",
     "parameters.optim.muon_lrr: unknown parameter (did you mean 'optim.muon_lr'?)"),
    ("- a\n- b\n", "expected a mapping of sweep keys at the top level, got list"),
    ("", "the file is empty"),
])
def test_each_problem_is_one_line_with_file_and_key_path(tmp_path, text, expected):
    line = error(tmp_path, text)
    assert line == f"{tmp_path / 's.yaml'}: {expected}" or line.startswith(f"{tmp_path / 's.yaml'}: {expected}"), line


@pytest.mark.parametrize("text, expected", [
    ("{distribution: gaussian, mu: 0.5}", "parameters.halt.tau.distribution: unknown distribution 'gaussian'"),
    ("{distribution: normal, mu: 0.5, sigma: 0}", "parameters.halt.tau.sigma: must be > 0"),
    ("{distribution: beta, a: 0, b: 1}", "parameters.halt.tau: beta needs a > 0 and b > 0"),
    ("{distribution: normal, mu: 0.5, min: 0.1}", "parameters.halt.tau.min: distribution normal does not take `min`"),
    ("{mu: 0.5, sigma: 0.1}", "parameters.halt.tau: name the `distribution` that takes mu, sigma"),
    ("{distribution: q_uniform, min: 0.1, max: 0.9, q: 0}", "parameters.halt.tau.q: must be > 0"),
    ("{distribution: log_uniform, min: 0.01, max: 800}", "parameters.halt.tau: log_uniform takes natural-log exponents"),
    ("{values: [0.3, 0.5], probabilities: [0.5]}", "parameters.halt.tau.probabilities: 1 probabilities for 2 values"),
    ("{values: [0.3, 0.5], probabilities: [0.5, 0.6]}", "parameters.halt.tau.probabilities: expected non-negative numbers that sum to 1"),
    ("{distribution: normal, mu: 0.5, sigma: 0.1}", "parameters.halt.tau: halt.tau must be in (0, 1)"),
    ("{distribution: categorical_w_probabilities, values: [0.3]}", "parameters.halt.tau: distribution categorical_w_probabilities needs `probabilities`"),
])
def test_wandb_distribution_problems(tmp_path, text, expected):
    line = error(tmp_path, f"method: random\nrun_cap: 2\nparameters: {{halt.tau: {text}}}\n")
    assert line.startswith(f"{tmp_path / 's.yaml'}: {expected}"), line


def test_integer_keys_take_q_distributions_with_a_whole_q(tmp_path):
    spec = load(tmp_path, "method: random\nrun_cap: 2\nparameters: {model.k: {distribution: q_normal, mu: 4, sigma: 0.3}}\n")
    assert spec.parameters[0].q == 1.0
    line = error(tmp_path, "method: random\nrun_cap: 2\nparameters: {model.k: {distribution: q_normal, mu: 4, sigma: 0.3, q: 0.5}}\n")
    assert "parameters.model.k: model.k is an integer" in line


def test_grid_refuses_what_cannot_be_listed(tmp_path):
    line = error(tmp_path, "parameters: {model.k: {values: [1, 2], probabilities: [0.5, 0.5]}}\n")
    assert "method grid needs listed values" in line and "W&B's grid refuses probabilities too" in line
    assert "not normal" in error(tmp_path, "parameters: {halt.tau: {distribution: normal, mu: 0.5, sigma: 0.01}}\n")


WANDB_ONLY = """
program: train.py
command:
  - ${env}
  - ${interpreter}
  - ${program}
  - ${args}
project: trm
entity: someone
controller: {type: local}
apiVersion: v1
kind: sweep
job: someone/trm/job:latest
image_uri: example.org/trm:1
description: a W&B file
method: bayes
run_cap: 3
metric: {name: eval/cell_acc, target: 0.95, impute: worst}
parameters: {halt.tau: {min: 0.3, max: 0.9}}
"""


def test_wandb_only_keys_are_accepted_with_one_note_each(tmp_path):
    spec = load(tmp_path, WANDB_ONLY)
    keys = [n.split(":")[0] for n in spec.notes]
    assert keys == ["program", "command", "project", "entity", "controller", "apiVersion", "kind", "job",
                    "image_uri", "method", "metric.goal", "metric.impute"]
    assert "program: ignored, every trial runs the TRM trainer" in spec.notes
    assert spec.method == "tpe" and spec.metrics[0].target == 0.95 and spec.metrics[0].goal == "maximize"
    # notes (like the description) are not part of what runs
    plain = load(tmp_path, "method: bayes\nrun_cap: 3\nmetric: {name: eval/cell_acc, target: 0.95}\n"
                           "parameters: {halt.tau: {min: 0.3, max: 0.9}}\n")
    assert plain.spec_hash == spec.spec_hash and plain.notes != spec.notes


def test_run_cap_defaults_with_a_note_where_wandb_has_none(tmp_path):
    spec = load(tmp_path, "method: random\nparameters: {halt.tau: 'interval(0.3, 0.9)'}\n")
    assert spec.run_cap == 100 and any(n.startswith("run_cap: not given, so at most 100 trials") for n in spec.notes)
    assert load(tmp_path, "parameters: {model.k: {values: [1, 2]}}\n").run_cap is None  # a grid ends by itself


def test_wandb_scheduler_engine_wandb_is_a_note(tmp_path):
    spec = load(tmp_path, "scheduler: {engine: wandb}\n")
    assert spec.scheduler is None and spec.notes == ("scheduler: engine wandb ignored, `method` picks the search here",)


def test_metric_goal_defaults_to_the_better_direction(tmp_path):
    assert load(tmp_path, "metric: {name: train/loss}\n").metrics[0].goal == "minimize"
    spec = load(tmp_path, "metric: {name: eval/puzzle_acc}\n")
    assert spec.metrics[0].goal == "maximize" and any("W&B's default, minimize" in n for n in spec.notes)
    assert load(tmp_path, "metric: {name: eval/puzzle_acc, goal: minimize}\n").metrics[0].goal == "minimize"


def test_nested_parameters_flatten_to_dotted_keys(tmp_path):
    nested = load(tmp_path, """
        parameters:
          optim:
            parameters:
              muon_lr: {values: [0.01, 0.02]}
              adam_lr: {value: 0.001}
          model: {parameters: {k: {values: [1, 2]}}}
    """)
    flat = load(tmp_path, "parameters: {optim.muon_lr: {values: [0.01, 0.02]}, optim.adam_lr: {value: 0.001}, "
                          "model.k: {values: [1, 2]}}\n")
    assert [p.name for p in nested.parameters] == ["model.k", "optim.adam_lr", "optim.muon_lr"]
    assert nested.parameters == flat.parameters and nested.spec_hash == flat.spec_hash


def test_warm_start_forms(tmp_path):
    assert load(tmp_path, "warm_start: k_sweep\n").warm_start.sweep == "k_sweep"
    ws = load(tmp_path, "warm_start: {sweep: k_sweep, skip_existing: true}\n").warm_start
    assert (ws.sweep, ws.skip_existing) == ("k_sweep", True)
    assert load(tmp_path, "seeds: [0]\n").warm_start is None


def test_hyperband_with_max_iter_uses_wandbs_bands(tmp_path):
    # W&B's documented example: max_iter 27, s 2, eta 3 -> bands at 27/3 = 9 and 9/3 = 3
    spec = load(tmp_path, "early_terminate: {type: hyperband, max_iter: 27, s: 2, strict: false}\n")
    assert spec.scheduler.rungs == (3, 9) and spec.scheduler.strict is False and spec.scheduler.grace_period == 3
    assert "max_iter needs s" in error(tmp_path, "early_terminate: {type: hyperband, max_iter: 27, min_iter: 1}\n")
    assert "no band at or above 1" in error(tmp_path, "early_terminate: {type: hyperband, max_iter: 2, s: 2, eta: 3}\n")


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "x y", "-x", "a" * 65, "~root", "a\\\\b"])
def test_unsafe_names_are_rejected(tmp_path, name):
    assert "name: " in error(tmp_path, f"name: \"{name}\"\n")


def test_unsafe_file_stem_is_rejected_when_name_is_absent(tmp_path):
    assert "must be 1-64 letters" in error(tmp_path, "seeds: [0]\n", name="my sweep.yaml")


def test_invalid_yaml_names_the_line(tmp_path):
    line = error(tmp_path, "seeds: [0, 1]\nparameters:\n  model.k: {values: [1, 2}\n")
    assert line.startswith(f"{tmp_path / 's.yaml'}:3: invalid YAML: ")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match=r"nope\.yaml: no such file$"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="not a file"):
        load_spec(tmp_path)


def test_yaml_is_loaded_safely(tmp_path):
    line = error(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n")
    assert "invalid YAML" in line
