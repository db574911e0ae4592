"""A really full disk is a disk error: saving a checkpoint raises OSError(ENOSPC) (which sweeper treats as
'stop resumably'), never a bare RuntimeError (which it treats as a failed trial); the temporary folder is
removed and the previous checkpoint still loads."""
import errno
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from trm_core import checkpoint, durable
from trm_core.config import resolve
from trm_core.trainer import train


@pytest.fixture
def small_fs(tmp_path):
    """Mount a size-limited tmpfs; yields a function size_bytes -> mount point. Skips where mount is not
    permitted (not root, or a container without CAP_SYS_ADMIN)."""
    mounted = []

    def mount(size_bytes: int) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        kib = max(4, size_bytes // 1024)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_training_onto_a_filling_disk_raises_enospc_and_keeps_the_last_checkpoint(tmp_path, small_fs):
    cfg = resolve("smoke", {"data.cache_dir": str(tmp_path / "cache"), "keep_checkpoints": 2})
    assert cfg.steps == 2 * cfg.eval_every  # two checkpoints: the first must fit, the second must not
    # size the file system from a real checkpoint of this config: room for one and a half
    train(resolve("smoke", {"data.cache_dir": str(tmp_path / "cache"), "steps": cfg.eval_every}),
          checkpoint_dir=tmp_path / "probe")
    one = sum(f.stat().st_size for f in checkpoint.list_checkpoints(tmp_path / "probe")[0].iterdir())
    root = small_fs(one * 3 // 2) / "ck"

    with pytest.raises(OSError) as err:
        train(cfg, checkpoint_dir=root)
    assert err.value.errno == errno.ENOSPC
    assert [p.name for p in root.iterdir()] == [f"{checkpoint.PREFIX}{cfg.eval_every:08d}"]  # no .tmp- left
    state = checkpoint.load_latest(root)
    assert state["step"] == cfg.eval_every


def test_a_runtime_error_on_a_full_disk_is_reported_as_enospc(tmp_path, small_fs):
    point = small_fs(64 * 1024)
    with pytest.raises(OSError):  # fill it
        (point / "fill").write_bytes(b"\0" * (128 * 1024))
    mapped = durable.disk_error(RuntimeError("[enforce fail at inline_container.cc] unexpected pos"), point)
    assert isinstance(mapped, OSError) and mapped.errno == errno.ENOSPC
    if shutil.disk_usage(tmp_path).free >= durable.NEARLY_FULL_BYTES:
        assert durable.disk_error(RuntimeError("not a disk problem"), tmp_path) is None


def test_the_checkpoint_writer_reports_dev_full_as_enospc():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    state = {"schema": checkpoint.SCHEMA, "weights": torch.zeros(64 * 1024)}
    with pytest.raises(OSError) as err:
        checkpoint.write_state(Path("/dev/full"), state)
    assert err.value.errno == errno.ENOSPC
