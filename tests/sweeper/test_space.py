"""SweepSpec -> Optuna: distributions, samplers, counts, trial configs, resources, profiles."""
import importlib.util
import textwrap

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeper.errors import UserError
from sweeper.spec import load_spec
from sweeper.sweep import space
from sweeper.sweep.resolve import resolve_profile, share, trial_config
from trm_core.config import flatten, resolve, to_dict

WANDB = """
method: random
run_cap: 4
parameters:
  model.k: {values: [1, 2, 4, 8]}
  model.swiglu: {distribution: categorical, values: [modified, standard]}
  halt.tau: {distribution: uniform, min: 0.3, max: 0.9}
  optim.muon_lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
  optim.muon_ns_steps: {distribution: int_uniform, min: 1, max: 7, q: 2}
  optim.muon_wd: {distribution: uniform, min: 0.0, max: 0.1}
  model.l_cycles: {distribution: int_uniform, min: 2, max: 6}
  optim.adam_lr: {value: 0.001}
"""
HYDRA = """
method: random
run_cap: 4
parameters:
  model.k: choice(1, 2, 4, 8)
  model.swiglu: choice(modified, standard)
  halt.tau: interval(0.3, 0.9)
  optim.muon_lr: tag(log, interval(1e-4, 1e-2))
  optim.muon_ns_steps: range(1, 9, 2)
  optim.muon_wd: interval(0.0, 0.1)
  model.l_cycles: int(interval(2, 6))
  optim.adam_lr: 0.001
"""


