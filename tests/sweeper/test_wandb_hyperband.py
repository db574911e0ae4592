"""W&B's hyperband stopping rule as a Ray scheduler (sweeper/sweep/wandb_hyperband.py), on reported values."""
from dataclasses import dataclass, field

from ray.tune.schedulers import TrialScheduler

from sweeper.spec import build_spec
from sweeper.sweep.wandb_hyperband import WandbHyperband

STOP, GO = TrialScheduler.STOP, TrialScheduler.CONTINUE


@dataclass
class Trial:
    number: int
    trial_id: str = "ray-id"
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        self.config = {"number": self.number}


def report(sched, number, value, evals):
    return sched.on_trial_result(None, Trial(number), {"eval/cell_acc": value, "evals": evals})


def test_wandbs_own_example():
    # The example in W&B's hyperband_stop_runs docstring (loss, minimize, max_iter 5, eta 2, s 2 -> bands 1, 2):
    # finished a [10, 9] and e [10, 6, 6]; running b [10, 10], c [10, 8, 8], d [10, 7, 7]. Band 2 holds
    # 9, 10, 8, 7, 6 -> sorted[int(0.5 * 5)] = 8: b (10) stops, c (8, not above 8) and d continue.
    bands = build_spec({"metric": {"name": "train/loss"}, "early_terminate": {
        "type": "hyperband", "max_iter": 5, "eta": 2, "s": 2}}).scheduler.rungs
    assert bands == (1, 2)
    sched = WandbHyperband(metric="train/loss", mode="min", bands=bands, eta=2,
                           histories={"a": [10, 9], "e": [10, 6, 6], "c": [10, 8], "d": [10, 7]})
    assert sched.on_trial_result(None, Trial("b"), {"train/loss": 10, "evals": 1}) == GO
    assert sched.on_trial_result(None, Trial("b"), {"train/loss": 10, "evals": 2}) == STOP
    assert sched.on_trial_result(None, Trial("c"), {"train/loss": 8, "evals": 3}) == GO
    assert sched.on_trial_result(None, Trial("d"), {"train/loss": 7, "evals": 3}) == GO


def test_maximize_flips_and_strict_decides_which_value_counts():
    # Four finished trials reached band 2 with accuracies 0.5, 0.6, 0.7, 0.8; a fifth is at 0.55 there
    # after 0.9 at the first report. Negated and sorted: -0.8, -0.7, -0.6, -0.55, -0.5; eta 3 -> index
    # int(5 / 3) = 1 -> threshold -0.7. strict: -0.55 > -0.7 -> stop; not strict: best so far -0.9 -> go.
    history = {n: [0.1, v] for n, v in enumerate([0.5, 0.6, 0.7, 0.8])}
    for strict, verdict in ((True, STOP), (False, GO)):
        sched = WandbHyperband(metric="eval/cell_acc", mode="max", bands=(2, 6), eta=3, strict=strict, histories=history)
        assert report(sched, 9, 0.9, 1) == GO  # no band passed yet
        assert report(sched, 9, 0.55, 2) == verdict


def test_a_trial_is_judged_at_the_latest_band_it_passed_and_repeats_replace():
    # maximize, eta 2: at each band the threshold is the sorted (negated) values at index int(n / 2)
    sched = WandbHyperband(metric="eval/cell_acc", mode="max", bands=(1, 3), eta=2)
    assert [report(sched, n, v, 1) for n, v in enumerate([0.9, 0.8, 0.1])] == [GO, GO, STOP]  # 0.1 below 0.8
    assert report(sched, 0, 0.9, 2) == GO  # still judged at band 1
    assert report(sched, 0, 0.2, 3) == GO  # alone at band 3
    assert [report(sched, 3, v, e) for e, v in ((1, 0.95), (2, 0.95), (3, 0.5))] == [GO, GO, GO]
    assert report(sched, 1, 0.8, 2) == GO
    assert report(sched, 1, 0.1, 3) == STOP  # band 3 holds 0.5, 0.2, 0.1 -> threshold 0.2
    assert report(sched, 5, float("nan"), 1) == GO and not sched.should_stop(5)  # NaN is not history
    assert report(sched, 0, 0.2, 3) == GO and len(sched._sequence(0)) == 3  # a repeated report replaces
