"""The page `sweeper ui NAME` prints, as a fresh browser renders it: a real smoke sweep (two trials, K=1 is the
baseline configuration), a real `sweeper ui` over its store, and headless Chromium (Debian's `chromium`, which
.ci/run installs) on the printed URL. A fresh profile lands on MLflow's GenAI trace overview unless the URL says
otherwise; the sweep's trials must be rows of the table, with the comparison with TTA among the columns.
The screenshot is kept in the test's tmp folder (its path is printed: pytest -s shows it)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from helpers.browser import Browser, chromium_path
from helpers.sweeps import env, smoke_variant, sweeper
from sweeper.tracking.store import ENV_URI

pytestmark = pytest.mark.slow


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first line `proc` prints on stdout, waiting at most `timeout` seconds ('' if none came)."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0].strip() if line else ""


@pytest.fixture
def chromium():
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium chromium-driver)")


def test_the_printed_page_shows_the_sweeps_trials_and_their_comparison_with_tta(tmp_path, free_port, chromium):
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "uipage", parameters={"model.k": {"values": [1, 2]}}, seeds=[0],
                         scheduler={"type": "none"})
    e = env()
    e.pop(ENV_URI, None)
    done = sweeper("run", str(spec), "--root", str(root), env=e)
    assert done.returncode == 0, done.stderr[-3000:]
    ui = subprocess.Popen([sys.executable, "-m", "sweeper", "ui", "uipage", "--root", str(root), "--port",
                           str(free_port)], cwd=tmp_path, env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        url = _first_line(ui, timeout=180)
        assert url.startswith(f"http://127.0.0.1:{free_port}/#/experiments/"), (url, ui.poll())
        assert "workflowType=machine_learning" in url
        with Browser(tmp_path / "chromium-profile") as page:
            page.goto(url)
            text = page.wait_for_text(["t0000", "t0001", "vs_tta/puzzle_acc_delta"], timeout=60)
            shot = page.screenshot(tmp_path / "sweep_runs_page.png")
            print(f"screenshot of the runs page: {shot}")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    assert "t0000" in text and "t0001" in text, text[:2000]  # the trials are rows, not folded under the parent
    assert "vs_tta/puzzle_acc_delta" in text and "vs_tta/p_value" in text, text[:2000]
    assert "model.k" in text  # the swept parameter is a column
    assert "Traces\n0" not in text  # not the GenAI trace overview a fresh browser gets by default
    assert shot.stat().st_size > 10_000
