"""Trainer throughput: chain-steps/s, achieved FLOP/s vs this machine's dense-matmul FLOP/s, peak memory.

    python benchmarks/bench_trainer.py                 # CPU: two small shapes, K in {1, 4}
    python benchmarks/bench_trainer.py --paper         # GPU: the paper shape, K=1 B384 and K=4 B192

Prints a table and writes JSON (benchmarks/results/bench_trainer_<device>.json). The matmul rate is
measured in the same run, so the ratio (MFU) is comparable across noisy, shared machines.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from benchlib import flops_per_chain_step, matmul_rate, sync

from trm_core.config import resolve
from trm_core.data import load_splits
from trm_core.trainer import Run, pick_device, train_step


def measure(cfg, steps: int, warmup: int) -> dict:
    device = pick_device(cfg.device)
    train_set, _ = load_splits(cfg.data)
    run = Run(cfg, device, train_set)
    for _ in range(warmup):
        train_step(run)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        out = train_step(run)
    out["loss"].item()
    sync(device)
    dt = time.perf_counter() - t0
    chain_steps = steps * cfg.batch_size * cfg.model.k
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {"chain_steps_per_s": chain_steps / dt, "flops": flops_per_chain_step(cfg) * chain_steps / dt,
            "ms_per_step": 1000 * dt / steps, "peak_mem_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", action="store_true", help="paper shape (GPU)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the H-cycle (CUDA)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    device = pick_device("auto")
    if args.paper:
        cases = [("paper K=1 B384", "paper-baseline", {}), ("paper K=4 B192", "paper", {})]
        steps, warmup = args.steps or 100, 10
    else:
        torch.set_num_threads(2)
        small = {"model.hidden": 128, "model.multiple_of": 64, "model.l_cycles": 3}
        cases = [("tiny K=1 B32", "cpu-tiny", {}), ("tiny K=4 B32", "cpu-tiny", {"model.k": 4}),
                 ("D128 K=1 B32", "cpu-tiny", small), ("D128 K=4 B32", "cpu-tiny", {**small, "model.k": 4})]
        steps, warmup = args.steps or 20, 3
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = matmul_rate(device, dtype, 8192 if device.type == "cuda" else 1024)
    rows = []
    for name, preset, over in cases:
        cfg = resolve(preset, {**over, "compile": args.compile, "data.source": "builtin", "data.n_train": 2000,
                               "data.n_test": 10})
        r = measure(cfg, steps, warmup)
        rows.append({"case": name, **r, "mfu": r["flops"] / peak})
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"dense matmul {dtype}: {peak / 1e12:.2f} TFLOP/s")
    print(f"{'case':18s} {'chain-steps/s':>14s} {'ms/step':>9s} {'TFLOP/s':>9s} {'MFU':>7s} {'peak MB':>9s}")
    for r in rows:
        print(f"{r['case']:18s} {r['chain_steps_per_s']:14.1f} {r['ms_per_step']:9.1f} {r['flops'] / 1e12:9.3f} "
              f"{r['mfu']:7.1%} {r['peak_mem_mb']:9.0f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench_trainer_{device.type}.json"
    path.write_text(json.dumps({"device": str(device), "matmul_flops": peak, "rows": rows}, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
