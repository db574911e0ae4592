"""`sweeper validate SPEC`: check a sweep file and show what it would run, without starting anything.

Everything from the file (names, values, descriptions, notes) is printed as plain text, never as rich
markup: a value such as "/x/[/]a.csv" must show as written, not raise MarkupError or vanish.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sweeper.commands._common import friendly


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


@friendly
def validate(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Sweep file, e.g. search_spaces/k_sweep.yaml.")],
    gpu: Annotated[Optional[bool], typer.Option(
        "--gpu/--cpu", help="Show the profile for a GPU or a CPU machine (default: detect).")] = None,
) -> None:
    """Validate a sweep file and print its space, trial count, profile and per-trial resources."""
    from sweeper.spec import load_spec

    spec = load_spec(spec_path)  # first: a bad file fails before Optuna, torch and rich are imported

    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    from sweeper.errors import UserError
    from sweeper.sweep import space
    from sweeper.sweep.cluster import detect_gpus
    from sweeper.sweep.plan import plan_sweep
    from trm_core.config import ConfigError

    has_gpu = detect_gpus() > 0 if gpu is None else gpu
    try:  # what would fail when the sweep starts fails here, named with the file
        sampler = space.make_sampler(spec)
        plan = plan_sweep(spec, gpus=1 if has_gpu else 0)
    except (UserError, ConfigError) as e:
        raise UserError(f"{spec_path}: {e}") from None
    gpu_text, cpu_text = _share_text(plan.gpu_range, spec.gpu), _share_text(plan.cpu_range, spec.cpus)

    # Text objects and markup=False: rich never parses user text as markup or emoji codes.
    console = Console(highlight=False, markup=False, emoji=False)
    console.print(Text.assemble((spec.name, "bold"), f"  {spec_path}  (spec hash {spec.spec_hash})"))
    if spec.description:
        console.print(Text(spec.description.strip()))
    for note in spec.notes:
        console.print(Text(f"note: {note}"))
    table = Table("parameter", Column("distribution", overflow="fold"), "values / range")
    for p in spec.parameters:
        table.add_row(Text(p.name), Text(p.distribution), Text(p.describe()))
    if not spec.parameters:
        table.add_row("(none)", "", "only seeds vary")
    console.print(table)
    objectives = ", ".join(f"{m.name} ({m.goal}{'' if m.target is None else f', target {m.target:g}'})"
                           for m in spec.metrics)
    console.print(Text(f"method: {spec.method} ({type(sampler).__name__}); objective: {objectives}"))
    console.print(Text(_trials_line(spec, space)))
    console.print(Text(plan.announce))
    console.print(Text(f"resources per trial: gpu {gpu_text}, cpus {cpu_text}"))
    console.print(Text(_limits_line(spec)))
    if spec.warm_start is not None:
        skip = ", skipping configurations that already ran" if spec.warm_start.skip_existing else ""
        console.print(Text(f"warm start: from sweep '{spec.warm_start.sweep}'{skip}"))


def _trials_line(spec: Any, space: Any) -> str:
    seeds = len(spec.seeds)
    baselines = 1 if spec.baseline is None else len(spec.baseline)
    if spec.method == "grid":
        how = f"{space.grid_size(spec)} configurations + {baselines} baseline, x {seeds} seed(s)"
    else:
        how = f"run_cap, including {baselines} baseline configuration(s) x {seeds} seed(s)"
    cap = f", capped at run_cap {spec.run_cap}" if spec.method == "grid" and spec.run_cap else ""
    return f"trials: {space.trial_count(spec)} ({how}{cap})"


def _share_text(lo_hi: tuple[float, float], amount: float | str) -> str:
    """'0.5' for a fixed share, '0.125-1 (0.125 * K)' for an expression over the space's corners (the plan's)."""
    low, high = lo_hi
    text = f"{low:g}" if low == high else f"{low:g}-{high:g}"
    return f"{text} ({amount})" if isinstance(amount, str) else text


def _limits_line(spec: Any) -> str:
    s = spec.scheduler
    if s is None:
        sched = "none"
    elif s.type == "wandb_hyperband":
        bands = ", ".join(str(r) for r in s.rungs[:6]) + (", ..." if len(s.rungs) > 6 else "")
        sched = f"W&B hyperband (bands {bands} evaluations, eta {s.reduction_factor:g}, strict {s.strict})"
    else:
        sched = (f"{s.type} (grace {s.grace_period}, reduction {s.reduction_factor:g}, "
                 f"max_t {s.max_t or 'from steps/eval_every'})")
    budget = "none" if spec.time_budget is None else f"{spec.time_budget:g} s"
    return (f"scheduler: {sched}; concurrency: {spec.concurrency or 'as resources allow'}; time budget: {budget}; "
            f"max failures: {'unlimited' if spec.max_failures is None else spec.max_failures}; "
            f"retries: {spec.trial_retries}; tracking: {spec.tracking_uri or 'embedded store'}")
