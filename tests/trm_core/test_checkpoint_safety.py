"""Loading a checkpoint never runs code: a state.pt whose pickle would run a command (with a matching
state.sha256, which anyone who writes state.pt can also write) is refused with one line, and so is a
format-1 checkpoint (numpy objects in the RNG state); a real checkpoint loads and resumes its RNGs."""
import os
import random
import shlex

import numpy as np
import pytest
import torch

from trm_core import checkpoint
from trm_core.checkpoint import CheckpointError
from trm_core.config import resolve, to_dict
from trm_core.errors import ConfigError


class RunsCode:
    """Pickles as a call of os.system (what a hostile checkpoint would hold)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def forge(root, step, payload):
    """A checkpoint folder as save() writes it (state.pt + matching state.sha256), but with `payload`."""
    folder = root / f"{checkpoint.PREFIX}{step:08d}"
    folder.mkdir(parents=True)
    torch.save(payload, folder / "state.pt")
    (folder / "state.sha256").write_text(checkpoint._sha256(folder / "state.pt"))
    return folder


def _config():
    return to_dict(resolve("smoke"))


def test_a_pickle_that_runs_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    folder = forge(tmp_path / "ck", 5, {"schema": checkpoint.SCHEMA, "step": 5, "config": _config(),
                                         "model": RunsCode(marker)})
    assert checkpoint.verify(folder) is None  # the checksum matches: it is no defence
    with pytest.raises(CheckpointError) as err:
        checkpoint.load_state(folder)
    assert not marker.exists()
    msg = str(err.value)
    assert "\n" not in msg and str(folder) in msg and "system" in msg and "could run code" in msg
    assert isinstance(err.value, ConfigError)  # sweeper prints ConfigError as one `error:` line


def test_load_latest_stops_at_a_refused_checkpoint_instead_of_falling_back(tmp_path):
    marker = tmp_path / "PWNED"
    root = tmp_path / "ck"
    checkpoint.save(root, 1, {"config": _config(), "weights": torch.ones(3)})
    forge(root, 2, {"schema": checkpoint.SCHEMA, "step": 2, "x": RunsCode(marker)})
    with pytest.raises(CheckpointError):
        checkpoint.load_latest(root)
    assert not marker.exists()


def test_a_torn_checkpoint_still_falls_back_to_the_previous_one(tmp_path):
    root = tmp_path / "ck"
    checkpoint.save(root, 1, {"weights": torch.ones(3)})
    newest = checkpoint.save(root, 2, {"weights": torch.zeros(3)})
    with open(newest / "state.pt", "r+b") as f:
        f.truncate(100)
    events = []
    state = checkpoint.load_latest(root, on_event=events.append)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert len(events) == 1 and "checksum mismatch" in events[0]


def test_a_format_1_checkpoint_is_refused_with_the_reason(tmp_path):
    folder = forge(tmp_path / "ck", 3, {"schema": 1, "step": 3, "rng": {"numpy": np.random.get_state()}})
    with pytest.raises(CheckpointError, match=r"format 1\) cannot be loaded safely: train again"):
        checkpoint.load_state(folder)


def test_another_format_number_is_refused(tmp_path):
    folder = forge(tmp_path / "ck", 3, {"schema": 99, "step": 3})
    with pytest.raises(CheckpointError, match=f"checkpoint format 99 is not {checkpoint.SCHEMA}"):
        checkpoint.load_state(folder)


def test_numpy_and_python_rng_states_survive_a_weights_only_round_trip(tmp_path):
    np.random.seed(7)
    random.seed(7)
    np.random.standard_normal()  # leaves a cached gaussian in the legacy state
    saved_np, saved_py = np.random.get_state(), random.getstate()
    expect_np, expect_py = np.random.random(5), random.random()
    path = checkpoint.save(tmp_path / "ck", 1, {"rng": {"numpy": checkpoint.pack_numpy_rng(saved_np),
                                                          "python": saved_py}})
    state = checkpoint.load_state(path)
    np.random.seed(0)
    random.seed(0)
    np.random.set_state(checkpoint.unpack_numpy_rng(state["rng"]["numpy"]))
    random.setstate(state["rng"]["python"])
    assert np.array_equal(np.random.random(5), expect_np) and random.random() == expect_py


def test_a_trained_checkpoint_loads_without_unpickling_code(tmp_path):
    from trm_core.trainer import train

    cfg = resolve("smoke", {"steps": 6, "data.cache_dir": str(tmp_path / "cache")})
    train(cfg, checkpoint_dir=tmp_path / "ck")
    (path,) = checkpoint.list_checkpoints(tmp_path / "ck")
    # the same call load_state makes, spelled out: weights_only=True accepts the whole file
    state = torch.load(path / "state.pt", weights_only=True)
    assert state["schema"] == checkpoint.SCHEMA and state["step"] == 6
    model, loaded_cfg, _ = checkpoint.load_model(path)
    assert loaded_cfg == cfg
