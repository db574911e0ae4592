"""`sweeper validate SPEC`: check a sweep file and show what it would run, without starting anything.

Everything from the file (names, values, descriptions, notes) is printed as plain text, never as rich
markup: a value such as "/x/[/]a.csv" must show as written, not raise MarkupError or vanish.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sweeper.commands._common import friendly

MAX_CORNERS = 256
"""Resource ranges are evaluated on at most this many corner configurations of the space."""


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
    from sweeper.sweep.resolve import resolve_profile, trial_config
    from trm_core.config import ConfigError

    has_gpu = _detect_gpu() if gpu is None else gpu
    preset, profile_line = resolve_profile(spec, has_gpu)
    try:  # what would fail when the sweep starts fails here, named with the file
        sampler = space.make_sampler(spec)
        for baseline in spec.baseline or ({},):
            trial_config(spec, baseline, spec.seeds[0], preset)
        gpu_text = _share_text(spec, "resources.gpu", spec.gpu, preset)
        cpu_text = _share_text(spec, "cpus", spec.cpus, preset)
    except (UserError, ConfigError) as e:
        raise UserError(f"{spec_path}: {e}") from None

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
    console.print(Text(profile_line))
    console.print(Text(f"resources per trial: gpu {gpu_text}, cpus {cpu_text}"))
    console.print(Text(_limits_line(spec)))
    if spec.warm_start is not None:
        skip = ", skipping configurations that already ran" if spec.warm_start.skip_existing else ""
        console.print(Text(f"warm start: from sweep '{spec.warm_start.sweep}'{skip}"))


def _detect_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _trials_line(spec: Any, space: Any) -> str:
    seeds = len(spec.seeds)
    baselines = 1 if spec.baseline is None else len(spec.baseline)
    if spec.method == "grid":
        how = f"{space.grid_size(spec)} configurations + {baselines} baseline, x {seeds} seed(s)"
    else:
        how = f"run_cap, including {baselines} baseline configuration(s) x {seeds} seed(s)"
    cap = f", capped at run_cap {spec.run_cap}" if spec.method == "grid" and spec.run_cap else ""
    return f"trials: {space.trial_count(spec)} ({how}{cap})"


def _share_text(spec: Any, key: str, amount: float | str, preset: str) -> str:
    """'0.5' for a fixed share, '0.125-1 (0.125 * K)' for an expression over the space's corners."""
    from sweeper.sweep.resolve import share, trial_config
    from trm_core.config import flatten, to_dict

    if not isinstance(amount, str):
        return f"{amount:g}"
    shares = [share(spec, key, flatten(to_dict(trial_config(spec, values, spec.seeds[0], preset))))
              for values in _corners(spec)]
    low, high = min(shares), max(shares)
    return f"{low:g} ({amount})" if low == high else f"{low:g}-{high:g} ({amount})"


def _corners(spec: Any) -> list[dict[str, Any]]:
    """Trainer values at the ends of every swept range (short lists: every value), plus the baselines.
    Param.corners counts a range before listing it, so a range of 10**12 values costs nothing."""
    grid = spec.method == "grid"
    axes = [[(p.name, v) for v in p.corners(grid)] for p in spec.swept]
    corners = [dict(c) for c in itertools.islice(itertools.product(*axes), MAX_CORNERS)]
    return corners + ([{}] if spec.baseline is None else [dict(b) for b in spec.baseline])


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
