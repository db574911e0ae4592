"""The in-process parts of benchmarks/gpu_check.py (matmul rate, eager trainer throughput, evaluation
agreement) and the report they write into. The parts that run child processes are in gpu_check_children.py.
"""
from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from pathlib import Path

import benchlib as bl
import torch


class Check:
    """The report, the file it is saved to after every measurement, and the time budget."""

    def __init__(self, out: Path, plan, script: Path, smoke: bool, budget_s: float):
        self.out, self.plan, self.script, self.smoke = out, plan, script, smoke
        self.cuda = torch.cuda.is_available()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget_s
        self.logs = out.parent / f"{out.stem}_logs"  # children's stderr
        self.report = {
            "schema": 1, "script": "benchmarks/gpu_check.py", "mode": "cpu-smoke" if smoke else "gpu",
            "budget_s": budget_s, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": False,
            "plan": dataclasses.asdict(plan),
            "data": "(a), (b): shipped puzzles (data.source=builtin), not Sudoku-Extreme; (c): the eval preset's",
            "env": bl.env_info(),
            "flops_per_chain_step": bl.FLOPS_FORMULA, "matmul": None,
            "trainer": {"status": "pending", "compiled": "pending", "rows": []},
            "packing": {"status": "pending", "rows": [], "over_budget": None},
            "eval_agreement": {"status": "pending", "rows": []}}
        self.save()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.report["elapsed_s"] = time.monotonic() - self.t0
        bl.write_json(self.out, self.report)


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def shape(name: str, preset: str, overrides: dict, plan, window_s: float) -> dict:
    """What a child process measures (JSON-able): preset + overrides on top of the plan's data."""
    return {"name": name, "preset": preset, "overrides": {**plan.data, **overrides}, "window_s": window_s,
            "warmup": plan.warmup}


def trainer_row(label: str, cfg, compiled: bool, r: dict, matmul: float) -> dict:
    """One row of part (a), printed as it is added."""
    row = {"case": label, "precision": cfg.precision, "compiled": compiled, "k": cfg.model.k, "batch": cfg.batch_size,
           "hidden": cfg.model.hidden, "flops_per_chain_step": bl.flops_per_chain_step(cfg), **r}
    head = f"  {label:10s} {cfg.precision:14s} {'compiled' if compiled else 'eager':8s}"
    if "tflops" in r:
        row["mfu"] = r["tflops"] * 1e12 / matmul
        print(f"{head} {r['chain_steps_per_s']:10.0f} chain-steps/s {r['ms_per_step']:8.1f} ms/step  "
              f"MFU {row['mfu']:6.1%}  peak {r['peak_mem_gib'] or 0:6.1f} GiB")
    else:
        print(f"{head} {r.get('error')}")
    return row


def part_matmul(c: Check) -> float:
    dtype_name, n = c.plan.matmul
    device = torch.device("cuda" if c.cuda else "cpu")
    rate = bl.matmul_rate(device, getattr(torch, dtype_name), n, seconds=2.0 if c.cuda else 0.2)
    c.report["matmul"] = {"dtype": dtype_name, "n": n, "tflops": rate / 1e12,
                          "timing": "CUDA events" if c.cuda else "wall clock"}
    print(f"dense {dtype_name} matmul n={n}: {rate / 1e12:.3g} TFLOP/s")
    c.save()
    return rate


def part_trainer_eager(c: Check, matmul: float) -> None:
    """Part (a), eager: each case in this process, one after another."""
    from trm_core import resolve

    print("trainer (a), eager:")
    for label, preset, over in c.plan.trainer_cases:
        for prec in c.plan.precisions:
            cfg = resolve(preset, {**c.plan.data, **over, "precision": prec, "compile": False})
            r = {"error": "skipped: time budget"}
            if c.left() > 30:
                try:
                    r = bl.timed_train(cfg, c.plan.window_s, c.plan.warmup)
                except Exception as e:  # one failed case (an OOM included) must not lose the others
                    r = {"error": one_line(e)}
                free_memory()
            c.report["trainer"]["rows"].append(trainer_row(label, cfg, False, r, matmul))
            c.save()
    c.report["trainer"]["status"] = "done"
    c.save()


def part_eval(c: Check) -> None:
    """Part (c): train a small run, then compare its last in-training evaluation with
    trm_core.evaluation.evaluate(modes=["full"]) of the checkpoint that evaluation wrote, called as the
    sweeper's final evaluation calls it (with the run's TrainConfig: its precision, eval rule and limit)."""
    from trm_core import resolve
    from trm_core.data import load_splits
    from trm_core.evaluation import evaluate
    from trm_core.trainer import train

    print("eval agreement (c):")
    for prec in c.plan.eval_precisions:
        row = {"precision": prec, "error": "skipped: time budget"}
        if c.left() < 30:
            c.report["eval_agreement"]["rows"].append(row)
            continue
        cfg = resolve(c.plan.eval_preset, {**c.plan.eval_overrides, "precision": prec})
        threads = torch.get_num_threads()  # train() applies the preset's thread count to the whole process
        try:
            with tempfile.TemporaryDirectory() as ckpt:
                sink = LastEval()
                train(cfg, sink, ckpt)
                _, test = load_splits(cfg.data)
                n = min(cfg.eval_puzzles or len(test), len(test))  # the puzzles the in-training eval scored
                full = next(r for r in evaluate(sink.path, test, cfg, modes=("full",)).rows if r["method"] == "full")
            mine = sink.metrics
            row = {"precision": prec, "steps": cfg.steps, "puzzles": n,
                   "in_training": {"puzzle_acc": mine["eval/puzzle_acc"], "cell_acc": mine["eval/cell_acc"]},
                   "evaluate_full": {"puzzle_acc": full["puzzle_acc"], "cell_acc": full["cell_acc"]},
                   "puzzle_acc_equal": mine["eval/puzzle_acc"] == full["puzzle_acc"],
                   "cell_acc_equal": abs(mine["eval/cell_acc"] - full["cell_acc"]) < 1e-9}
            same = row["puzzle_acc_equal"] and row["cell_acc_equal"]
            print(f"  {prec:6s} in-training {mine['eval/puzzle_acc']:.4f} / {mine['eval/cell_acc']:.4f}   "
                  f"evaluate(full) {full['puzzle_acc']:.4f} / {full['cell_acc']:.4f}   {'equal' if same else 'DIFFERENT'}")
        except Exception as e:
            row = {"precision": prec, "error": one_line(e)}
            print(f"  {prec:6s} {row['error']}")
        finally:
            torch.set_num_threads(threads)
            free_memory()
        c.report["eval_agreement"]["rows"].append(row)
        c.save()
    c.report["eval_agreement"]["status"] = "done"
    c.save()


class LastEval:
    """A trm_core sink that keeps the last evaluation's metrics and checkpoint folder."""

    def __init__(self) -> None:
        self.metrics: dict = {}
        self.path: Path | None = None

    def log(self, metrics, step):
        pass

    def on_eval(self, metrics, step, checkpoint_dir):
        self.metrics, self.path = dict(metrics), checkpoint_dir

    def close(self):
        pass
