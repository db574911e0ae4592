"""Helpers of the end-to-end sweep tests: spec variants of search_spaces/smoke.yaml, CLI subprocesses.

Every sweep runs in a subprocess (`python -m sweeper ...`), so Ray never lives in the pytest process and
a test can kill the driver like a user would.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
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
    # The repo for `sweeper`, this folder for the test sinks and hooks (Ray workers unpickle them).
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), str(Path(__file__).parent), e.get("PYTHONPATH", "")])
    e.pop("RAY_ADDRESS", None)
    return e


def sweeper(*args: str, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
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
    from sweeper.sweepdir import read_jsonl

    steps = [r["step"] for r in read_jsonl(trial_dir / "evals.jsonl")]
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
        from sweeper.sweepdir import append_jsonl

        append_jsonl(self.path, {"kind": kind, "step": step})


class RecordingHooks:
    """Driver hooks that append each event to a JSONL file."""

    def __init__(self, path):
        self.path = path

    def _add(self, event, **kw):
        from sweeper.sweepdir import append_jsonl

        append_jsonl(self.path, {"event": event, **kw})

    def sweep_started(self, sweep, resumed):
        self._add("sweep_started", resumed=resumed, total=sweep.total_trials)

    def trial_started(self, trial):
        self._add("trial_started", number=trial.number)

    def trial_ended(self, trial, state, reason):
        self._add(f"trial_ended:{state}", number=trial.number, reason=reason)

    def sweep_ended(self, sweep, status, reason):
        self._add("sweep_ended", status=status)
