"""One evaluation path: the last in-training evaluation (eval/*, what a sweep optimises) equals the `full` row
of trm_core.evaluation.evaluate (what the final evaluation reports) on the same checkpoint, exactly."""
from __future__ import annotations

import pytest

from trm_core.config import resolve
from trm_core.data import load_splits
from trm_core.evaluation import evaluate, load_checkpoint
from trm_core.sink import ListSink
from trm_core.trainer import train


class CheckpointSink(ListSink):
    """ListSink that also keeps the checkpoint folder of each evaluation."""

    def __init__(self) -> None:
        super().__init__()
        self.paths = []

    def on_eval(self, metrics, step, checkpoint_dir):
        super().on_eval(metrics, step, checkpoint_dir)
        self.paths.append(checkpoint_dir)


def trained(tmp_path, **overrides):
    """The smoke preset with K=2 chains (seconds of training)."""
    cfg = resolve("smoke", {"device": "cpu", "model.k": 2, "eval_batch_rows": 12, **overrides})
    sink = CheckpointSink()
    train(cfg, sink, tmp_path / "checkpoints")
    (step, metrics), path = sink.evals[-1], sink.paths[-1]
    assert step == cfg.steps and path is not None
    return cfg, metrics, path


@pytest.mark.parametrize("z_l_init, eval_z_l_init", [("fixed", "l_init"), ("fresh", "l_init"), ("fresh", "fresh")])
def test_last_in_training_eval_equals_full_mode_on_its_checkpoint(tmp_path, z_l_init, eval_z_l_init):
    cfg, metrics, path = trained(tmp_path, **{"model.z_l_init": z_l_init, "eval_z_l_init": eval_z_l_init})
    test = load_splits(cfg.data)[1]
    _, saved_cfg, _ = load_checkpoint(path, "cpu")
    assert saved_cfg == cfg
    # 12 rows = 12 slots over 32 puzzles: refilled slots and a draining tail on both paths.
    res = evaluate(path, test, saved_cfg, modes=("full",), taus=None)
    row = res.row("full")
    # A model this small solves no whole puzzle yet, so the exact equality of cell accuracy (a count over
    # 32 x 81 cells, neither 0 nor 1) is what shows that both paths computed the same answers.
    assert 0 < row["cell_acc"] < 1
    assert row["puzzle_acc"] == metrics["eval/puzzle_acc"]
    assert row["cell_acc"] == metrics["eval/cell_acc"]
    assert row["mean_halt_step"] == metrics["eval/mean_halt_step"]
    if eval_z_l_init == "fresh":  # fresh noise really is a different start from L_init[0]
        other = evaluate(path, test, saved_cfg, modes=("full",), taus=None, z_l_init="l_init").row("full")
        assert other["cell_acc"] != row["cell_acc"]
