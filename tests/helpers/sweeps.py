"""Sweeps in tests: spec variants of search_spaces/smoke.yaml, the CLI in a subprocess, an in-process driver
script with test sinks and hooks, and the invariants every finished sweep must hold.

Every sweep runs in a subprocess (`python -m sweeper ...`), so Ray never lives in the pytest process and
a test can kill the driver like a user would.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sweeper.util.files import append_jsonl, read_jsonl

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
SMOKE = REPO / "search_spaces" / "smoke.yaml"


def smoke_variant(tmp_path: Path, name: str, **changes) -> Path:
    """search_spaces/smoke.yaml with `changes`. The metric is eval/cell_acc: puzzle accuracy of the
    12-step smoke model is 0 for every trial, and ASHA cannot prune among ties."""
    data = yaml.safe_load(SMOKE.read_text())
    data.update(name=name, metric={"name": "eval/cell_acc", "goal": "maximize"}, time_budget="5m")
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def env() -> dict[str, str]:
    e = dict(os.environ)
    # The repo for `sweeper`, tests/ for `helpers` (Ray workers unpickle the test sinks and hooks).
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), e.get("PYTHONPATH", "")])
    e.pop("RAY_ADDRESS", None)
    return e


def sweeper(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run `python -m sweeper ARGS` to completion; output captured as text.

    The working directory defaults to the folder holding `--root`, so the default MLflow store
    (./mlruns) of a test sweep lands in the test's tmp_path, not in the repo."""
    cwd = kw.pop("cwd", None)
    if cwd is None:
        cwd = Path(args[args.index("--root") + 1]).parent if "--root" in args else REPO
    return subprocess.run([sys.executable, "-m", "sweeper", *args], capture_output=True, text=True,
                          timeout=timeout, env=kw.pop("env", None) or env(), cwd=cwd, **kw)


def strictly_increasing_steps(trial_dir: Path) -> list[int]:
    """Steps of the trial's evaluations; asserts no step was evaluated twice (no retraining)."""
    steps = [r["step"] for r in read_jsonl(trial_dir / "evals.jsonl") if not r.get("stop")]
    assert steps == sorted(set(steps)), f"{trial_dir.name} re-evaluated a step: {steps}"
    return steps


class FileSink:
    """A sink factory (the class is the factory): appends what it sees to trials/tNNNN/filesink.jsonl."""

    def __init__(self, ctx):
        self.path = ctx.work_dir / "filesink.jsonl"

    def log(self, metrics, step):
        self._add("log", step)

    def on_eval(self, metrics, step, checkpoint_dir):
        self._add("eval", step)

    def close(self):
        self._add("close", None)

    def _add(self, kind, step):
        append_jsonl(self.path, {"kind": kind, "step": step})


class RecordingHooks:
    """Driver hooks that append each event to a JSONL file."""

    def __init__(self, path):
        self.path = path

    def _add(self, event, **kw):
        append_jsonl(self.path, {"event": event, **kw})

    def sweep_started(self, sweep, resumed):
        self._add("sweep_started", resumed=resumed, total=sweep.total_trials)

    def trial_started(self, trial):
        self._add("trial_started", number=trial.number)

    def trial_ended(self, trial, state, reason):
        # A slow hook (a remote tracking server) when the test asks for one: it must not hold up the next trial.
        time.sleep(float(os.environ.get("SWEEPER_TEST_HOOK_SLEEP", "0")))
        self._add(f"trial_ended:{state}", number=trial.number, reason=reason)

    def sweep_ended(self, sweep, status, reason):
        self._add("sweep_ended", status=status)


IN_PROCESS = """
import json, sys, ray
from helpers.sweeps import FileSink, ModuleRecorder, RecordingHooks, count_resolutions
ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
try:
    from sweeper.commands._sweeps import init_sweep
    from sweeper.sweep.runner import RunRequest, run_sweep
    sweep, spec, _ = init_sweep(sys.argv[1], None, sys.argv[2])
    hooks = RecordingHooks(sweep.path / "hooks.jsonl")
    req = RunRequest(sweep=sweep, spec=spec, live=False, hooks=[hooks], sink_factories=[FileSink, ModuleRecorder])
    with count_resolutions() as calls:
        code = run_sweep(req).exit_code
    (sweep.path / "resolutions.json").write_text(json.dumps(calls))
finally:
    ray.shutdown()
sys.exit(code)
"""
"""A driver on a Ray started by the script itself (4 CPUs and one logical GPU), with the test sinks and hooks;
it records in resolutions.json, per trial the driver resolved, how many TrainConfigs that resolution built."""


@contextlib.contextmanager
def count_resolutions():
    """Count, in this (driver) process, the trials the searcher resolves and the trm_core.config.resolve calls
    each makes: yields a list that fills with [trial number, TrainConfig builds] pairs."""
    from sweeper.sweep import resolve as R
    from sweeper.sweep import searcher as S

    calls, real_trial, real_resolve = [], S.resolve_trial, R.resolve
    builds = [0]

    def counted_resolve(*a, **k):
        builds[0] += 1
        return real_resolve(*a, **k)

    def counted_trial(spec, handout, *a, **k):
        builds[0] = 0
        out = real_trial(spec, handout, *a, **k)
        calls.append([int(handout["number"]), builds[0]])
        return out

    S.resolve_trial, R.resolve = counted_trial, counted_resolve
    try:
        yield calls
    finally:
        S.resolve_trial, R.resolve = real_trial, real_resolve


def run_in_process(spec: Path, root: Path, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run IN_PROCESS on `spec` under `root` (extra env via env=...)."""
    return subprocess.run([sys.executable, "-c", IN_PROCESS, str(spec), str(root)], capture_output=True, text=True,
                          timeout=timeout, env=kw.pop("env", None) or env(), **kw)


class ModuleRecorder:
    """A sink factory (the class is the factory) that records which sweeper modules the trial's worker has
    imported by the time the trial ends (trials/tNNNN/worker_modules.json)."""

    def __init__(self, ctx):
        self.path = ctx.work_dir / "worker_modules.json"

    def log(self, metrics, step):
        pass

    def on_eval(self, metrics, step, checkpoint_dir):
        pass

    def close(self):
        import json

        self.path.write_text(json.dumps(sorted(m for m in sys.modules if m.startswith("sweeper"))))
