"""What a sweep's processes import and do before the first trial starts (benchmarks/bench_sweep.py measures
the seconds): the driver imports no torch where there is no GPU, a trial worker none of the driver's
modules, and the store is opened while Ray starts, its errors raised in the driver's own thread."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweeper.errors import UserError
from sweeper.sweep.runner import Meanwhile

REPO = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip()


def test_without_a_gpu_device_file_the_count_is_zero_and_torch_is_not_imported(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "null").touch()
    code = f"import sys; from pathlib import Path; from sweeper.util.gpus import gpu_count; " \
           f"print(gpu_count(Path({str(dev)!r})), 'torch' in sys.modules)"
    assert _python(code) == "0 False"
    (dev / "nvidia0").touch()  # a device file: torch is asked (and, on a machine without CUDA, says 0)
    import torch

    expected = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert _python(code) == f"{expected} True"


@pytest.mark.skipif(any(Path("/dev").glob("nvidia[0-9]*")), reason="a GPU machine's driver imports torch to count")
def test_planning_a_sweep_on_a_cpu_machine_imports_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from sweeper.cli import app; "
            "r = CliRunner().invoke(app, ['run', 'search_spaces/smoke.yaml', '--dry-run']); "
            "print(r.exit_code, 'torch' in sys.modules)")
    assert _python(code) == "0 False"


def test_a_trial_worker_imports_none_of_the_drivers_modules():
    # What a worker unpickles (the trainable and the MLflow sink factory) and then imports to train.
    code = ("import sys, sweeper.sweep.trainable, sweeper.tracking.trial_sink, trm_core.trainer; "
            "print(sorted(m for m in ('scipy', 'sweeper.tracking.driver_hooks', 'sweeper.results.pairing', "
            "'sweeper.results.report', 'sweeper.sweep.runner', 'sweeper.spec') if m in sys.modules))")
    assert _python(code) == "[]"


def test_meanwhile_hands_back_the_value_or_raises_the_error_in_the_callers_thread():
    assert Meanwhile(None).result() == ((), ())
    assert Meanwhile(lambda: (["hook"], ["factory"])).result() == (["hook"], ["factory"])

    def bad_store():
        raise UserError("tracking store refused")

    with pytest.raises(UserError, match="tracking store refused"):
        Meanwhile(bad_store).result()


def test_a_local_ray_starts_no_idle_workers_and_tune_writes_no_result_files(tmp_path, monkeypatch):
    """Ray's first-driver prestart (one idle Python worker per CPU) is off: Tune's trial actors never use those
    workers, and starting them slowed ray.init on 2 cores. And within quiet_ray, Tune writes no CSV, JSON or
    TensorBoard files of its own (the trial folders are the record)."""
    import time

    import ray
    from ray import tune

    from sweeper.sweep import cluster
    from sweeper.sweep.sweepdir import SweepDir
    from sweeper.util.procs import _psutil

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    sweep = SweepDir.at("idle", tmp_path)
    sweep.path.mkdir()
    assert cluster.start_ray(None, sweep) is True
    try:
        time.sleep(2.0)  # Ray prestarts its workers as the driver registers, in the background
        titles = [p.cmdline()[0] for p in _psutil().Process().children(recursive=True)]
        assert "ray::RuntimeEnvAgent" in titles, titles  # Ray's Python processes name themselves ray::<role>
        assert "ray::IDLE" not in titles, titles  # an idle worker's title

        def trainable(config):
            tune.report({"x": config["x"]})

        with cluster.quiet_ray(sweep.path / "driver.log"):
            tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                       run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="t", verbose=0)).fit()
        made = {p.name for p in (tmp_path / "ray" / "t").rglob("*") if p.is_file()}
        assert any(n.startswith("experiment_state") for n in made), made  # Tune did run and write its state
        assert not {n for n in made if n in ("progress.csv", "result.json") or n.startswith("events.out")}, made
        assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in __import__("os").environ  # restored after the block
    finally:
        cluster.stop_ray(True)
        assert not ray.is_initialized()
