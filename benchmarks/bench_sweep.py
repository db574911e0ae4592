"""Sweep overhead: a real sweep's wall time against its trials' own training time, and Ray start-up.

    python benchmarks/bench_sweep.py                 # 4 smoke trials of ~2.5 minutes, 2 at a time (~6 min)
    python benchmarks/bench_sweep.py --steps 60      # a quick look (overhead dominates short trials)

overhead ratio = sweep wall time / (sum of the trials' own seconds / concurrency), where a trial's own
seconds run from its start to its end record in attempts.jsonl (data, training, final evaluation, as the
worker measures them). Target <= 1.05 for ~1-minute trials. The wall time adds Ray's start-up, worker
start-up (torch import), Optuna and Tune bookkeeping, the driver's results and report, and Ray's shutdown;
the ratio without Ray start-up and the seconds before the first and after the last trial are printed too.
Prints a table and writes JSON (benchmarks/results/bench_sweep.json).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.05
LOAD_BEFORE = [round(x, 2) for x in os.getloadavg()]


def ray_startup_seconds() -> float:
    """Seconds for a local ray.init (as the runner does it) to return, and shutdown."""
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), num_gpus=0, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="ERROR")
    took = time.perf_counter() - t0
    ray.shutdown()
    return took


def write_spec(folder: Path, steps: int, trials: int, concurrency: int) -> Path:
    """The smoke sweep with longer trials, no early stopping (every trial runs its full length)."""
    data = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    lrs = [0.001 * (1.5 ** i) for i in range(trials)]
    data.update(name="bench", scheduler={"type": "none"}, concurrency=concurrency, time_budget=None,
                parameters={"optim.adam_lr": {"values": lrs}},
                base={"overrides": {"steps": steps, "eval_every": max(steps // 4, 1), "log_every": max(steps // 20, 1)}})
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(steps: int, trials: int, concurrency: int) -> dict:
    from sweeper.commands._sweeps import init_sweep
    from sweeper.sweep.runner import RunRequest, run_sweep
    from sweeper.util.files import read_jsonl

    startup = ray_startup_seconds()
    with tempfile.TemporaryDirectory(prefix="bench_sweep") as tmp:
        sweep, spec, _ = init_sweep(write_spec(Path(tmp), steps, trials, concurrency), None, Path(tmp) / "sweeps")
        t0, epoch0 = time.perf_counter(), time.time()
        out = run_sweep(RunRequest(sweep=sweep, spec=spec, live=False))
        wall = time.perf_counter() - t0
        per_trial, spans = [], []
        for d in sorted(sweep.trials.glob("t*")):
            attempts = read_jsonl(d / "attempts.jsonl")
            ends = [a for a in attempts if a.get("event") == "end"]
            per_trial.append(sum(a["train_seconds"] for a in ends))
            starts = [a["time"] for a in attempts if a.get("event") == "start"]
            spans.append((min(starts) - epoch0, max(a["time"] for a in ends) - epoch0))
    ideal = sum(per_trial) / concurrency
    # Where the rest of the wall time goes: before the first trial starts (Ray, the study, worker start-up),
    # after the last one ends (results, report, Ray shutdown), and between trials.
    first_start, last_end = min(s for s, _ in spans), max(e for _, e in spans)
    return {"steps": steps, "trials": trials, "concurrency": concurrency, "status": out.status,
            "ray_startup_s": round(startup, 2), "sweep_wall_s": round(wall, 2),
            "trial_train_s": [round(s, 2) for s in per_trial], "ideal_s": round(ideal, 2),
            "overhead_ratio": round(wall / ideal, 3), "overhead_ratio_without_ray_start": round((wall - startup) / ideal, 3),
            "before_first_trial_s": round(first_start, 2), "after_last_trial_s": round(wall - last_end, 2),
            "trial_spans_s": [[round(a, 2), round(b, 2)] for a, b in spans],
            "target": TARGET, "cpus": os.cpu_count(), "load_average_before": LOAD_BEFORE}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="Training steps per trial (2000: ~160 s on one core of this CPU; Muon's bf16 Newton-Schulz dominates the smoke model's step).")
    ap.add_argument("--trials", type=int, default=4, help="Trials in the sweep.")
    ap.add_argument("--concurrency", type=int, default=2, help="Trials at once.")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_sweep.json")
    args = ap.parse_args()
    res = run(args.steps, args.trials, args.concurrency)
    rows = [("ray start-up", f"{res['ray_startup_s']:.1f} s"), ("sweep wall time", f"{res['sweep_wall_s']:.1f} s"),
            ("trial own time", " + ".join(f"{s:.1f}" for s in res["trial_train_s"]) + " s"),
            (f"ideal (sum / {res['concurrency']})", f"{res['ideal_s']:.1f} s"),
            ("overhead ratio", f"{res['overhead_ratio']:.3f}  (target <= {TARGET})"),
            ("  without ray start-up", f"{res['overhead_ratio_without_ray_start']:.3f}"),
            ("before the first trial", f"{res['before_first_trial_s']:.1f} s"),
            ("after the last trial", f"{res['after_last_trial_s']:.1f} s")]
    for name, value in rows:
        print(f"{name:26s} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
