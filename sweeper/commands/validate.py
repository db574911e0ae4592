"""`sweeper validate SPEC`: check a sweep file and show what it would run, without starting anything."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sweeper.commands._common import friendly

_MAX_CORNERS = 256
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
    from rich.console import Console
    from rich.table import Table

    from sweeper import space
    from sweeper.spec import load_spec

    from sweeper.errors import UserError
    from trm_core.config import ConfigError

    spec = load_spec(spec_path)
    has_gpu = _detect_gpu() if gpu is None else gpu
    preset, profile_line = space.resolve_profile(spec, has_gpu)
    try:  # what would fail when the sweep starts fails here, named with the file
        sampler = space.make_sampler(spec)
        for baseline in spec.baseline or ({},):
            space.trial_config(spec, baseline, spec.seeds[0], preset)
        gpu_text = _share_text(spec, space.gpu_share, spec.gpu, preset)
        cpu_text = _share_text(spec, space.cpu_share, spec.cpus, preset)
    except (UserError, ConfigError) as e:
        raise UserError(f"{spec_path}: {e}") from None

    console = Console(highlight=False)
    console.print(f"[bold]{spec.name}[/bold]  {spec_path}  (spec hash {spec.spec_hash})")
    if spec.description:
        console.print(spec.description.strip())
    table = Table("parameter", "distribution", "values / range")
    for p in spec.parameters:
        table.add_row(p.name, p.distribution, p.describe())
    if not spec.parameters:
        table.add_row("(none)", "", "only seeds vary")
    console.print(table)
    objectives = ", ".join(f"{m.name} ({m.goal})" for m in spec.metrics)
    console.print(f"method: {spec.method} ({type(sampler).__name__}); objective: {objectives}")
    console.print(_trials_line(spec, space))
    console.print(profile_line)
    console.print(f"resources per trial: gpu {gpu_text}, cpus {cpu_text}")
    console.print(_limits_line(spec))


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


def _share_text(spec: Any, share_fn: Any, amount: float | str, preset: str) -> str:
    """'0.5' for a fixed share, '0.125-1 (0.125 * K)' for an expression over the space's corners."""
    if not isinstance(amount, str):
        return f"{amount:g}"
    shares = [share_fn(spec, params, preset) for params in _corners(spec)]
    low, high = min(shares), max(shares)
    return f"{low:g} ({amount})" if low == high else f"{low:g}-{high:g} ({amount})"


def _corners(spec: Any) -> list[dict[str, Any]]:
    """Configurations at the ends of every swept range (all listed values), plus the baselines."""
    axes = []
    for p in spec.swept:
        values = p.grid_values() if p.enumerable and len(p.grid_values()) <= 16 else [p.low, p.high]
        axes.append([(p.name, v) for v in values])
    corners = [dict(c) for c in itertools.islice(itertools.product(*axes), _MAX_CORNERS)]
    return corners + ([{}] if spec.baseline is None else [dict(b) for b in spec.baseline])


def _limits_line(spec: Any) -> str:
    s = spec.scheduler
    sched = "none" if s is None else (
        f"{s.type} (grace {s.grace_period}, reduction {s.reduction_factor:g}, "
        f"max_t {s.max_t or 'from steps/eval_every'})")
    budget = "none" if spec.time_budget is None else f"{spec.time_budget:g} s"
    return (f"scheduler: {sched}; concurrency: {spec.concurrency or 'as resources allow'}; time budget: {budget}; "
            f"max failures: {'unlimited' if spec.max_failures is None else spec.max_failures}; "
            f"retries: {spec.trial_retries}; tracking: {spec.tracking_uri or 'embedded store'}")
