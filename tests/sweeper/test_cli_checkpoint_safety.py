"""Hostile checkpoints through the real CLI: `sweeper eval` and `sweeper train --resume` refuse a state.pt
whose pickle would run code with one `error:` line and exit code 2, and the code never runs; the config
stored in a checkpoint does not choose where `sweeper eval` writes."""
import json
import os
import shlex

import pytest
import torch
from typer.testing import CliRunner

from sweeper.cli import app
from trm_core import checkpoint
from trm_core.config import resolve, to_dict


class RunsCode:
    """Pickles as a call of os.system that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def forge(root, marker, config):
    """A checkpoint folder with a matching checksum whose pickle runs a command when unpickled."""
    folder = root / f"{checkpoint.PREFIX}{6:08d}"
    folder.mkdir(parents=True)
    torch.save({"schema": checkpoint.SCHEMA, "step": 6, "config": config, "model": RunsCode(marker)},
               folder / "state.pt")
    (folder / "state.sha256").write_text(checkpoint._sha256(folder / "state.pt"))


def assert_one_error_line(result):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def smoke(tmp_path):
    return resolve("smoke", {"data.cache_dir": str(tmp_path / "cache")})


def test_eval_refuses_a_checkpoint_that_would_run_code(tmp_path, smoke):
    marker = tmp_path / "PWNED_BY_CHECKPOINT"
    forge(tmp_path / "evil", marker, to_dict(smoke))
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "evil"), "--device", "cpu"])
    line = assert_one_error_line(result)
    assert "could run code" in line and "system" in line
    assert not marker.exists()


def test_train_resume_refuses_a_checkpoint_that_would_run_code(tmp_path, smoke):
    marker = tmp_path / "PWNED_BY_CHECKPOINT"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(to_dict(smoke)))
    forge(run / "checkpoints", marker, to_dict(smoke))
    result = CliRunner().invoke(app, ["train", "--resume", str(run)])
    line = assert_one_error_line(result)
    assert "could run code" in line
    assert not marker.exists()
    assert not (run / "checkpoints" / f"{checkpoint.PREFIX}{12:08d}").exists()  # nothing trained over it


def test_eval_does_not_write_where_the_checkpoint_config_says(tmp_path, smoke, monkeypatch):
    from trm_core.trainer import train

    train(smoke, checkpoint_dir=tmp_path / "ck")
    newest = checkpoint.list_checkpoints(tmp_path / "ck")[-1]
    state = checkpoint.load_state(newest)
    planted = tmp_path / "written-by-checkpoint-config"
    state["config"]["data"]["cache_dir"] = str(planted)
    forged = checkpoint.save(tmp_path / "forged", state["step"], {k: v for k, v in state.items()
                                                                  if k not in ("schema", "step")})
    monkeypatch.setenv("SWEEPER_CACHE", str(tmp_path / "user-cache"))
    result = CliRunner().invoke(app, ["eval", str(forged), "--data", "test", "--modes", "full", "--no-tau-curve",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert not planted.exists()
    assert list((tmp_path / "user-cache" / "sudoku-generated").glob("*/inputs.npy"))
