"""`sweeper eval` prints the comparison table, writes results, and turns bad input into one error line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from sweeper.commands import eval as eval_cmd
from trm_core import checkpoint
from trm_core.config import ModelConfig, TrainConfig, to_dict
from trm_core.model import TRM


@pytest.fixture(scope="module")
def app():
    # A fresh app with only this command, so the test does not depend on the other command groups.
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    eval_cmd.register(app)
    return app


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = TrainConfig(model=ModelConfig(hidden=16, multiple_of=16, h_cycles=1, l_cycles=1, max_act_steps=2, k=2))
    model = TRM(cfg.model)
    return checkpoint.save(tmp_path_factory.mktemp("run"), 10, {"config": to_dict(cfg), "model": model.state_dict()})


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    base = np.array([[(r * 3 + r // 3 + c) % 9 + 1 for c in range(9)] for r in range(9)]).reshape(81)
    rng = np.random.default_rng(0)
    lines = ["source,question,answer,rating"]
    for i in range(6):
        sol = rng.permutation(9)[base - 1] + 1
        q = sol.copy()
        q[rng.choice(81, 30, replace=False)] = 0
        lines.append(f"gen,{''.join('.' if d == 0 else str(d) for d in q)},{''.join(map(str, sol))},{i}")
    path = tmp_path_factory.mktemp("data") / "puzzles.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eval_prints_the_table_and_writes_json_and_csv(app, ckpt, csv, tmp_path):
    r = CliRunner().invoke(app, ["eval", str(ckpt), "--data", str(csv), "--modes", "full,halt_first,tta",
                                 "--limit", "4", "--out", str(tmp_path), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    header = next(line for line in r.output.splitlines() if line.startswith("method"))
    for col in ("method", "cell acc", "puzzle acc", "chain-steps/puzzle", "relative cost", "efficiency"):
        assert col in header
    assert "tta_vote" in r.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["meta"]["puzzles"] == 4 and results["tau_curve"]
    assert (tmp_path / "results.csv").read_text().startswith("method,")
    assert len((tmp_path / "per_puzzle.csv").read_text().splitlines()) == 5


@pytest.mark.parametrize("args, message", [
    (["eval", "missing/ckpt", "--data", "builtin"], "checkpoint not found"),
    (["eval", "CKPT", "--data", "CSV", "--modes", "full,tta_vote"], "did you mean 'tta'"),
    (["eval", "CKPT", "--data", "BROKEN"], "BROKEN"),
    (["eval", "CKPT", "--data", "nowhere.csv"], "--data nowhere.csv"),
    (["eval", "CKPT", "--data", "CSV", "--precision", "fp16"], "unknown precision 'fp16'"),
    (["eval", "CKPT", "--data", "CSV", "--fallback", "chain1"], "unknown fallback 'chain1'"),
])
def test_bad_input_is_one_error_line_and_exit_2(app, ckpt, csv, tmp_path, args, message):
    broken = tmp_path / "broken.csv"
    broken.write_text("source,question,answer,rating\ngen,123,456,0\n")
    swap = {"CKPT": str(ckpt), "CSV": str(csv), "BROKEN": str(broken)}
    args = [swap.get(a, a) for a in args]
    message = swap.get(message, message)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output


def test_eval_of_a_checkpoint_scores_full_as_its_training_did(app, tmp_path):
    """`sweeper eval --modes full` on a run's last checkpoint gives its last eval/* numbers (one evaluation
    path), here for a fresh-init model, whose in-training and final evaluations once disagreed."""
    from trm_core.config import resolve
    from trm_core.sink import ListSink
    from trm_core.trainer import train

    cfg = resolve("smoke", {"device": "cpu", "model.k": 2, "model.z_l_init": "fresh", "eval_batch_rows": 12})
    sink = ListSink()
    train(cfg, sink, tmp_path / "run" / "checkpoints")
    last = sink.evals[-1][1]
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), "--modes", "full", "--no-tau-curve", "--device", "cpu",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "out" / "results.json").read_text())["rows"][0]
    assert 0 < row["cell_acc"] < 1
    assert (row["puzzle_acc"], row["cell_acc"], row["mean_halt_step"]) == (
        last["eval/puzzle_acc"], last["eval/cell_acc"], last["eval/mean_halt_step"])
