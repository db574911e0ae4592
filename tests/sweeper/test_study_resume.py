"""A grid sweep stopped part-way (a full disk, `sweeper stop`, a time budget) and resumed in a new driver
session runs every grid point exactly once. Found by tests/reliability/test_full_disk.py: the resumed
session handed its new trial the grid point the stopped trial already had.

Why this fails on commit 6911ba4 (and until the fix): each session reseeds the sampler with sampler_seed +
the number of trials so far, and Optuna's GridSampler uses its seed to shuffle the grid that it then
indexes by trial number; a new seed maps trial 1 onto a new order, where it can be trial 0's point.
"""
from __future__ import annotations

import pytest

from sweeper.spec import build_spec
from sweeper.sweep.plan import plan_sweep
from sweeper.sweep.study import StudyBroker
from sweeper.sweep.sweepdir import SweepDir


def broker(sweep, spec):
    plan = plan_sweep(spec, gpus=0)
    b = StudyBroker(sweep, spec, total=plan.total, baselines=list(plan.baselines))
    b.enqueue_baselines()
    return b


@pytest.mark.parametrize("sampler_seed", [0, 1, 7])
@pytest.mark.parametrize("before_stop", [1, 2, 3])
def test_a_resumed_grid_sweep_runs_each_point_once(tmp_path, sampler_seed, before_stop):
    values = [0.0003, 0.001, 0.003, 0.01]
    spec = build_spec({"name": "grid", "method": "grid", "profile": "smoke", "sampler_seed": sampler_seed,
                       "metric": {"name": "eval/cell_acc", "goal": "maximize"}, "baseline": [],
                       "parameters": {"optim.adam_lr": {"values": values}}, "seeds": [0], "scheduler": {"type": "none"}})
    sweep = SweepDir.at("grid", tmp_path)
    sweep.path.mkdir(parents=True)
    first = broker(sweep, spec)
    asked = [first.next_trial() for _ in range(before_stop)]
    first.finish(asked[0]["number"], "COMPLETE", {"eval/cell_acc": 0.5, "final": True}, None)
    # the other asked trials stay RUNNING (stopped resumably); a new session takes over
    second = broker(sweep, spec)
    handed = []
    while (t := second.next_trial()) is not None:
        handed.append(t)
        second.finish(t["number"], "COMPLETE", {"eval/cell_acc": 0.5, "final": True}, None)
    assert [t["number"] for t in handed] == list(range(1, len(values)))  # the RUNNING ones again, then new ones
    ran = [t["params"]["optim.adam_lr"] for t in [asked[0], *handed]]
    assert sorted(ran) == values, ran  # each grid point once
