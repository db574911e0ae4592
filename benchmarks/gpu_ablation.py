"""One-shot GPU ablation (issue 11.7): the reference-faithful paper-baseline against the fixed variants.

    PYTHONPATH=. python3 benchmarks/gpu_ablation.py                      # one GPU, inside 8 minutes
    PYTHONPATH=. python3 benchmarks/gpu_ablation.py --data-dir data/sudoku-extreme --budget-min 7
    PYTHONPATH=. python3 benchmarks/gpu_ablation.py --cpu-smoke --out /tmp/gpu_ablation.json   # CPU, seconds

Every variant is --preset plus dotted overrides, trained for the same steps at the same seeds:
`faithful` sets each key of KEYS to what the reference code does, `fixed: KEY` changes that one key to
the fix, `all fixed` changes them all. A key this TrainConfig does not know yet is skipped with a note
(so the script runs before and after it lands), and so is a key that cannot matter (wta.expunge at K=1).
Before training, a short timed probe of both precisions estimates the run; steps are cut to fit
--budget-min and the estimate is printed. Prints and writes (JSON, after every variant) per variant:
final train loss, eval puzzle and cell accuracy, and the gap to the faithful run. One seed by default:
gaps within seed-to-seed noise are not evidence. Data: the shipped puzzles unless --data-dir points at a
dataset built by `sweeper data build`.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import yaml_standin

yaml_standin.install_if_missing()  # before trm_core: its config imports yaml

import benchlib as bl  # noqa: E402

HERE = Path(__file__).resolve()
KEYS = (
    ("precision", "bf16", "auto", "pure-bf16 parameters (reference) vs fp32 master weights under bf16 autocast"),
    ("data.permute_blank", True, False, "the reference's augmentation permutes tokens 1-9, swapping blank and a digit"),
    ("wta.expunge", "remove", "reset", "a near-duplicate chain is removed until its slot refills (reference) "
                                       "vs re-initialised"),
    ("wta.loss_dtype", "logits", "fp32", "per-chain losses (winner pick and loss) in the logits' dtype, bf16 "
                                         "(reference) vs fp32"),
)
"""(dotted key, reference value, fixed value, what differs): the keys in which trm_core's paper-baseline
(reference-faithful) and paper-baseline-fixed presets differ. Keys both share (optim.ema_before_start) come
from --preset."""


def usable_keys(preset: str, notes: list[str]) -> list[tuple]:
    """KEYS this TrainConfig knows (others are noted and skipped)."""
    from trm_core import ConfigError, resolve

    keep = []
    for key, faithful, fixed, why in KEYS:
        try:
            resolve(preset, {key: faithful})
            resolve(preset, {key: fixed})
        except ConfigError as e:
            if "unknown key" not in str(e):
                raise
            notes.append(f"skipped {key}: this TrainConfig does not know it yet ({e})")
            print(f"note: {notes[-1]}")
            continue
        keep.append((key, faithful, fixed, why))
    return keep


def variants(keys: list[tuple], k: int, notes: list[str]) -> list[tuple[str, dict]]:
    faithful = {key: ref for key, ref, _, _ in keys}
    out = [("faithful", faithful)]
    for key, _, fixed, _ in keys:
        if key == "wta.expunge" and k == 1:
            notes.append("no 'fixed: wta.expunge' run: expunging acts only between K > 1 chains")
            print(f"note: {notes[-1]}")
            continue
        out.append((f"fixed: {key}", {**faithful, key: fixed}))
    if len(keys) > 1:
        out.append(("all fixed", {key: fixed for key, _, fixed, _ in keys}))
    return out


def estimate(base: dict, runs: list[tuple[str, dict]], args, window_s: float, deadline: float) -> dict:
    """Seconds per step of each precision (short timed probes) -> the steps that fit the budget."""
    from trm_core import resolve

    probes, per_step, overhead = {}, [], []
    for _, over in runs:
        prec = over.get("precision", "auto")
        if prec not in probes:
            cfg = resolve(args.preset, {**base, **over})
            r = bl.timed_train(cfg, window_s, warmup=2)
            probes[prec] = r
            print(f"probe {prec:6s}: {r['ms_per_step']:.1f} ms/step, {r['chain_steps_per_s']:.0f} chain-steps/s, "
                  f"start-up {r['warmup_s']:.1f} s")
        cfg = resolve(args.preset, {**base, **over})
        step_s = probes[prec]["ms_per_step"] / 1000
        # the final evaluation: eval_puzzles x max ACT steps forward-only, batches of B*K rows (~ a step each)
        evals = math.ceil(args.eval_puzzles / max(cfg.batch_size * cfg.model.k, 64)) * cfg.model.max_act_steps
        per_step.append(step_s)
        overhead.append(probes[prec]["warmup_s"] + evals * step_s)
    left = deadline - time.monotonic()
    n_seeds = len(args.seeds)
    fit = int((0.9 * left - n_seeds * sum(overhead)) / (n_seeds * sum(per_step)))  # 10% margin for estimate error
    steps = min(args.steps, fit)
    total = n_seeds * (sum(overhead) + steps * sum(per_step))
    print(f"estimate: {len(runs)} variants x {n_seeds} seed(s) x {steps} steps ~ {total / 60:.1f} min "
          f"(budget left {left / 60:.1f} min; {fit} steps would fit)")
    return {"probes": probes, "steps_that_fit": fit, "steps": steps, "estimated_s": total, "budget_left_s": left,
            "per_run_s": total / n_seeds / len(runs)}


def run_variant(args, base: dict, name: str, over: dict, seed: int, steps: int) -> dict:
    from trm_core import resolve
    from trm_core.trainer import train

    cfg = resolve(args.preset, {**base, **over, "seed": seed, "steps": steps, "eval_every": steps,
                                "log_every": min(50, steps)})
    t = time.perf_counter()
    try:
        final = train(cfg)
    except Exception as e:  # one failed variant must not lose the others
        return {"variant": name, "seed": seed, "overrides": over, "error": f"{type(e).__name__}: {e}"[:300]}
    return {"variant": name, "seed": seed, "overrides": over, "steps": steps, "train_loss": final.get("train/loss"),
            "puzzle_acc": final.get("eval/puzzle_acc"), "cell_acc": final.get("eval/cell_acc"),
            "seconds": time.perf_counter() - t}


def add_gaps(rows: list[dict]) -> None:
    """gap = variant - faithful, same seed (accuracies in percentage points)."""
    ref = {r["seed"]: r for r in rows if r["variant"] == "faithful" and "error" not in r}
    for r in rows:
        f = ref.get(r["seed"])
        if f is not None and "error" not in r:
            r["gap_vs_faithful"] = {"train_loss": r["train_loss"] - f["train_loss"],
                                    "puzzle_acc_pp": 100 * (r["puzzle_acc"] - f["puzzle_acc"]),
                                    "cell_acc_pp": 100 * (r["cell_acc"] - f["cell_acc"])}


def print_row(r: dict) -> None:
    if "error" in r:
        print(f"  {r['variant']:28s} seed {r['seed']}  {r['error']}")
        return
    g = r.get("gap_vs_faithful")
    gap = f"  gap: loss {g['train_loss']:+.4f}, puzzle {g['puzzle_acc_pp']:+.1f} pp, cell {g['cell_acc_pp']:+.1f} pp" if g else ""
    print(f"  {r['variant']:28s} seed {r['seed']}  loss {r['train_loss']:.4f}  puzzle {r['puzzle_acc']:.2%}  "
          f"cell {r['cell_acc']:.2%}  ({r['seconds']:.0f} s){gap}")


def fail(message: str) -> None:
    """Bad input or an impossible budget: one line, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper-baseline", help="base preset (default paper-baseline)")
    ap.add_argument("--steps", type=int, default=300, help="steps per variant, cut to fit the budget")
    ap.add_argument("--min-steps", type=int, default=50, help="refuse to start if fewer steps fit")
    ap.add_argument("--budget-min", type=float, default=7.0, help="minutes for the whole script")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (every variant runs each)")
    ap.add_argument("--eval-puzzles", type=int, default=1000, help="held-out puzzles evaluated per variant")
    ap.add_argument("--data-dir", help="a dataset built by `sweeper data build` (default: shipped puzzles)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "gpu" / "gpu_ablation.json")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, in seconds (the test's mode)")
    args = ap.parse_args()
    t0 = time.monotonic()
    deadline = t0 + 60 * args.budget_min
    import torch

    from trm_core import ConfigError, resolve

    if args.cpu_smoke:  # the smoke preset with 2 chains, so every key has a variant
        args.preset, args.steps, args.min_steps, args.eval_puzzles = "smoke", 4, 1, 16
        base, window_s = {"model.k": 2, "data.n_train": 200}, 0.2
    elif not torch.cuda.is_available():
        fail("no CUDA device; on a CPU run --cpu-smoke")
    else:
        base, window_s = {}, 3.0
    if args.data_dir:
        base |= {"data.source": "dir", "data.path": args.data_dir}
        label = f"dataset built at {args.data_dir}"
    else:
        base |= {"data.source": "builtin", "data.n_test": args.eval_puzzles}
        label = "shipped puzzles (data.source=builtin), not Sudoku-Extreme"
    base["eval_puzzles"] = args.eval_puzzles
    if args.steps < 1 or args.budget_min <= 0 or args.eval_puzzles < 1:
        fail("--steps, --budget-min and --eval-puzzles must be positive")
    notes: list[str] = []
    report = {"schema": 1, "script": "benchmarks/gpu_ablation.py", "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
              "preset": args.preset, "data": label, "seeds": args.seeds, "keys": [list(x) for x in KEYS],
              "notes": notes, "env": bl.env_info(), "complete": False, "rows": []}
    try:  # a bad preset, key or data folder is one line, not a traceback
        runs = variants(usable_keys(args.preset, notes), resolve(args.preset, base).model.k, notes)
        print(f"ablation of {args.preset} on {label}: {', '.join(name for name, _ in runs)}")
        report["estimate"] = est = estimate(base, runs, args, window_s, deadline)
    except ConfigError as e:
        fail(str(e))
    bl.write_json(args.out, report)
    if est["steps"] < args.min_steps:
        fail(f"only {est['steps']} steps per variant fit in --budget-min {args.budget_min:g} "
             f"(--min-steps {args.min_steps}); raise the budget or lower --eval-puzzles")
    for seed in args.seeds:
        for name, over in runs:
            if deadline - time.monotonic() < 0.5 * est["per_run_s"]:  # the estimate was short: keep the budget
                report["rows"].append({"variant": name, "seed": seed, "overrides": over, "error": "skipped: time budget"})
            else:
                report["rows"].append(run_variant(args, base, name, over, seed, est["steps"]))
            add_gaps(report["rows"])
            print_row(report["rows"][-1])
            bl.write_json(args.out, report)
    report.update(complete=True, modules=bl.imported_modules(), cpu_s=bl.cpu_seconds(), elapsed_s=time.monotonic() - t0)
    bl.write_json(args.out, report)
    print(f"saved {args.out} ({report['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
