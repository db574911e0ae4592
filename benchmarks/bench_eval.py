"""Evaluation speed against training speed, and the cost of halt-first vs TTA, measured in one run.

    python benchmarks/bench_eval.py                          # newest checkpoint under runs/bench-eval-k4/, else train one
    python benchmarks/bench_eval.py --checkpoint runs/X      # any trained checkpoint
    python benchmarks/bench_eval.py --train-minutes 4        # budget for the quick cpu-tiny K=4 training

For every evaluation mode: chain-steps/s of the evaluation, and the training chain-steps/s of the same
model and config (train_step on the checkpoint's state), timed in the same process with the same threads.
Training and evaluation samples alternate (train, eval, train, eval, ...) and each eval sample is divided
by the training sample just before it, so a machine whose load changes slows both sides of a ratio
alike; the medians of these ratios are reported. Rates are given per wall second and per CPU second of
this process (time.process_time; with one thread, the time it really ran, which other jobs on a shared
machine do not inflate). Target: eval >= 2.5x training for full and tta (a forward-only pass against
forward + backward + update). Halt-first's puzzles per CPU second over the first and the last quarter of
its puzzles shows whether batches stay full as puzzles halt. The halt-first claim needs a trained halting
head (a random-init head never exceeds tau), so without a checkpoint this trains the cpu-tiny preset with
K=4 first. Prints a table and writes JSON to benchmarks/results/bench_eval_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from trm_core import checkpoint
from trm_core.config import resolve
from trm_core.data import load_splits
from trm_core.evaluation import EvalConfig, evaluate
from trm_core.evaluation.config import DEFAULT_ROWS

RUN_DIR = Path("runs/bench-eval-k4")
RESULTS = Path(__file__).parent / "results"
MODES = ("full", "halt", "halt_first", "prob_avg", "tta", "tta_perm")


def trained_checkpoint(args) -> Path:
    """The given checkpoint, else the newest under RUN_DIR, else a fresh quick cpu-tiny K=4 training."""
    if args.checkpoint:
        return Path(args.checkpoint)
    if checkpoint.list_checkpoints(RUN_DIR / "checkpoints"):
        return RUN_DIR
    from trm_core.trainer import train

    cfg = resolve("cpu-tiny", {"model.k": args.k, "max_minutes": args.train_minutes, "steps": args.train_steps,
                               "threads": args.threads})
    print(f"training cpu-tiny K={args.k} for at most {args.train_minutes} min -> {RUN_DIR}")
    train(cfg, None, RUN_DIR / "checkpoints")
    return RUN_DIR


class Clock:
    """Wall and CPU seconds of a block (CPU: this process; on CUDA the block must end with a sync)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def training_sample(run, steps: int) -> dict[str, float]:
    """Training chain-steps per wall and per CPU second over `steps` train_step calls."""
    from trm_core.trainer import train_step

    with Clock() as c:
        for _ in range(steps):
            out = train_step(run)
        float(out["loss"])  # on CUDA: wait for the queued steps
    rows = steps * run.cfg.batch_size * run.cfg.model.k
    return {"wall": rows / c.wall, "cpu": rows / c.cpu}


def forward_sample(model, rows: int, steps: int, precision: str) -> dict[str, float]:
    """Bare ACT steps of `rows` rows (no views, no answers, no refills): the ceiling of any evaluation."""
    from trm_core.model import make_tokens
    from trm_core.precision import autocast, autocast_dtype

    dev = model.H_init.device
    tokens = make_tokens(torch.ones(rows, 81, dtype=torch.long, device=dev))
    with torch.inference_mode(), autocast(autocast_dtype(precision, dev), dev):
        x, z_h, z_l = model.embed(tokens), model.init_h(rows), model.init_l(torch.zeros(rows, dtype=torch.long))
        with Clock() as c:
            for _ in range(steps):
                z_h, z_l, logits, q = model.act_step(x, z_h, z_l)
            float(q[0])
    return {"wall": rows * steps / c.wall, "cpu": rows * steps / c.cpu}


