"""A stopping session hands out no more trials, and says so to Tune as 'finished', not 'nothing yet'.

With 'nothing yet' (None) and no trial left running (a max_failures stop after the last running trial
failed), Tune blocks in its trial queue for up to 10 minutes waiting for a trial, and no callback runs to
end the session: tests/reliability/test_trial_faults.py's max_failures sweep hung until its timeout.
"""
from __future__ import annotations

from ray.tune.search import Searcher

from sweeper.spec import build_spec
from sweeper.sweep.plan import plan_sweep
from sweeper.sweep.searcher import SweepSearcher
from sweeper.sweep.study import StudyBroker
from sweeper.sweep.sweepdir import SweepDir

SPEC = {"name": "halting", "method": "grid", "profile": "smoke", "metric": {"name": "eval/cell_acc", "goal": "maximize"},
        "parameters": {"optim.adam_lr": {"values": [0.001, 0.003, 0.01]}}, "seeds": [0], "baseline": [],
        "scheduler": {"type": "none"}}


class Session:
    """What the searcher reads of a driver session."""

    def __init__(self, spec):
        self.plan, self.stop_reason, self.trials = plan_sweep(spec, gpus=0), None, {}

    def planned(self, trial_id, trial):
        self.trials[trial_id] = trial


def test_a_stopping_session_finishes_the_search_and_asks_no_trial(tmp_path):
    spec = build_spec(SPEC)
    sweep = SweepDir.at(spec.name, tmp_path)
    sweep.path.mkdir(parents=True)
    session = Session(spec)
    searcher = SweepSearcher(StudyBroker(sweep, spec, total=3, baselines=[]), session)
    assert isinstance(searcher.suggest("a"), dict)  # a trial while running
    session.stop_reason = "2 trials failed, more than max_failures=1"
    assert searcher.suggest("b") is Searcher.FINISHED
    assert len(searcher.broker.own()) == 1  # nothing more was asked of Optuna
