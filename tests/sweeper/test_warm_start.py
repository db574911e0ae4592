"""Warm start: another sweep's finished trials seed the study (TPE sees them), never count as this sweep's own,
can be skipped instead of rerun, and a sweep over another space is refused with one line."""
from __future__ import annotations

import pytest

from sweeper.commands._sweeps import init_sweep
from sweeper.errors import UserError
from sweeper.sweep.plan import plan_sweep
from sweeper.sweep.study import StudyBroker, is_foreign, load_trials
from sweeper.sweep.warm_start import seed_study

SPEC = """name: {name}
method: {method}
run_cap: 4
profile: smoke
metric: {{name: eval/cell_acc, goal: maximize}}
parameters:
  optim.adam_lr: {{values: [0.001, 0.003]}}
  model.k: {dist}
seeds: [0]
"""


def sweep_of(tmp_path, name, method="grid", dist="{values: [1, 2]}", **extra):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, method=method, dist=dist) + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    sweep, spec, _ = init_sweep(path, None, tmp_path / "sweeps")
    plan = plan_sweep(spec, gpus=0)
    return sweep, spec, StudyBroker(sweep, spec, plan.total, list(plan.baselines))


def finish_all(broker, value=0.5):
    while (t := broker.next_trial()) is not None:
        broker.finish(t["number"], "COMPLETE", {"eval/cell_acc": value + 0.01 * t["number"]}, None)


def test_finished_trials_of_another_sweep_seed_the_study_but_are_not_its_own(tmp_path):
    src, _, b = sweep_of(tmp_path, "first")
    finish_all(b)
    done = load_trials(src.journal, "first")
    sweep, spec, broker = sweep_of(tmp_path, "second", method="tpe")
    assert seed_study(broker.study, spec, src) == (len(done), 0)
    assert seed_study(broker.study, spec, src) == (0, 0)  # once: a resumed sweep has them already
    imported = [t for t in broker.study.get_trials(deepcopy=False) if is_foreign(t)]
    assert sorted(t.values[0] for t in imported) == sorted(t.values[0] for t in done)  # what TPE learns from
    assert broker.finished_count() == 0 and load_trials(sweep.journal, "second") == []
    finish_all(broker)
    assert len(load_trials(sweep.journal, "second")) == 4  # run_cap counts only its own trials


def test_skip_existing_prunes_what_already_ran_instead_of_rerunning_it(tmp_path):
    src, _, b = sweep_of(tmp_path, "first")
    finish_all(b)
    sweep, spec, broker = sweep_of(tmp_path, "again")
    seed_study(broker.study, spec, src)
    from sweeper.sweep.study import config_of

    broker.skip = frozenset(config_of(t) for t in broker.study.get_trials(deepcopy=False) if is_foreign(t))
    assert broker.next_trial() is None  # every grid point (and the baseline) ran in 'first'
    own = load_trials(sweep.journal, "again")
    assert own and all(t.state.name == "PRUNED" and "warm-start" in t.user_attrs["reason"] for t in own)


def test_a_sweep_over_another_space_is_refused_with_one_line(tmp_path):
    src, _, b = sweep_of(tmp_path, "first")
    finish_all(b)
    _, spec, broker = sweep_of(tmp_path, "other", method="tpe", dist="{distribution: int_uniform, min: 1, max: 4}")
    with pytest.raises(UserError, match="samples model.k as categorical, this one as int_uniform"):
        seed_study(broker.study, spec, src)
    _, spec, broker = sweep_of(tmp_path, "third", method="tpe")
    with pytest.raises(UserError, match="no sweep named 'nope'"):
        from sweeper.sweep.sweepdir import SweepDir

        seed_study(broker.study, spec, SweepDir.at("nope", tmp_path / "sweeps"))
