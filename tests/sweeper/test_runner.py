"""Driver plumbing without a Ray cluster: the study broker over the Optuna journal, the searcher resolving each
trial once, outcomes, a torn journal, refusals."""
from __future__ import annotations

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.spec import build_spec
from sweeper.sweep.plan import plan_sweep
from sweeper.sweep.searcher import SweepSearcher, outcome
from sweeper.sweep.session import pending_reason
from sweeper.sweep.study import StudyBroker, baseline_points, load_trials, repair_journal
from sweeper.sweep.sweepdir import SweepDir
from sweeper.sweep.trial import TrialPlan

SPEC = {"name": "unit", "method": "grid", "profile": "smoke", "metric": {"name": "eval/cell_acc", "goal": "maximize"},
        "parameters": {"optim.adam_lr": {"values": [0.001, 0.003]}}, "seeds": [0, 1], "cpus": "K",
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2, "max_t": 2}}


def make(tmp_path, **changes):
    spec = build_spec({**SPEC, **changes})
    sweep = SweepDir.at(spec.name, tmp_path)
    sweep.path.mkdir(parents=True)
    base = {"optim.adam_lr": 0.002}  # not a grid value: the baseline runs it through `overrides`
    broker = StudyBroker(sweep, spec, total=6, baselines=baseline_points(spec, base))
    return spec, sweep, broker


class Session:
    """What the searcher needs of a driver session: the plan, a stop flag, and where it reports."""

    def __init__(self, spec):
        self.plan, self.stop_reason = plan_sweep(spec, gpus=0), None
        self.planned_trials, self.ended_trials, self.winding = {}, [], 0

    def planned(self, trial_id, trial):
        self.planned_trials[trial_id] = trial

    def ended(self, trial_id, number, state, reason):
        self.ended_trials.append((number, state))

    def winding_down(self):
        self.winding += 1


def test_each_configuration_runs_once_per_seed_and_baselines_come_first(tmp_path):
    spec, sweep, broker = make(tmp_path)
    broker.enqueue_baselines()
    got = [broker.next_trial() for _ in range(6)]
    assert got[0]["baseline"] == 0 and got[0]["seed"] == 0 and got[1]["baseline"] == 0 and got[1]["seed"] == 1
    assert got[0]["overrides"] == {"optim.adam_lr": 0.002}
    pairs = [(tuple(sorted({**t["params"], **t["overrides"]}.items())), t["seed"]) for t in got]
    assert len(set(pairs)) == 6  # 3 configurations (baseline + 2 grid points) x 2 seeds, none twice
    assert broker.next_trial() is None  # the count is capped from the journal


def test_a_trial_asked_before_a_crash_is_handed_out_again_not_reasked(tmp_path):
    spec, sweep, broker = make(tmp_path)
    first = broker.next_trial()
    after_crash = StudyBroker(sweep, spec, total=6, baselines=broker.baselines)  # owns nothing yet
    again = after_crash.next_trial()
    assert again["number"] == first["number"] and again["params"] == first["params"]
    assert len(load_trials(sweep.journal, spec.name)) == 1


def test_the_searcher_ships_a_resolved_plan_and_records_how_trials_ended(tmp_path):
    spec, sweep, _ = make(tmp_path, baseline=[{"optim.adam_lr": 0.002}])
    session = Session(spec)
    broker = StudyBroker(sweep, spec, total=6, baselines=list(session.plan.baselines))
    broker.enqueue_baselines()
    searcher = SweepSearcher(broker, session)
    a, b, c = (searcher.suggest(tid) for tid in ("ta", "tb", "tc"))
    plan = TrialPlan.from_ray(a)
    # cpus: "K" is evaluated on the resolved config, once, in the driver; the plan carries the config.
    assert plan.config["model"]["k"] == 1 and plan.cpu == 1.0 and a["cpu"] == 1.0 and plan.gpu == 0.0
    assert plan.config["optim"]["adam_lr"] == {**plan.params, **plan.overrides}["optim.adam_lr"] == 0.002
    assert plan.config["seed"] == plan.seed
    assert session.planned_trials["ta"] == plan
    assert [TrialPlan.from_ray(t).baseline for t in (a, b, c)] == [True, True, False]  # both seeds of the baseline
    searcher.on_trial_result("ta", {"eval/cell_acc": 0.2, "step": 6, "evals": 1})
    searcher.on_trial_complete("ta", {"eval/cell_acc": 0.3, "step": 12, "evals": 2, "final": True})
    # ASHA stops tb at its first rung: Tune sets done=True but it never reached its last step.
    searcher.on_trial_complete("tb", {"eval/cell_acc": 0.1, "step": 6, "evals": 1, "final": False, "done": True})
    (sweep.trial_dir(plan.number + 2)).mkdir(parents=True)
    (sweep.trial_dir(plan.number + 2) / "failure.json").write_text('{"reason": "diverged: loss became nan by step 3"}')
    searcher.on_trial_complete("tc", None, error=True)
    trials = {t.number: t for t in load_trials(sweep.journal, spec.name)}
    assert trials[0].state == optuna.trial.TrialState.COMPLETE and trials[0].value == 0.3
    pruned = trials[1]
    assert pruned.state == optuna.trial.TrialState.PRUNED and pruned.value == 0.1
    assert "asha" in pruned.user_attrs["reason"]
    failed = trials[2]
    assert failed.state == optuna.trial.TrialState.FAIL and "nan" in failed.user_attrs["reason"]
    assert session.ended_trials == [(0, "COMPLETE"), (1, "PRUNED"), (2, "FAIL")]
    session.stop_reason = "stop requested"
    assert searcher.suggest("td") == SweepSearcher.FINISHED  # a stopping session hands out nothing (test_searcher_stop.py)


