"""Evaluation speed and cost: puzzles/s per mode on CPU, and the chain-step cost of halt-first vs TTA-8.

    python benchmarks/bench_eval.py                          # newest checkpoint under runs/bench-eval-k4/, else train one
    python benchmarks/bench_eval.py --checkpoint runs/X      # any trained checkpoint
    python benchmarks/bench_eval.py --train-minutes 4        # budget for the quick cpu-tiny K=4 training

The halt-first claim needs a trained halting head (a random-init head never exceeds tau), so without a
checkpoint this trains the cpu-tiny preset with K=4 for a few minutes first. Prints a table and writes
JSON to benchmarks/results/bench_eval_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from trm_core import checkpoint
from trm_core.config import resolve
from trm_core.data import load_splits
from trm_core.evaluation import evaluate

RUN_DIR = Path("runs/bench-eval-k4")
RESULTS = Path(__file__).parent / "results"


def trained_checkpoint(args) -> Path:
    """The given checkpoint, else the newest under RUN_DIR, else a fresh quick cpu-tiny K=4 training."""
    if args.checkpoint:
        return Path(args.checkpoint)
    if checkpoint.list_checkpoints(RUN_DIR / "checkpoints"):
        return RUN_DIR
    from trm_core.trainer import train

    cfg = resolve("cpu-tiny", {"model.k": args.k, "max_minutes": args.train_minutes, "steps": args.train_steps})
    print(f"training cpu-tiny K={args.k} for at most {args.train_minutes} min -> {RUN_DIR}")
    train(cfg, None, RUN_DIR / "checkpoints")
    return RUN_DIR


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint or run folder (default: runs/bench-eval-k4, trained if missing)")
    p.add_argument("--puzzles", type=int, default=200, help="held-out puzzles to evaluate")
    p.add_argument("--k", type=int, default=4, help="chains of the quick training")
    p.add_argument("--train-minutes", type=float, default=4.0, help="wall budget of the quick training")
    p.add_argument("--train-steps", type=int, default=1200, help="steps of the quick training")
    p.add_argument("--tau", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    ckpt = trained_checkpoint(args)
    model, cfg, state = checkpoint.load_model(ckpt, args.device)
    test = load_splits(cfg.data)[1]
    res = evaluate(model, test, ["full", "halt", "halt_first", "prob_avg", "tta"], tau=args.tau,
                   batch_size=args.batch_size, device=args.device, limit=args.puzzles, taus=(0.3, 0.5, 0.7, 0.9))
    hf, tta = res.row("halt_first"), res.row("tta")
    ratio = hf["chain_steps_per_puzzle"] / tta["chain_steps_per_puzzle"]

    head = f"{'method':<11}{'puzzles/s':>11}{'puzzle acc':>12}{'cell acc':>10}{'chain-steps':>13}{'rel cost':>10}{'efficiency':>12}"
    print(f"checkpoint {ckpt} (step {state.get('step')}, K={cfg.model.k}), {res.meta['puzzles']} puzzles, {args.device}")
    print(head)
    print("-" * len(head))
    for r in res.rows:
        print(f"{r['method']:<11}{r['puzzles_per_s']:>11.1f}{100 * r['puzzle_acc']:>11.1f}%{100 * r['cell_acc']:>9.1f}%"
              f"{r['chain_steps_per_puzzle']:>13.2f}{r['relative_cost']:>10.3f}{r['efficiency']:>12.3f}")
    verdict = "meets" if ratio <= 0.25 else "misses"
    print(f"halt_first / tta chain-steps = {ratio:.3f} ({verdict} the <= 1/4 target); "
          f"halt mean steps = {res.row('halt')['chain_steps_per_puzzle']:.2f} of {res.meta['max_steps']}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_eval_{torch.device(args.device).type}.json"
    out.write_text(json.dumps({
        "checkpoint": str(ckpt), "step": state.get("step"), "k": cfg.model.k, "tau": args.tau,
        "puzzles": res.meta["puzzles"], "device": args.device, "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": res.rows, "tau_curve": res.tau_curve,
        "halt_first_over_tta_chain_steps": ratio, "meets_quarter_target": ratio <= 0.25,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
