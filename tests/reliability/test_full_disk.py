"""A really full disk under a running sweep: a tmpfs mounted by the test is the sweeps root, so every write of
the trial (checkpoints, its records) and of the driver (state.json, live.json, the Optuna journal, Ray's
experiment folder) lands on a file system that really runs out of space; nothing raises ENOSPC on purpose.
The MLflow store stays on the normal disk (the command's working directory).

Why these fail on commit 6911ba4: there `checkpoint.save` called `torch.save` with a path, whose C++ writer
reports a full disk as a RuntimeError without an errno; the trainable took that for a crash and recorded
the trial FAIL (never rerun), and the sweep went on. Its full-disk test raised OSError(ENOSPC) from a fault
point after torch.save had already succeeded, so it never met the real error. The driver's own writes
(live.json inside Tune's callback, the stop request, state.json) were not guarded at all.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from helpers.disk import FILLER, fill
from helpers.recovery import check_recovered, driver
from helpers.sweeps import env, smoke_variant
from sweeper import faults
from sweeper.sweep.study import load_trials
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import read_jsonl
from trm_core import checkpoint
from trm_core.config import resolve
from trm_core.trainer import train

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    e = env()
    e.pop(faults.ENV, None)  # no injected fault: the disk is really full
    return e


def _checkpoint_bytes(tmp_path) -> int:
    """The size of one smoke checkpoint, measured on a probe run to its first evaluation."""
    cfg = resolve("smoke", {"device": "cpu", "threads": 1})
    train(resolve("smoke", {"device": "cpu", "threads": 1, "steps": cfg.eval_every}), checkpoint_dir=tmp_path / "probe")
    (one,) = checkpoint.list_checkpoints(tmp_path / "probe")
    return sum(f.stat().st_size for f in one.iterdir())


def _temp_files(sweep: SweepDir) -> list[str]:
    """Temporary files or folders of our writers left in the sweep folder (Ray's scratch under ray/ aside)."""
    return [str(p) for p in sweep.path.rglob("*") if "ray" not in p.relative_to(sweep.path).parts[:1]
            and (p.name.startswith(".tmp-") or p.name.endswith(".tmp"))]


@pytest.mark.fault(
    fault="disk full under a sweep (checkpoint does not fit)", kind="real",
    injected="a tmpfs mounted by the test is the sweeps root, filled so that one smoke checkpoint fits and the "
             "next does not; the trial's torch.save meets a real ENOSPC",
    checked="one `sweep ... stopped: ... no space left on device ...; then sweeper resume` line, exit 1, no "
            "traceback; no trial FAIL in the Optuna journal; the step-6 checkpoint loads; no temporary file "
            "left; after the filler is deleted, `sweeper resume` finishes every trial exactly once")
@pytest.mark.fault(
    fault="checkpoint copies per trial (disk use)", kind="inspection",
    injected="none: the checkpoints the resumed sweep leaves are listed",
    checked="each finished trial keeps only its final checkpoint (two while it trains); Ray's experiment folder "
            "holds no checkpoint copy")
def test_a_checkpoint_that_does_not_fit_stops_the_sweep_resumably(tmp_path, tmpfs):
    """Also the checkpoint retention of finding 12: on commit 6911ba4 a finished trial kept two checkpoints and
    Ray kept a third copy under ray/tune."""
    one = _checkpoint_bytes(tmp_path)
    disk = tmpfs(40 * one)
    root = disk / "sweeps"
    fill(disk, leave=one + one // 2)  # the first checkpoint fits (with the small files); the second does not
    spec = smoke_variant(tmp_path, "full", scheduler={"type": "none"}, concurrency=1,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}})
    res = subprocess.run(driver("run", str(spec), "--root", str(root)), cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    said = [line for line in res.stderr.splitlines() if line.startswith("sweep 'full' stopped")]
    assert len(said) == 1 and "no space left on device" in said[0] and "sweeper resume full" in said[0], \
        res.stderr[-3000:]

    sweep = SweepDir.at("full", root)
    assert sweep.read_state()["status"] == "stopped"
    states = {t.number: t.state.name for t in load_trials(sweep.journal, "full")}
    assert states == {0: "RUNNING"}, states  # resumable, not lost as FAIL; no new trial after the stop
    ends = [a for a in read_jsonl(sweep.trial_dir(0) / "attempts.jsonl") if a["event"] == "end"]
    assert [a["outcome"] for a in ends] == ["disk_error"] and "no space left on device" in ends[0]["reason"]
    assert shutil.disk_usage(disk).free < one  # the disk really is too full for another checkpoint
    ckpts = checkpoint.list_checkpoints(sweep.trial_dir(0) / "checkpoints")
    assert [p.name for p in ckpts] == ["step-00000006"]
    assert checkpoint.load_state(ckpts[0])["step"] == 6
    assert not _temp_files(sweep), _temp_files(sweep)

    (disk / FILLER).unlink()  # free the space
    res = subprocess.run(driver("resume", "full", "--root", str(root)), cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    starts = [a for a in read_jsonl(sweep.trial_dir(0) / "attempts.jsonl") if a["event"] == "start"]
    assert starts[-1]["resumed_from_step"] == 6
    check_recovered(sweep, tmp_path, total=2, steps=12)
    assert not _temp_files(sweep)
    for n in range(2):
        assert [p.name for p in checkpoint.list_checkpoints(sweep.trial_dir(n) / "checkpoints")] == ["step-00000012"]
    assert not list(sweep.ray_storage.rglob("checkpoint_*")), "Ray holds a copy of a checkpoint"


FILLING_DRIVER = """
import sys
from helpers.disk import FillDiskAtStep
from sweeper.commands import sweep as commands
plain = commands.extensions
def extensions(spec, sweep, tracking_uri=None):  # the sweep's own sinks, plus the one that fills the disk
    make = plain(spec, sweep, tracking_uri)
    def with_filler():
        hooks, factories = make()
        return hooks, [*factories, FillDiskAtStep]
    return with_filler
commands.extensions = extensions
from sweeper.cli import app
app(sys.argv[1:], prog_name="sweeper")
"""
"""`sweeper run|resume ...` as the CLI runs it, with FillDiskAtStep added to each trial's sinks."""


@pytest.mark.fault(
    fault="disk filled to the last byte mid-training", kind="real",
    injected="inside the trial worker, a test sink fills the tmpfs sweeps root to the last byte at step 9 (after "
             "the step-6 checkpoint): the trial's next checkpoint and records, and the driver's stop request, "
             "live.json, state.json and journal all meet a real ENOSPC",
    checked="the driver ends with one line `error: sweep NAME stopped: no space left on device ...; free space "
            "..., then sweeper resume NAME` (exit 2: it cannot record its end in state.json), no traceback; no trial FAIL; the "
            "step-6 checkpoint loads; no temporary file left; after the filler is deleted, `sweeper resume` "
            "finishes every trial exactly once")
def test_a_disk_filled_to_the_last_byte_stops_the_driver_cleanly(tmp_path, tmpfs):
    disk = tmpfs(16 << 20)
    root = disk / "sweeps"
    spec = smoke_variant(tmp_path, "brim", scheduler={"type": "none"}, concurrency=1,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}})
    res = subprocess.run([sys.executable, "-c", FILLING_DRIVER, "run", str(spec), "--root", str(root)],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert (root / FILLER).is_file() and shutil.disk_usage(disk).free < 64 << 10, "the disk was not filled"
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "Logging error" not in res.stderr, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]  # the driver could not even record its end in state.json
    assert last.startswith("error: sweep 'brim' stopped: no space left on device") and \
        last.endswith("then `sweeper resume brim`"), res.stderr[-3000:]

    sweep = SweepDir.at("brim", root)
    states = {t.number: t.state.name for t in load_trials(sweep.journal, "brim")}
    assert states == {0: "RUNNING"}, states
    ckpts = checkpoint.list_checkpoints(sweep.trial_dir(0) / "checkpoints")
    assert [p.name for p in ckpts] == ["step-00000006"] and checkpoint.load_state(ckpts[0])["step"] == 6
    assert not _temp_files(sweep), _temp_files(sweep)

    (root / FILLER).unlink()
    res = subprocess.run(driver("resume", "brim", "--root", str(root)), cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    check_recovered(sweep, tmp_path, total=2, steps=12)
    assert not _temp_files(sweep)
