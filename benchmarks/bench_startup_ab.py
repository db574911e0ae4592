"""A short sweep's wall time with this checkout's code against an earlier commit's, alternated in one run.

    python benchmarks/bench_startup_ab.py 7e4ce12            # 4 rounds of a 2-trial smoke sweep each (~6 min)

Each round runs `python -m sweeper run` on the same 2-trial smoke sweep (12 steps a trial: what it measures
is start-up and shutdown) once with the earlier commit's code (a git worktree put first on PYTHONPATH) and
once with this checkout's, each in a fresh folder with a new MLflow store. Alternating in one run cancels
most of a shared machine's drift. Prints a table and writes JSON (benchmarks/results/bench_startup_ab.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def sweep_seconds(code: Path, folder: Path) -> float:
    """Wall time of `sweeper run` of the 2-trial smoke sweep with the sweeper package found in `code`."""
    folder.mkdir()
    spec = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    spec.update(name="ab", scheduler={"type": "none"}, parameters={"optim.adam_lr": {"values": [0.001, 0.002]}})
    (folder / "ab.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "PYTHONPATH": str(code), "SWEEPER_HOME": str(folder / "sweeps")}
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sweeper", "run", "ab.yaml"], cwd=folder, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"sweeper run with {code} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="The earlier commit (any git revision).")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_startup_ab.json")
    args = ap.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    times: dict[str, list[float]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory(prefix="bench_ab") as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.before], cwd=REPO, check=True)
        try:
            for r in range(args.rounds):
                times["before"].append(sweep_seconds(old, Path(tmp) / f"b{r}"))
                times["now"].append(sweep_seconds(REPO, Path(tmp) / f"n{r}"))
                print(f"round {r + 1}: before {times['before'][-1]:.1f} s, now {times['now'][-1]:.1f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, check=False)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    res = {"sweep": "smoke, 2 trials of 12 steps, 2 at a time, new MLflow store", "before": args.before, "now": head,
           "seconds": times, "mean_s": {k: round(statistics.mean(v), 1) for k, v in times.items()},
           "cpus": os.cpu_count(), "load_average_before": load}
    print(f"{'':8s} {'mean':>7s}  runs")
    for k, v in times.items():
        print(f"{k:8s} {res['mean_s'][k]:6.1f}s  " + ", ".join(f"{x:.1f}" for x in v))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