def spec_of(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_spec(path)


def test_wandb_and_hydra_files_give_the_same_space(tmp_path):
    wandb, hydra = spec_of(tmp_path, WANDB, "w.yaml"), spec_of(tmp_path, HYDRA, "h.yaml")
    assert space.build_distributions(wandb) == space.build_distributions(hydra)
    assert wandb.parameters == hydra.parameters
    dists = space.build_distributions(wandb)
    assert dists["model.k"] == CategoricalDistribution([1, 2, 4, 8])
    assert dists["halt.tau"] == FloatDistribution(0.3, 0.9)
    assert dists["optim.muon_lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert dists["optim.muon_ns_steps"] == IntDistribution(1, 7, step=2)
    assert dists["optim.muon_wd"] == FloatDistribution(0.0, 0.1)
    assert dists["model.l_cycles"] == IntDistribution(2, 6)
    assert "optim.adam_lr" not in dists  # constants are applied by trial_config, not sampled


def test_grid_sampler_visits_the_full_grid(tmp_path):
    spec = spec_of(tmp_path, "parameters: {model.k: {values: [1, 2, 4]}, optim.muon_ns_steps: 'range(3, 6)'}\n")
    assert space.grid_size(spec) == 9 and space.grid_space(spec)["optim.muon_ns_steps"] == [3, 4, 5]
    dists = space.build_distributions(spec)
    seen = set()

    def objective(trial):  # GridSampler stops the study itself once the grid is exhausted
        params = {"model.k": trial.suggest_categorical("model.k", dists["model.k"].choices),
                  "optim.muon_ns_steps": trial.suggest_int("optim.muon_ns_steps", 3, 5)}
        seen.add(tuple(sorted(params.items())))
        return 0.0

    study = optuna.create_study(sampler=space.make_sampler(spec, seed=1), directions=space.directions(spec))
    study.optimize(objective, n_trials=20)
    assert len(study.trials) == 9
    assert len(seen) == 9


@pytest.mark.parametrize("method, cls", [("random", "RandomSampler"), ("tpe", "TPESampler"), ("bayes", "TPESampler"),
                                         ("gp", "GPSampler"), ("nsga2", "NSGAIISampler"), ("qmc", "QMCSampler")])
def test_each_method_gets_its_sampler(tmp_path, method, cls):
    spec = spec_of(tmp_path, f"method: {method}\nrun_cap: 5\nparameters: {{halt.tau: 'interval(0.3, 0.9)'}}\n")
    sampler = space.make_sampler(spec, seed=3)
    assert type(sampler).__name__ == cls
    study = optuna.create_study(sampler=sampler, direction="maximize")
    trial = study.ask(space.build_distributions(spec))
    assert 0.3 <= trial.params["halt.tau"] <= 0.9


def test_cmaes_needs_its_package(tmp_path):
    spec = spec_of(tmp_path, "method: cmaes\nrun_cap: 5\nparameters: {halt.tau: 'interval(0.3, 0.9)'}\n")
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(UserError, match="cmaes needs the 'cmaes' package"):
            space.make_sampler(spec)
    else:
        assert type(space.make_sampler(spec)).__name__ == "CmaEsSampler"


def test_trial_count_is_configurations_times_seeds_capped_by_run_cap(tmp_path):
    grid = "parameters: {model.k: {values: [1, 2, 4, 8]}}\nseeds: [0, 1]\n"
    assert space.trial_count(spec_of(tmp_path, grid + "baseline: []\n")) == 8
    assert space.trial_count(spec_of(tmp_path, grid)) == 10  # + the base config, once per seed
    assert space.trial_count(spec_of(tmp_path, grid + "run_cap: 6\n")) == 6
    assert space.trial_count(spec_of(tmp_path, "method: tpe\nrun_cap: 12\nparameters: {halt.tau: 'interval(0.3, 0.9)'}\n")) == 12
    assert space.grid_size(spec_of(tmp_path, "method: tpe\nrun_cap: 12\nparameters: {halt.tau: 'interval(0.3, 0.9)'}\n")) is None


def test_directions_follow_the_metrics(tmp_path):
    spec = spec_of(tmp_path, "metrics: [{name: eval/puzzle_acc}, {name: cost/chain_steps, goal: minimize}]\n")
    assert space.directions(spec) == ["maximize", "minimize"]


def test_hydra_stepped_range_and_wandb_q_uniform_are_different_named_options(tmp_path):
    # Hydra's range(a, b, step): a uniform grid a + k*step, b excluded. W&B's q_uniform: round(U(min, max) / q) * q,
    # so the values are multiples of q and the two end values get half the weight of the others.
    hydra = spec_of(tmp_path, "method: random\nrun_cap: 2\nparameters: {optim.muon_wd: 'range(0.0, 0.11, 0.025)'}\n", "h.yaml")
    wandb = spec_of(tmp_path, "method: random\nrun_cap: 2\nparameters: {optim.muon_wd: {distribution: q_uniform, "
                              "min: 0.0, max: 0.1, q: 0.025}}\n", "w.yaml")
    assert space.build_distributions(hydra)["optim.muon_wd"] == FloatDistribution(0.0, 0.1, step=0.025)
    assert space.build_distributions(wandb)["optim.muon_wd"] == FloatDistribution(0.0, 0.1)
    assert space.trainer_values(wandb, {"optim.muon_wd": 0.0374}) == {"optim.muon_wd": 0.025}
    assert space.trainer_values(wandb, {"optim.muon_wd": 0.0376}) == {"optim.muon_wd": 0.05}
    assert space.trainer_values(hydra, {"optim.muon_wd": 0.075}) == {"optim.muon_wd": 0.075}


def test_wandb_grid_over_q_uniform_lists_numpy_arange(tmp_path):
    # W&B's grid lists q_uniform as numpy.arange(min, max, q): max itself is not in the grid.
    spec = spec_of(tmp_path, "parameters: {optim.muon_wd: {distribution: q_uniform, min: 0.01, max: 0.04, q: 0.01}}\n")
    assert space.grid_space(spec) == {"optim.muon_wd": [0.01, 0.02, 0.03]} and space.grid_size(spec) == 3
    assert space.build_distributions(spec)["optim.muon_wd"] == CategoricalDistribution([0.01, 0.02, 0.03])
    assert space.trainer_values(spec, {"optim.muon_wd": 0.03}) == {"optim.muon_wd": 0.03}


def test_a_huge_range_is_counted_not_listed(tmp_path):
    spec = spec_of(tmp_path, "method: tpe\nrun_cap: 3\nparameters: {steps: 'range(1, 1000000000000)', "
                             "optim.muon_wd: {distribution: q_uniform, min: 0, max: 1, q: 1.0e-300}}\n")
    assert {p.name: p.grid_size() for p in spec.swept} == {"steps": 999_999_999_999, "optim.muon_wd": 10**18}
    assert space.build_distributions(spec)["steps"] == IntDistribution(1, 999_999_999_999)


def values_of(spec, values, preset="cpu-sweep"):
    return flatten(to_dict(trial_config(spec, values, spec.seeds[0], preset)))


def test_trial_config_applies_base_then_constants_then_params_then_seed(tmp_path):
    spec = spec_of(tmp_path, """
        base: {overrides: {model.hidden: 48, model.k: 2, halt.tau: 0.7}}
        parameters: {model.k: {values: [1, 4]}, halt.tau: {value: 0.6}}
        seeds: [5]
    """)
    cfg = trial_config(spec, {"model.k": 4}, seed=5, preset="cpu-sweep")
    preset_steps = resolve("cpu-sweep").steps  # untouched keys keep the preset's value
    assert (cfg.model.hidden, cfg.model.k, cfg.halt.tau, cfg.seed, cfg.steps) == (48, 4, 0.6, 5, preset_steps)
    assert trial_config(spec, {}, seed=1, preset="cpu-sweep").model.k == 2


def test_base_preset_wins_over_profile(tmp_path):
    spec = spec_of(tmp_path, "base: {preset: smoke}\nprofile: cpu-sweep\n")
    assert resolve_profile(spec, has_gpu=True)[0] == "smoke"
    assert trial_config(spec, {}, 0, "paper").steps == resolve("smoke").steps


def test_resolve_profile(tmp_path):
    auto = spec_of(tmp_path, "seeds: [0]\n")
    assert resolve_profile(auto, has_gpu=True)[0] == "paper"
    preset, line = resolve_profile(auto, has_gpu=False)
    assert preset == "cpu-sweep" and "auto" in line and "cpu-sweep" in line
    assert resolve_profile(spec_of(tmp_path, "profile: smoke\n"), has_gpu=True)[0] == "smoke"


def test_resource_shares(tmp_path):
    spec = spec_of(tmp_path, "resources: {gpu: '0.125 * K'}\ncpus: 'max(1, model.k / 2)'\nparameters: {model.k: {values: [1, 4, 16]}}\n")
    assert share(spec, "resources.gpu", values_of(spec, {"model.k": 4})) == 0.5
    assert share(spec, "resources.gpu", values_of(spec, {"model.k": 16})) == 2.0
    assert share(spec, "cpus", values_of(spec, {"model.k": 4})) == 2.0
    assert share(spec, "cpus", values_of(spec, {"model.k": 1})) == 1.0
    quarter = spec_of(tmp_path, "resources: {trials_per_gpu: 4}\n")
    assert share(quarter, "resources.gpu", values_of(quarter, {})) == 0.25
    odd = spec_of(tmp_path, "resources: {gpu: '0.75 * K'}\nparameters: {model.k: {values: [1, 2]}}\n")
    with pytest.raises(UserError, match=r"resources.gpu: '0.75 \* K' gives 1.5"):
        share(odd, "resources.gpu", values_of(odd, {"model.k": 2}))


@pytest.mark.parametrize("low, high, q", [(0.0, 0.02, 0.005), (0.0, 0.3, 0.1), (0.05, 0.95, 0.1), (0.0, 0.06, 0.02),
                                          (1.0, 2.0, 0.3), (0.001, 0.0101, 0.001)])
def test_q_uniform_grid_is_numpy_arange(tmp_path, low, high, q):
    # W&B's grid_search.py lists q_uniform with numpy.arange(min, max, q): numpy is the reference here
    spec = spec_of(tmp_path, f"parameters: {{optim.muon_wd: {{distribution: q_uniform, min: {low}, max: {high}, q: {q}}}}}\n")
    ours = space.grid_space(spec)["optim.muon_wd"]
    assert ours == pytest.approx(np.arange(low, high, q).tolist(), rel=1e-12, abs=1e-15)
    assert space.grid_size(spec) == len(np.arange(low, high, q))


ROUND_TRIP = """
method: random
parameters:
  halt.tau: {distribution: normal, mu: 0.5, sigma: 0.05}
  model.k: {values: [1, 2, 4], probabilities: [0.2, 0.0, 0.8]}
  optim.adam_lr: {distribution: inv_log_uniform, min: 5.3, max: 9.2}
  optim.muon_lr: {distribution: log_normal, mu: -4.6, sigma: 0.5}
  halt.explore_prob: {distribution: q_beta, a: 2, b: 5, q: 0.05}
  optim.muon_wd: {distribution: q_uniform, min: 0.0, max: 0.02, q: 0.005}
  model.hidden: {distribution: q_log_uniform, min: 3, max: 5, q: 8}
"""


def test_latent_of_gives_back_a_latent_for_each_reachable_value(tmp_path):
    # What a baseline needs: the latent whose value is a given trainer value (None when none is).
    spec = spec_of(tmp_path, ROUND_TRIP)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(50):
        trial = study.ask(space.build_distributions(spec))
        for p in spec.swept:
            value = p.value(trial.params[p.name])
            latent = p.latent_of(value)
            assert latent is not None and p.value(latent) == pytest.approx(value, rel=1e-9), (p.name, value)
    params = {p.name: p for p in spec.swept}
    assert params["model.k"].latent_of(2) is None  # probability 0
    assert params["halt.tau"].latent_of(2.0) is None  # beyond the truncated normal's reach
    assert params["optim.muon_wd"].latent_of(0.0123) is None  # not a multiple of q
    assert params["optim.adam_lr"].latent_of(-1.0) is None


def test_latent_of_respects_steps_and_grids(tmp_path):
    spec = spec_of(tmp_path, "method: random\nparameters: {optim.muon_ns_steps: 'range(1, 9, 2)', "
                             "optim.muon_wd: 'range(0.0, 0.1, 0.025)'}\n")
    steps, wd = spec.parameters
    assert steps.latent_of(3) == 3 and steps.latent_of(2) is None
    assert wd.latent_of(0.05) == pytest.approx(0.05) and wd.latent_of(0.06) is None
    grid = spec_of(tmp_path, "parameters: {optim.muon_wd: {distribution: q_uniform, min: 0.01, max: 0.04, q: 0.01}}\n")
    assert grid.parameters[0].latent_of(0.02, grid=True) == 0.02 and grid.parameters[0].latent_of(0.04, grid=True) is None
