"""A sweep through `--address` on a local two-node Ray cluster (head + one worker, both on 127.0.0.1).

The cluster is stopped by killing exactly the processes it started (found by its private temp dir),
not with `ray stop --force`, which would also end other people's Ray sessions on a shared machine.
"""
from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.sweeps import env, smoke_variant, strictly_increasing_steps, sweeper
from sweeper.sweep.study import load_trials
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import read_jsonl
from sweeper.util.procs import _psutil, kill_recorded, process_record

pytestmark = pytest.mark.slow


def _stop_cluster(temp_dir: str) -> None:
    ps = _psutil()
    records = []
    for p in ps.process_iter(["pid", "cmdline"]):
        if any(temp_dir in part for part in (p.info["cmdline"] or [])):
            records.append(process_record(p.pid))
    kill_recorded([r for r in records if r])


@pytest.fixture
def cluster(free_port):
    # A short path: Ray's unix sockets live under the temp dir and AF_UNIX paths are limited to 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    token = Path(temp_dir) / "token"
    token.write_text(secrets.token_hex(32))
    e = env()
    # Token auth on, with a token private to this cluster (the driver gets the same env).
    e.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    port = free_port
    address = f"127.0.0.1:{port}"
    ray = str(Path(sys.executable).with_name("ray"))
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    try:
        subprocess.run([ray, "start", "--head", f"--port={port}", "--include-dashboard=false",
                        f"--temp-dir={temp_dir}", *common], check=True, env=e, capture_output=True, timeout=120)
        subprocess.run([ray, "start", f"--address={address}", *common], check=True, env=e,
                       capture_output=True, timeout=120)
        yield address, e
    finally:
        _stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sweep_runs_on_an_existing_two_node_cluster(tmp_path, cluster):
    address, e = cluster
    root = tmp_path / "sweeps"
    spec = smoke_variant(tmp_path, "onclu", scheduler={"type": "none"},
                         parameters={"optim.adam_lr": {"values": [0.001, 0.003]}},
                         base={"overrides": {"steps": 24}})
    res = sweeper("run", str(spec), "--root", str(root), "--address", address, env=e)
    assert res.returncode == 0, res.stderr[-3000:]
    sweep = SweepDir.at("onclu", root)
    trials = load_trials(sweep.journal, "onclu")
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    nodes = set()
    for t in trials:
        assert strictly_increasing_steps(sweep.trial_dir(t.number))[-1] == 24
        nodes |= {a["node"] for a in read_jsonl(sweep.trial_dir(t.number) / "attempts.jsonl")}
    # One CPU per node and two trials at once: they ran on both nodes.
    assert len(nodes) == 2
    assert (sweep.read_state().get("ray") or {}).get("address") == address
