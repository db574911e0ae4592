"""The parts of benchmarks/gpu_check.py that run in child processes (`gpu_check.py --worker`): packing
(part b), the over-budget trial, and the compiled trainer cases (part a), whose compile can be killed.
"""
from __future__ import annotations

import time

import torch
from gpu_check_parts import Check, shape, trainer_row
from workers import Group


def part_packing(c: Check) -> None:
    """Part (b): n processes at once, each running every shape with its timed window in lock-step."""
    plan = c.plan
    shapes = [shape(name, preset, over, plan, plan.pack_window_s) for name, preset, over in plan.pack_shapes]
    alone: dict[str, float] = {}
    print("packing (b):" + ("" if c.cuda else " CPU stand-in, no memory fraction"))
    for n in plan.pack_counts:
        share = 1.0 / n if c.cuda and n > 1 else None  # as sweeper: a whole-GPU trial sets no fraction
        if c.left() < 40:
            c.report["packing"]["rows"].append({"processes": n, "error": "skipped: time budget"})
            continue
        procs = Group(c.script, [{"fraction": share, "barrier": True, "shapes": shapes}] * n, c.logs)
        try:
            for s in shapes:
                ready = procs.collect({i: ("ready",) for i in range(n)},
                                      min(c.deadline - 5, time.monotonic() + plan.child_timeout_s))
                go = [i for i, m in ready.items() if m["event"] == "ready"]
                procs.go(go)
                done = {**ready, **procs.collect({i: () for i in go}, c.deadline - 2)}
                rates = [m.get("chain_steps_per_s") for m in done.values()]
                agg = sum(rates) if all(r is not None for r in rates) else None
                if n == 1 and agg is not None:
                    alone[s["name"]] = agg
                base = alone.get(s["name"])
                row = {"processes": n, "shape": s["name"], "memory_fraction": share, "aggregate_chain_steps_per_s": agg,
                       "vs_one_alone": agg / base if agg is not None and base else None,
                       "per_process": [{k: v for k, v in m.items() if k != "shape"} for m in done.values()]}
                c.report["packing"]["rows"].append(row)
                c.save()
                errors = [m["error"] for m in done.values() if "error" in m]
                print(f"  n={n} {s['name']:24s} aggregate {agg or 0:10.0f} chain-steps/s  "
                      + (f"x{row['vs_one_alone']:.2f} vs one alone" if row["vs_one_alone"] else "(no n=1 round)")
                      + (f"  errors: {errors}" if errors else ""))
        finally:
            procs.close()
    c.report["packing"]["status"] = "done"
    c.save()


def part_over_budget(c: Check) -> None:
    """A trial whose memory share is too small for its batch must fail with torch.OutOfMemoryError."""
    if not c.cuda:
        c.report["packing"]["over_budget"] = {"status": "skipped on CPU: set_per_process_memory_fraction needs CUDA"}
        c.save()
        return
    name, preset, over = c.plan.pack_shapes[-1]
    alone = [r for r in c.report["packing"]["rows"] if r.get("processes") == 1 and r.get("shape") == name]
    peak = alone[0]["per_process"][0].get("peak_mem_gib") if alone else None
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    share = round(0.25 * peak / total, 4) if peak else 0.02  # a quarter of what the batch needed alone
    spec = {"fraction": share, "barrier": False, "shapes": [shape(name, preset, over, c.plan, 1.0)]}
    procs = Group(c.script, [spec], c.logs)
    try:
        msg = procs.collect({0: ()}, min(c.deadline - 2, time.monotonic() + c.plan.child_timeout_s))[0]
    finally:
        procs.close()
    ok = msg["event"] == "oom" and msg.get("exception") == "OutOfMemoryError"
    c.report["packing"]["over_budget"] = {"shape": name, "memory_fraction": share, "needed_alone_gib": peak,
                                          "expected": "torch.OutOfMemoryError", "ok": ok,
                                          **{k: v for k, v in msg.items() if k != "shape"}}
    print(f"over-budget trial (share {share:g}): " + (f"OutOfMemoryError as expected; sweeper records: {msg['reason']}"
                                                      if ok else f"UNEXPECTED: {msg}"))
    c.save()


def part_trainer_compiled(c: Check, matmul: float) -> None:
    """Part (a), compiled (cfg.compile): one child per case. Children warm up (compile) together where their
    eager peaks fit in 70% of the GPU; their timed windows run one at a time while the others wait warm."""
    from trm_core import resolve

    if not c.cuda:
        c.report["trainer"]["compiled"] = "skipped on CPU: trm_core compiles the H-cycle only on CUDA"
        c.save()
        return
    print("trainer (a), compiled:")
    eager = {(r["case"], r["precision"]): r.get("peak_mem_gib") for r in c.report["trainer"]["rows"]}
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    groups, used = [[]], 0.0
    # Precision outer, largest case first: if the budget runs out, the first precision's rows are complete.
    for prec in c.plan.precisions:
        for label, preset, over in reversed(c.plan.trainer_cases):
            peak = eager.get((label, prec)) or total  # unknown: give it the GPU to itself
            if groups[-1] and used + peak > 0.7 * total:
                groups, used = groups + [[]], 0.0
            groups[-1].append((label, preset, {**over, "precision": prec, "compile": True}))
            used += peak
    for group in groups:
        cfgs = [resolve(preset, {**c.plan.data, **over}) for _, preset, over in group]
        if c.left() < 60:
            for (label, _, _), cfg in zip(group, cfgs):
                c.report["trainer"]["rows"].append(trainer_row(label, cfg, True, {"error": "skipped: time budget"}, matmul))
            continue
        specs = [{"barrier": True, "exit_when_timed": True, "shapes": [shape(label, preset, over, c.plan, c.plan.window_s)]}
                 for label, preset, over in group]
        procs = Group(c.script, specs, c.logs)
        try:  # compiling may take minutes: wait as long as the group's timed windows still fit the budget
            ready = procs.collect({i: ("ready",) for i in range(len(specs))},
                                  c.deadline - 5 - len(specs) * (c.plan.window_s + 5))
            for i, ((label, _, _), cfg) in enumerate(zip(group, cfgs)):
                msg = ready[i]
                if msg["event"] == "ready":
                    procs.go([i])
                    msg = procs.collect({i: ()}, c.deadline - 2)[i]
                r = {k: v for k, v in msg.items() if k not in ("event", "shape")}
                c.report["trainer"]["rows"].append(trainer_row(label, cfg, True, r, matmul))
                c.save()
        finally:
            procs.close()
    c.report["trainer"]["compiled"] = "done"
    c.save()