def quarter_rates(marks: list[tuple[float, int]], n: int) -> tuple[float, float]:
    """(CPU time, puzzles answered) marks -> puzzles per CPU second over the first and the last quarter."""
    def time_at(count: int) -> float:
        return next(t for t, done in marks if done >= count)

    q = n // 4
    return q / max(time_at(q) - marks[0][0], 1e-9), q / max(time_at(n) - time_at(n - q), 1e-9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint or run folder (default: runs/bench-eval-k4, trained if missing)")
    p.add_argument("--puzzles", type=int, default=200, help="held-out puzzles to evaluate")
    p.add_argument("--k", type=int, default=4, help="chains of the quick training")
    p.add_argument("--train-minutes", type=float, default=6.0, help="wall budget of the quick training")
    p.add_argument("--train-steps", type=int, default=1200, help="steps of the quick training")
    p.add_argument("--timed-train-steps", type=int, default=10, help="train_step calls per training-speed sample")
    p.add_argument("--repeats", type=int, default=3, help="alternating train/eval samples per mode (medians reported)")
    p.add_argument("--batch-rows", type=int, default=None, help="rows per evaluation forward (default: the config's)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated modes to time (must include halt, halt_first, tta)")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/bench_eval_<device>.json)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    ckpt = trained_checkpoint(args)
    model, cfg, state = checkpoint.load_model(ckpt, args.device)
    train_set, test = load_splits(cfg.data)
    n = min(args.puzzles, len(test))
    base = EvalConfig.for_training(cfg, device=args.device, limit=n, taus=None)
    base = base.replace(batch_rows=args.batch_rows or base.batch_rows or DEFAULT_ROWS[torch.device(args.device).type])
    from trm_core.trainer import Run

    run = Run(cfg, torch.device(args.device), train_set)
    run.load_state_dict(state)  # the checkpoint's model, optimisers and pool
    training_sample(run, 3)  # warm-up

    rows, train_samples, marks, bound = {}, [], {}, []
    for mode in args.modes.split(","):
        samples = []
        for _ in range(args.repeats):
            train = training_sample(run, args.timed_train_steps)
            train_samples.append(train)
            fwd = forward_sample(model, base.batch_rows, 2 * args.timed_train_steps, base.precision)
            bound.append({k: fwd[k] / train[k] for k in ("wall", "cpu")})
            t_marks: list[tuple[float, int]] = [(time.process_time(), 0)]
            res = evaluate(model, test, base.replace(modes=(mode,)),
                           progress=lambda name, done, total, m=t_marks: m.append((time.process_time(), done)))
            samples.append((res, train, t_marks))
        for r in samples[0][0].rows:  # rows of a family share runs; a row's rates come from its own run's time
            name = r["method"]
            per_sample = []
            for res, train, _ in samples:
                row, cpu = res.row(name), res.meta["cpu_s"][name]
                cs = row["chain_steps_per_puzzle"] * n  # a vote row shares its averaging row's run and time
                per_sample.append({"wall": cs / row["wall_s"], "cpu": cs / cpu,
                                   "x_wall": cs / row["wall_s"] / train["wall"], "x_cpu": cs / cpu / train["cpu"]})
            row = dict(samples[len(samples) // 2][0].row(name))
            row.update({f"chain_steps_per_{k}_s": statistics.median(s[k] for s in per_sample) for k in ("wall", "cpu")})
            row.update({f"eval_over_train_{k}": statistics.median(s[f"x_{k}"] for s in per_sample) for k in ("wall", "cpu")})
            row["padding_rows"] = samples[0][0].meta["padding_rows"][name]
            rows[name] = row
        marks[mode] = samples[len(samples) // 2][2]

    train_cs = {k: statistics.median(s[k] for s in train_samples) for k in ("wall", "cpu")}
    forward_bound = {k: statistics.median(b[k] for b in bound) for k in ("wall", "cpu")}
    hf_first, hf_last = quarter_rates(marks["halt_first"], n)
    ratio = rows["halt_first"]["chain_steps_per_puzzle"] / rows["tta"]["chain_steps_per_puzzle"]

    head = (f"{'method':<20}{'chain-steps/s':>14}{'x train':>9}{'per CPU s':>10}{'x train':>9}{'puzzle acc':>11}"
            f"{'cell acc':>9}{'chain-steps':>12}{'rel cost':>9}")
    print(f"checkpoint {ckpt} (step {state.get('step')}, K={cfg.model.k}), {n} puzzles, {args.device}, "
          f"{torch.get_num_threads()} thread(s), eval batch {base.batch_rows} rows, {args.repeats} alternating samples")
    print(f"training: {train_cs['wall']:.0f} chain-steps/s, {train_cs['cpu']:.0f} per CPU s (medians of "
          f"{len(train_samples)} samples of {args.timed_train_steps} steps, B*K = {cfg.batch_size * cfg.model.k} rows)")
    print(f"bare ACT steps of {base.batch_rows} rows (the ceiling of any evaluation): {forward_bound['wall']:.2f}x "
          f"training per wall s, {forward_bound['cpu']:.2f}x per CPU s")
    print(head)
    print("-" * len(head))
    for r in rows.values():
        print(f"{r['method']:<20}{r['chain_steps_per_wall_s']:>14.0f}{r['eval_over_train_wall']:>9.2f}"
              f"{r['chain_steps_per_cpu_s']:>10.0f}{r['eval_over_train_cpu']:>9.2f}{100 * r['puzzle_acc']:>10.1f}%"
              f"{100 * r['cell_acc']:>8.1f}%{r['chain_steps_per_puzzle']:>12.2f}{r['relative_cost']:>9.3f}")
    print(f"halt_first puzzles per CPU s: first quarter {hf_first:.0f}, last quarter {hf_last:.0f}")
    print(f"halt_first / tta chain-steps = {ratio:.3f}; halt mean steps = {rows['halt']['chain_steps_per_puzzle']:.2f} "
          f"of {cfg.model.max_act_steps}")
    targets = {m: {k: rows[m][f"eval_over_train_{k}"] >= 2.5 for k in ("wall", "cpu")} for m in ("full", "tta")}
    print("eval >= 2.5x training chain-steps/s (wall, CPU): "
          + ", ".join(f"{m} {'yes' if t['wall'] else 'no'}, {'yes' if t['cpu'] else 'no'}" for m, t in targets.items()))

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"bench_eval_{torch.device(args.device).type}.json"
    out.write_text(json.dumps({
        "checkpoint": str(ckpt), "step": state.get("step"), "k": cfg.model.k, "tau": base.tau, "puzzles": n,
        "eval_batch_rows": base.batch_rows, "device": args.device, "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "train_chain_steps_per_s": train_cs, "train_samples": train_samples,
        "bare_act_step_over_train": forward_bound, "rows": list(rows.values()),
        "halt_first_puzzles_per_cpu_s_first_quarter": hf_first, "halt_first_puzzles_per_cpu_s_last_quarter": hf_last,
        "halt_first_over_tta_chain_steps": ratio, "eval_over_train_at_least_2_5": targets,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
