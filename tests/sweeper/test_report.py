"""`sweeper report`: the table from the sweep folder and from MLflow (the same records), seeds pooled, one row
per TTA rule, the reference rule named and configurable, best first, one-line errors."""
from __future__ import annotations

import csv
import io
import math

import pytest
from typer.testing import CliRunner

from helpers.tracking import Driver, make_spec, puzzles
from sweeper.cli import app
from sweeper.results import records
from sweeper.results import report as table
from sweeper.tracking import Tracker, resolve_store, run_rows
from sweeper.tracking.store import ENV_URI


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A finished two-seed sweep: adam_lr 0.001 (= the smoke preset: the baseline config) and 0.003, both seeds
    complete, plus one pruned trial. Two TTA rules: tta (40%) and tta_vote (55%, the strongest). Synthetic
    final evaluations, no training."""
    tmp_path = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.delenv(ENV_URI, raising=False)
        spec = make_spec("rep", seeds=[0, 1])
        d = Driver(spec, tmp_path / "sweeps" / spec.name, total=5)
        d.start()
        number = 0
        for lr, p in ((0.001, 0.3), (0.003, 0.7)):
            for seed in (0, 1):
                d.fake_trial(number, {"optim.adam_lr": lr}, seed=seed, correct={
                    "halt_first": puzzles(p, seed=number), "tta": puzzles(0.4, seed=100 + seed),
                    "tta_vote": puzzles(0.55, seed=200 + seed)})
                number += 1
        d.fake_trial(number, {"optim.adam_lr": 0.003}, state="PRUNED", reason="asha")
        d.end()
        yield tmp_path, spec


def test_table_rows_pool_seeds_and_compare_with_the_strongest_tta(populated):
    tmp_path, spec = populated
    runs = records.sweep_records(tmp_path / "sweeps" / spec.name)
    rows = table.build_table(runs)
    assert [r["role"] for r in rows] == ["trial", "baseline", "baseline", "trial"]  # 70%, 55%, 40%, 30%
    assert [r["rule"] for r in rows if r["role"] == "baseline"] == ["tta_vote", "tta"]
    assert [r["verdict"] for r in rows if r["role"] == "baseline"] == ["reference", ""]
    best = rows[0]
    assert best["configuration"] == "optim.adam_lr=0.003" and best["seeds"] == 2
    trials = [r for r in runs if r["tags"].get("sweeper.config") == "optim.adam_lr=0.003"]
    accs = [r["metrics"]["final/halt_first/puzzle_acc"] for r in trials]
    assert best["puzzle_acc_mean"] == pytest.approx(sum(accs) / 2)
    assert best["puzzle_acc_std"] == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2))
    assert best["ci_half_width"] == pytest.approx(12.706 * best["puzzle_acc_std"] / math.sqrt(2), rel=1e-3)
    assert best["delta"] == pytest.approx(trials[0]["metrics"]["vs_config/tta_vote/puzzle_acc_delta"])
    assert best["delta"] == pytest.approx(best["puzzle_acc_mean"] - 0.55, abs=0.05)
    assert best["ci_low"] < best["delta"] < best["ci_high"] and best["p_value"] < 0.05 and best["verdict"] == "better"
    assert rows[3]["configuration"].endswith("(baseline config)") and rows[3]["verdict"] == "worse"
    # Against the weaker rule on request
    weak = table.build_table(runs, "tta")[0]
    assert weak["delta"] == pytest.approx(trials[0]["metrics"]["vs_config/tta/puzzle_acc_delta"])
    assert weak["delta"] > best["delta"]


def test_the_folder_and_mlflow_give_the_same_table(populated):
    tmp_path, spec = populated
    from_folder = table.build_table(records.sweep_records(tmp_path / "sweeps" / spec.name))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        from_mlflow = table.build_table(run_rows(Tracker(resolve_store(), spec.name)))
    keys = ("configuration", "seeds", "puzzle_acc_mean", "delta", "ci_low", "ci_high", "p_value", "verdict")
    assert [[r[k] for k in keys] for r in from_mlflow] == [[r[k] for k in keys] for r in from_folder]


def test_report_command_prints_the_table_in_three_formats(populated, monkeypatch):
    tmp_path, spec = populated
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    out = runner.invoke(app, ["report", spec.name])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "against TTA rule tta_vote" in lines[0]
    assert lines[1].startswith("configuration") and "Δ vs TTA" in lines[1]
    assert lines[3].startswith("optim.adam_lr=0.003") and "better" in lines[3]
    assert lines[4].startswith("TTA tta_vote") and "reference" in lines[4]
    md = runner.invoke(app, ["report", spec.name, "--format", "markdown"]).stdout
    assert md.startswith("| configuration |") and md.count("\n") == 6
    text = runner.invoke(app, ["report", spec.name, "--format", "csv", "--vs", "tta"]).stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    expected = table.build_table(records.sweep_records(tmp_path / "sweeps" / spec.name), "tta")
    assert [r["configuration"] for r in parsed] == [r["configuration"] for r in expected]
    assert [r["verdict"] for r in parsed if r["role"] == "baseline"] == ["", "reference"]


def test_unknown_names_are_one_line_with_the_nearest_name(populated, monkeypatch):
    tmp_path, spec = populated
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["report", "rpe"])
    assert out.exit_code == 2
    assert out.output.strip() == f"error: no sweep named 'rpe' in {resolve_store().uri} (did you mean 'rep'?)"
    out = CliRunner().invoke(app, ["report", spec.name, "--vs", "tta_vot"])
    assert out.exit_code == 2 and "did you mean 'tta_vote'" in out.output


def test_bad_format_is_a_user_error(populated):
    out = CliRunner().invoke(app, ["report", populated[1].name, "--format", "html"])
    assert out.exit_code == 2 and "--format" in out.output


def test_a_p_value_below_the_smallest_double_is_not_printed_as_zero():
    from sweeper.results.report import _p

    # McNemar's exact p for hundreds of losses and no wins underflows to 0.0; "0" would read as impossible.
    assert (_p(0.0), _p(3.87e-101), _p(float("nan"))) == ("< 1e-300", "3.87e-101", "–")
