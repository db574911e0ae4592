"""`sweeper prune` and the driver lock: prune deletes checkpoints, so it must never run beside a driver (a
running sweep, or a `sweeper resume` that is adopting trials whose checkpoints it is about to read).

Why this fails on commit 6911ba4: prune took no lock there (sweeper/commands/sweep.py prune ->
report.prune), so with a second process holding the driver lock it deleted the checkpoints anyway and
rewrote state.json under the running driver.
"""
from __future__ import annotations

import yaml
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.commands._sweeps import init_sweep
from sweeper.sweep.study import StudyBroker

SPEC = {"name": "prunable", "method": "grid", "profile": "smoke", "metric": {"name": "eval/cell_acc", "goal": "maximize"},
        "parameters": {"optim.adam_lr": {"values": [0.001, 0.003, 0.01]}}, "seeds": [0], "baseline": [],
        "scheduler": {"type": "none"}}


def finished_sweep(tmp_path):
    """A sweep folder with three COMPLETE trials in its Optuna journal, each with a checkpoint folder on disk."""
    path = tmp_path / "prunable.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    sweep, spec, _ = init_sweep(path, None, tmp_path / "sweeps")
    broker = StudyBroker(sweep, spec, total=3, baselines=[])
    for value in (0.5, 0.7, 0.6):
        number = broker.next_trial()["number"]
        broker.finish(number, "COMPLETE", {"eval/cell_acc": value, "final": True}, None)
        ckpt = sweep.trial_dir(number) / "checkpoints" / "step-00000012"
        ckpt.mkdir(parents=True)
        (ckpt / "state.pt").write_bytes(b"\0" * 4096)
    return sweep


def checkpoints(sweep) -> list[str]:
    return sorted(p.parent.parent.name for p in sweep.trials.glob("t*/checkpoints/step-*"))


def test_prune_is_refused_while_another_process_holds_the_driver_lock(tmp_path, lock_holder):
    sweep = finished_sweep(tmp_path)
    before_state = sweep.state_file.read_bytes()
    holder = lock_holder(sweep.lock_file)  # a running driver, or a resume adopting the trials
    res = CliRunner().invoke(app, ["prune", "prunable", "--keep-best", "1", "--root", str(sweep.root)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: sweep 'prunable' is running"), res.output
    assert checkpoints(sweep) == ["t0000", "t0001", "t0002"]  # nothing deleted
    assert sweep.state_file.read_bytes() == before_state  # state.json untouched

    holder.kill()  # the driver ended: now the same prune runs, and keeps only the best trial (t0001)
    holder.wait()
    res = CliRunner().invoke(app, ["prune", "prunable", "--keep-best", "1", "--root", str(sweep.root)])
    assert res.exit_code == 0, res.output
    assert checkpoints(sweep) == ["t0001"]
    assert sweep.read_state()["last_prune"]["kept"] == [1]
