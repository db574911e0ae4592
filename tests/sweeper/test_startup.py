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
