"""One GPU check for a bare machine (torch, numpy, numba and this repository only), inside 8 minutes.

    PYTHONPATH=. python3 benchmarks/gpu_check.py                          # one GPU, ~7.5 min
    PYTHONPATH=. python3 benchmarks/gpu_check.py --cpu-smoke --out /tmp/gpu_check.json   # seconds, CPU

Writes one JSON (default benchmarks/results/gpu/gpu_check.json), rewritten after every measurement, so
a run cut short still leaves what finished; `"complete": true` marks a run that got to the end. Parts,
in the order they run (the slow compiled cases last):
  env      torch/CUDA versions, GPU, memory, TF32 settings; dense bf16 matmul rate (CUDA events)
  trainer  (a) chain-steps/s, MFU (vs that matmul rate) and peak memory of trm_core.trainer.train at the
           paper shape, K=1 B384 and K=4 B192, bf16 autocast and pure bf16; eager in this process, then
           compiled (cfg.compile) in child processes that are killed if they overrun
  packing  (b) 1, 2, 4, 8 trainer processes at once (subprocess, not Ray), each capped with
           torch.cuda.set_per_process_memory_fraction(1/n) as a sweeper trial is; aggregate chain-steps/s
           vs one alone; and a trial whose share is too small for its batch must raise
           torch.OutOfMemoryError (recorded with the reason the sweeper prints)
  eval     (c) last in-training eval/puzzle_acc vs trm_core.evaluation.evaluate(modes=["full"]) of the
           same checkpoint (called as the sweeper's final evaluation calls it), bf16 autocast and pure bf16
--cpu-smoke runs every part at tiny shapes on the CPU (2 packed processes, no memory fraction) and
records "skipped on CPU: ..." for what needs CUDA. Parts (a) and (b) train on the shipped puzzles
(data.source=builtin); part (c) on cpu-sweep's generated ones, so that a few hundred steps solve some.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml_standin

yaml_standin.install_if_missing()  # before trm_core: its config imports yaml

import benchlib as bl  # noqa: E402
import torch  # noqa: E402
from gpu_check_children import part_over_budget, part_packing, part_trainer_compiled  # noqa: E402
from gpu_check_parts import Check, free_memory, one_line, part_eval, part_matmul, part_trainer_eager  # noqa: E402
from workers import emit, wait_go  # noqa: E402

HERE = Path(__file__).resolve()


@dataclass(frozen=True, kw_only=True)
class Plan:
    trainer_cases: tuple = (("K=1 B384", "paper-baseline", {}), ("K=4 B192", "paper", {}))
    """Part (a): (label, preset, dotted overrides)."""
    precisions: tuple = ("bf16-autocast", "bf16")
    """Part (a): TrainConfig.precision values (bf16 = pure-bf16 parameters)."""
    window_s: float = 8.0
    """Timed seconds per measurement of part (a), after the warm-up steps."""
    warmup: int = 3
    """Untimed steps first (cuBLAS heuristics; torch.compile compiles both H-cycle graphs in step 1)."""
    data: dict = field(default_factory=lambda: {"data.source": "builtin", "data.n_train": 1000, "data.n_test": 64})
    """Data of every throughput measurement: shipped puzzles (no generation, the same on every machine)."""
    pack_counts: tuple = (1, 2, 4, 8)
    """Part (b): processes at once."""
    pack_shapes: tuple = (
        ("cpu-sweep", "cpu-sweep", {"precision": "auto"}),
        # Paper recursion would save ~40 MiB of activations per row at D=256 (saved-tensor hooks, CPU): 15 GiB
        # for 384 rows, more than 1/8 of an H200. H3 x L6 saves ~28 MiB/row, ~10.4 GiB: fits 8 per GPU.
        ("mid D256 H3xL6 K4 B96", "paper-baseline", {"model.hidden": 256, "model.h_cycles": 3, "model.l_cycles": 6,
                                                     "model.k": 4, "batch_size": 96, "precision": "auto"}))
    """Part (b): (label, preset, overrides); every process runs each shape in turn, windows in lock-step."""
    pack_window_s: float = 6.0
    """Part (b): timed seconds per shape and round."""
    eval_preset: str = "cpu-sweep"
    """Part (c): a small preset that learns in a few hundred steps (its generated puzzles)."""
    eval_overrides: dict = field(default_factory=lambda: {"steps": 300, "eval_every": 300, "log_every": 50})
    """Part (c): overrides (one in-training evaluation, at the end)."""
    eval_precisions: tuple = ("auto", "bf16")
    """Part (c): auto = bf16 autocast on CUDA (fp32 on CPU); bf16 = pure bf16."""
    matmul: tuple = ("bfloat16", 8192)
    """Dense matmul of the MFU denominator: (dtype, n)."""
    child_timeout_s: float = 150.0
    """Longest wait for a packing child to get warm (CUDA init, data); compiled ones wait as long as the
    budget allows."""

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.pack_window_s <= 0 or self.warmup < 1 or not self.pack_counts:
            raise ValueError("Plan: windows must be > 0, warmup >= 1, pack_counts non-empty")


SMOKE = Plan(trainer_cases=(("K=2 B4", "smoke", {"model.k": 2, "batch_size": 4}),), window_s=0.3, warmup=1,
             data={"data.source": "builtin", "data.n_train": 200, "data.n_test": 16}, pack_counts=(2,),
             pack_shapes=(("smoke", "smoke", {"precision": "auto"}),), pack_window_s=0.3, eval_preset="smoke",
             eval_overrides={"steps": 6, "eval_every": 6, "data.source": "builtin", "data.n_train": 200,
                             "data.n_test": 16}, matmul=("float32", 512), child_timeout_s=60.0)
"""--cpu-smoke: every part at the smoke preset's size; one packing round of 2 processes (each Python start
costs seconds on a small CPU)."""


def sweeper_reason(exc: BaseException, share: float) -> str:
    """The failure reason a sweeper trial with GPU share `share` records for `exc` (sweeper's own function;
    its module needs only the standard library, so it imports on a bare machine)."""
    try:
        from sweeper.sweep.trial_log import failure_reason

        return failure_reason(exc, share)
    except Exception as e:  # sweeper moved or changed it: say so instead of guessing the wording
        return f"(sweeper.sweep.trial_log.failure_reason failed: {one_line(e)})"


# ---------------------------------------------------------------------------------------------------
# child process (--worker)

def worker(spec: dict) -> None:
    """Child side: measure each shape of `spec` and report to the parent (see benchmarks/workers.py)."""
    from trm_core import resolve

    share = spec.get("fraction")
    if share:  # what a sweeper trial does with a fractional GPU (sweeper/sweep/trainable.py)
        torch.cuda.set_per_process_memory_fraction(share)
    for s in spec["shapes"]:
        ready = (lambda: (emit(event="ready", shape=s["name"]), wait_go())) if spec.get("barrier") else None
        done = _report_and_exit(s["name"]) if spec.get("exit_when_timed") else None
        try:
            cfg = resolve(s["preset"], s["overrides"])
            emit(event="result", shape=s["name"], **bl.timed_train(cfg, s["window_s"], s["warmup"], on_ready=ready,
                                                                    on_done=done))
        except torch.OutOfMemoryError as e:
            emit(event="oom", shape=s["name"], exception=type(e).__name__, reason=sweeper_reason(e, share or 1.0),
                 error=one_line(e))
        except Exception as e:  # reported to the parent, which records it; the next shape still runs
            emit(event="error", shape=s["name"], error=one_line(e))
        free_memory()


def _report_and_exit(name: str):
    """on_done for a one-shape child: report and leave before train()'s final evaluation, which under
    torch.compile could recompile the H-cycle for the evaluation batch (minutes of budget for nothing)."""
    def done(result: dict) -> None:
        emit(event="result", shape=name, **result)
        os._exit(0)
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "gpu" / "gpu_check.json", help="JSON file")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, in seconds (the test's mode)")
    ap.add_argument("--budget-s", type=float, default=None, help="start no new measurement after this many seconds (GPU 450; smoke 600: never skip)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("error: no CUDA device; on a CPU run --cpu-smoke", file=sys.stderr)
        sys.exit(2)
    c = Check(args.out, SMOKE if args.cpu_smoke else Plan(), HERE, args.cpu_smoke,
              args.budget_s or (600.0 if args.cpu_smoke else 450.0))
    env = c.report["env"]
    print(f"torch {env['torch']} CUDA {env['cuda']} on {env.get('gpu_name', 'cpu')}"
          f" ({env.get('gpu_total_gib', 0):.0f} GiB), TF32 {env['tf32']}, yaml: {env['yaml']}")
    matmul = part_matmul(c)
    part_trainer_eager(c, matmul)
    part_packing(c)
    part_over_budget(c)
    part_eval(c)
    part_trainer_compiled(c, matmul)
    c.report["modules"] = bl.imported_modules()
    c.report["cpu_s"] = bl.cpu_seconds()
    c.report["complete"] = True
    c.save()
    print(f"saved {c.out} ({c.report['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
