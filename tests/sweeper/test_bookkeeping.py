"""What follows a trial's start and end in the driver (the baseline comparisons, the hooks: MLflow's writes)
runs in one bookkeeping thread, in order, and never holds a free slot (sweeper.sweep.bookkeeping)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers.sweeps import env, run_in_process, smoke_variant
from sweeper.sweep.bookkeeping import InOrder
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import read_jsonl

REPO = Path(__file__).resolve().parents[2]


def test_in_order_runs_work_in_order_off_the_callers_thread_and_raises_its_errors_there():
    later, done, threads = InOrder("test"), [], set()
    gate = threading.Event()

    def work(i):
        def run():
            gate.wait(5)
            threads.add(threading.current_thread().name)
            done.append(i)
        return run

    later.run(work(0))
    later.run(work(1))
    assert done == []  # run() returned while the work waits
    gate.set()
    later.drain()
    assert done == [0, 1] and threading.current_thread().name not in threads

    def boom():
        raise OSError(28, "No space left on device")

    later.run(boom)
    later.run(work(2))  # the work after an error still runs
    with pytest.raises(OSError, match="No space"):
        later.drain()
    assert done == [0, 1, 2]
    later.run(boom)
    deadline = time.monotonic() + 5
    while later.pending and not later.pending[0].done() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(OSError):  # surfaces at the next call in the caller's thread
        later.run(work(3))


def test_winding_down_imports_the_reports_modules_once_in_the_bookkeeping_thread():
    code = ("import sys; from sweeper.sweep.bookkeeping import Bookkeeping; s = Bookkeeping(None, ()); "
            "assert 'matplotlib.pyplot' not in sys.modules; "
            "s.winding_down(); s.winding_down(); n = len(s.later.pending); s.drain(); "
            "print(n, 'matplotlib.pyplot' in sys.modules, 'sweeper.results.report' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["1", "True", "True"]


@pytest.mark.slow
def test_a_slow_hook_does_not_hold_the_next_trial_and_the_hooks_keep_their_order(tmp_path):
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "slowhook", scheduler={"type": "none"}, concurrency=2,
                         parameters={"optim.adam_lr": {"values": [0.001, 0.002, 0.003, 0.004]}})
    res = run_in_process(spec, root, env={**env(), "SWEEPER_TEST_HOOK_SLEEP": "3"})
    assert res.returncode == 0, res.stderr[-3000:]
    sweep = SweepDir.at("slowhook", root)
    spans = []
    for d in sorted(sweep.trials.glob("t*")):
        end = [a for a in read_jsonl(d / "attempts.jsonl") if a["event"] == "end"][-1]
        spans.append((end["start"], end["end"]))
    assert len(spans) == 4
    starts, ends = sorted(s for s, _ in spans)[2:], sorted(e for _, e in spans)
    gaps = [s - e for s, e in zip(starts, ends)]
    assert all(g < 1.5 for g in gaps), f"a free slot waited for the 3 s hook: gaps {gaps}"
    events = read_jsonl(sweep.path / "hooks.jsonl")
    names = [e["event"] for e in events]
    assert names[0] == "sweep_started" and names[-1] == "sweep_ended"  # the report waited for the hooks
    assert names.count("trial_ended:COMPLETE") == 4
    for n in range(4):
        where = [i for i, e in enumerate(events) if e.get("number") == n]
        assert [names[i] for i in where] == ["trial_started", "trial_ended:COMPLETE"], where