def test_the_session_hears_once_every_trial_is_handed_out(tmp_path):
    spec, sweep, broker = make(tmp_path)  # 6 trials
    session = Session(spec)
    searcher = SweepSearcher(broker, session)
    final = {"eval/cell_acc": 0.3, "step": 12, "evals": 2, "final": True}
    for i in range(5):
        assert isinstance(searcher.suggest(f"t{i}"), dict)
    searcher.on_trial_complete("t0", final)
    assert session.winding == 0  # a sixth trial is still to come: the free slot gets it
    assert isinstance(searcher.suggest("t5"), dict)
    searcher.on_trial_complete("t1", final)
    assert session.winding == 1  # from now on slots free up for good


def test_the_searcher_pickles_without_its_session(tmp_path):
    from ray import cloudpickle as pickle  # what Ray uses for the experiment state

    spec, sweep, broker = make(tmp_path)
    searcher = SweepSearcher(broker, Session(spec))
    copy = pickle.loads(pickle.dumps(searcher))
    assert copy.session is None and copy.broker.spec == spec


def test_complete_without_the_metric_is_a_failure(tmp_path):
    spec, sweep, broker = make(tmp_path)
    t = broker.next_trial()
    assert broker.finish(t["number"], "COMPLETE", {"step": 12}, None) == "FAIL"


def test_outcome_uses_the_final_flag_not_tunes_done(tmp_path):
    spec, sweep, _ = make(tmp_path)
    assert outcome(sweep, spec, 0, {"final": True, "evals": 2}, False) == ("COMPLETE", None)
    state, reason = outcome(sweep, spec, 0, {"final": False, "done": True, "evals": 1}, False)
    assert state == "PRUNED" and "after 1 eval" in reason


def test_a_torn_journal_tail_is_cut_off_and_kept_so_the_study_stays_readable(tmp_path):
    spec, sweep, broker = make(tmp_path)
    t = broker.next_trial()
    broker.finish(t["number"], "COMPLETE", {"eval/cell_acc": 0.5}, None)
    good = sweep.journal.read_bytes()
    with open(sweep.journal, "ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "x", "study_id": 0, "datetime_st')  # a short write: disk full
    aside = repair_journal(sweep.journal)
    assert sweep.journal.read_bytes() == good and aside.read_bytes().startswith(b'{"op_code": 4')
    again = StudyBroker(sweep, spec, total=6, baselines=broker.baselines)
    again.next_trial()  # appending after the repair leaves a readable journal
    assert [x.state.name for x in load_trials(sweep.journal, spec.name)] == ["COMPLETE", "RUNNING"]
    assert repair_journal(sweep.journal) is None  # nothing to repair


def test_pending_reason_names_the_missing_resource():
    assert pending_reason({"gpu": 0.5, "cpu": 1}, {"GPU": 0.25, "CPU": 4}, 1, None) == "needs 0.5 GPU, 0.25 free"
    assert pending_reason({"gpu": 0, "cpu": 2}, {"CPU": 1}, 1, None) == "needs 2 CPU, 1 free"
    assert pending_reason({"gpu": 0, "cpu": 1}, {"CPU": 4}, 2, 2) == "waits for a slot (2 of 2 running)"


def _spec_file(tmp_path, **changes):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "name": "cli", **changes}))
    return path


def test_a_second_run_of_the_same_name_is_refused(tmp_path, lock_holder):
    spec = _spec_file(tmp_path)
    root = tmp_path / "sweeps"
    assert CliRunner().invoke(app, ["run", str(spec), "--root", str(root), "--dry-run"]).exit_code == 0
    sweep = SweepDir.at("cli", root)
    sweep.path.mkdir(parents=True)
    (sweep.path / "state.json").write_text("{}")
    lock_holder(sweep.lock_file)
    res = CliRunner().invoke(app, ["run", str(spec), "--root", str(root)])
    assert res.exit_code == 2
    assert "sweep 'cli' is already running" in res.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_fails_at_once(tmp_path):
    spec = _spec_file(tmp_path, base={"overrides": {"device": "cuda"}})
    res = CliRunner().invoke(app, ["run", str(spec), "--root", str(tmp_path / "sweeps")])
    assert res.exit_code == 2
    assert "ask for device 'cuda' but there is no GPU" in res.output
