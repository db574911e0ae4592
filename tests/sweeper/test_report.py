"""`sweeper report`: the table from MLflow search_runs, seeds pooled, best first, one-line errors."""
from __future__ import annotations

import csv
import io
import math

import pytest
from typer.testing import CliRunner

from sweeper import results_table, tracking
from sweeper.cli import app

from tracking_helpers import fake_trial, make_spec, puzzles, sweep_info


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A finished two-seed sweep in ./mlruns: adam_lr 0.001 (= the smoke preset: the baseline config) and
    0.003, both seeds complete, plus one pruned trial. Synthetic final evaluations, no training."""
    tmp_path = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.delenv(tracking.ENV_URI, raising=False)
        _populate(tmp_path)
        yield make_spec("rep", seeds=[0, 1])


def _populate(tmp_path):
    spec = make_spec("rep", seeds=[0, 1])
    sweep_dir = tmp_path / "sweeps" / spec.name
    (hooks,), (factory,) = tracking.hooks_for(spec, sweep_dir)
    hooks.strict = True
    hooks.sweep_started(sweep_info(spec, sweep_dir, total=5), resumed=False)
    number = 0
    for lr, p in ((0.001, 0.3), (0.003, 0.7)):
        for seed in (0, 1):
            fake_trial(hooks, factory, spec, sweep_dir, number, {"optim.adam_lr": lr}, seed=seed,
                       correct={"halt_first": puzzles(p, seed=number), "tta": puzzles(0.4, seed=100 + seed)})
            number += 1
    fake_trial(hooks, factory, spec, sweep_dir, number, {"optim.adam_lr": 0.003}, state="PRUNED", reason="asha")
    hooks.sweep_ended(sweep_info(spec, sweep_dir, total=5), "finished", None)


def test_table_rows_match_search_runs(populated):
    runs = tracking.run_rows(tracking.Tracker(tracking.resolve_store(), populated.name))
    rows = results_table.build_table(runs)
    assert [r["role"] for r in rows] == ["trial", "baseline", "trial"]  # 70%, TTA 40%, 30%: best first
    best = rows[0]
    assert best["configuration"] == "optim.adam_lr=0.003" and best["seeds"] == 2
    trials = [r for r in runs if r["tags"].get("sweeper.config") == "optim.adam_lr=0.003"
              and r["tags"].get("sweeper.state") == "COMPLETE"]
    accs = [r["metrics"]["final/halt_first/puzzle_acc"] for r in trials]
    assert best["puzzle_acc_mean"] == pytest.approx(sum(accs) / 2)
    assert best["puzzle_acc_std"] == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2))
    assert best["delta"] == pytest.approx(trials[0]["metrics"]["vs_tta_config/puzzle_acc_delta"])
    assert best["ci_low"] < best["delta"] < best["ci_high"] and best["p_value"] < 0.05 and best["verdict"] == "better"
    assert rows[2]["configuration"].endswith("(baseline config)") and rows[2]["verdict"] == "worse"
    assert best["cost_ratio"] == pytest.approx(2.0 / 24.0)


def test_report_command_prints_the_table_in_three_formats(populated):
    runner = CliRunner()
    out = runner.invoke(app, ["report", populated.name])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("configuration") and "Δ vs TTA" in lines[0]
    assert lines[2].startswith("optim.adam_lr=0.003") and "better" in lines[2]
    assert lines[3].startswith("TTA baseline")
    md = runner.invoke(app, ["report", populated.name, "--format", "markdown"]).output
    assert md.startswith("| configuration |") and md.count("\n") == 5
    text = runner.invoke(app, ["report", populated.name, "--format", "csv"]).output
    parsed = list(csv.DictReader(io.StringIO(text)))
    runs = tracking.run_rows(tracking.Tracker(tracking.resolve_store(), populated.name))
    expected = results_table.build_table(runs)
    assert [r["configuration"] for r in parsed] == [r["configuration"] for r in expected]
    assert [float(r["puzzle_acc_mean"]) for r in parsed] == pytest.approx([r["puzzle_acc_mean"] for r in expected])


def test_unknown_sweep_is_one_line_with_the_nearest_name(populated):
    out = CliRunner().invoke(app, ["report", "rpe"])
    assert out.exit_code == 2
    store = tracking.resolve_store()
    assert out.output.strip() == f"error: no sweep named 'rpe' in {store.uri} (did you mean 'rep'?)"


def test_bad_format_is_a_user_error(populated):
    out = CliRunner().invoke(app, ["report", populated.name, "--format", "html"])
    assert out.exit_code == 2 and "--format" in out.output
