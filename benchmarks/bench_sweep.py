"""Sweep overhead: `sweeper run` as a user runs it (a fresh process, the embedded MLflow store), against
the time its trials spend on their own work.

    python benchmarks/bench_sweep.py                  # 16 trials of ~1 minute, 2 at a time (~9 min)
    python benchmarks/bench_sweep.py --trials 4 --steps 60   # a quick look (fixed costs dominate)

Trials of ~1 minute: the steps per trial are calibrated on this machine first (the smoke model's training
step timed in this process on one thread, as a trial runs, for 50 s of steps; its evaluations and the final
evaluation add ~10 s), since CPUs differ threefold in that step (Muon's bf16 Newton-Schulz dominates it);
--steps fixes them instead. The table shows the trials' measured length.

overhead ratio = the command's wall time / (sum of the trials' own seconds / concurrency), where a trial's
own seconds run from its start to its end record in attempts.jsonl (data, training, MLflow logging, final
evaluation, as the worker measures them). Target <= 1.05 for ~1-minute trials. The rest of the wall time is
split into what a sweep pays once (before the first trial starts: imports, Ray, the MLflow store, worker
start-up; after the last ends: report, Ray shutdown) and per trial (the gap before a trial starts in a slot
another trial has just left), so the ratio of any sweep length can be read off:
    ratio ~ 1 + (once + trials * gap / concurrency) / (trials * trial seconds / concurrency).
Prints a table and writes JSON (benchmarks/results/bench_sweep.json).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.05
LOAD_BEFORE = [round(x, 2) for x in os.getloadavg()]


def calibrated_steps(train_seconds: float) -> tuple[int, float]:
    """(steps that train for about `train_seconds` on one thread, ms per step measured): the smoke preset's
    training step, timed for 5 s after a warm-up (benchmarks/benchlib.timed_train)."""
    import torch
    from benchlib import timed_train

    from trm_core.config import resolve

    torch.set_num_threads(1)
    ms = timed_train(resolve("smoke"), window_s=5.0, warmup=10)["ms_per_step"]
    return max(10, round(train_seconds * 1000 / ms / 10) * 10), ms


def write_spec(folder: Path, steps: int, trials: int, concurrency: int) -> Path:
    """The smoke sweep with longer trials and no early stopping (every trial runs its full length)."""
    data = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    lrs = [round(0.001 * (1.1 ** i), 6) for i in range(trials)]
    data.update(name="bench", scheduler={"type": "none"}, concurrency=concurrency, time_budget=None,
                parameters={"optim.adam_lr": {"values": lrs}},
                base={"overrides": {"steps": steps, "eval_every": max(steps // 4, 1), "log_every": max(steps // 20, 1)}})
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def trial_spans(sweep_dir: Path, epoch0: float) -> list[tuple[float, float]]:
    """(start, end) of each trial's completed attempt, seconds after the command started."""
    spans = []
    for d in sorted((sweep_dir / "trials").glob("t*")):
        events = [json.loads(line) for line in (d / "attempts.jsonl").read_text().splitlines() if line.strip()]
        start = [e["time"] for e in events if e.get("event") == "start"][-1]
        end = [e["time"] for e in events if e.get("event") == "end"][-1]
        spans.append((start - epoch0, end - epoch0))
    return spans


def slot_gaps(spans: list[tuple[float, float]], concurrency: int) -> list[float]:
    """Seconds from a trial's end to the start of the next trial that takes its slot (slots are refilled in
    start order: the k-th trial to start after the first `concurrency` follows the k-th trial to end)."""
    starts = sorted(s for s, _ in spans)[concurrency:]
    ends = sorted(e for _, e in spans)
    return [s - e for s, e in zip(starts, ends)]


def run(steps: int, trials: int, concurrency: int, calibration: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_sweep") as tmp:
        spec = write_spec(Path(tmp), steps, trials, concurrency)
        env = {**os.environ, "SWEEPER_HOME": str(Path(tmp) / "sweeps")}
        env.pop("MLFLOW_TRACKING_URI", None)  # the embedded default store, under tmp/mlruns
        epoch0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "sweeper", "run", str(spec)], cwd=tmp, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"sweeper run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        spans = trial_spans(Path(tmp) / "sweeps" / "bench", epoch0)
    own = [e - s for s, e in spans]
    ideal = sum(own) / concurrency
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    gaps = slot_gaps(spans, concurrency)
    return {"command": "sweeper run (embedded MLflow store)", "steps": steps, "trials": trials,
            "concurrency": concurrency, "sweep_wall_s": round(wall, 2), "trial_own_s": [round(s, 2) for s in own],
            "mean_trial_s": round(sum(own) / len(own), 2), "ideal_s": round(ideal, 2),
            "overhead_ratio": round(wall / ideal, 3), "before_first_trial_s": round(first, 2),
            "after_last_trial_s": round(wall - last, 2), "slot_gaps_s": [round(g, 2) for g in gaps],
            "mean_slot_gap_s": round(sum(gaps) / max(len(gaps), 1), 2),
            "trial_spans_s": [[round(a, 2), round(b, 2)] for a, b in spans],
            "target": TARGET, "cpus": os.cpu_count(), "load_average_before": LOAD_BEFORE,
            "calibration": calibration}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="Training steps per trial (default: calibrated to --train-seconds).")
    ap.add_argument("--train-seconds", type=float, default=50.0, help="Seconds of training steps per trial the calibration aims at (the trial's evaluations come on top).")
    ap.add_argument("--trials", type=int, default=16, help="Trials in the sweep.")
    ap.add_argument("--concurrency", type=int, default=2, help="Trials at once.")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_sweep.json")
    args = ap.parse_args()
    calibration = None
    if args.steps is None:
        args.steps, ms = calibrated_steps(args.train_seconds)
        calibration = {"train_seconds": args.train_seconds, "ms_per_step_one_thread": round(ms, 2), "steps": args.steps}
        print(f"calibrated: {ms:.1f} ms per training step on one thread -> {args.steps} steps per trial")
    res = run(args.steps, args.trials, args.concurrency, calibration)
    c = res["concurrency"]
    rows = [("sweep wall time", f"{res['sweep_wall_s']:.1f} s"),
            ("trial own time", f"{res['mean_trial_s']:.1f} s mean of {res['trials']}"),
            (f"ideal (sum / {c})", f"{res['ideal_s']:.1f} s"),
            ("overhead ratio", f"{res['overhead_ratio']:.3f}  (target <= {TARGET})"),
            ("before the first trial", f"{res['before_first_trial_s']:.1f} s"),
            ("after the last trial", f"{res['after_last_trial_s']:.1f} s"),
            ("slot gap (mean)", f"{res['mean_slot_gap_s']:.2f} s")]
    for name, value in rows:
        print(f"{name:26s} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
