"""`sweeper train`: one training run of trm_core, with a progress bar and the final metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sweeper.commands._common import friendly
from sweeper.commands.report import UriOpt
from sweeper.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("presets")(presets)


@friendly
def train(
    preset: Annotated[str, typer.Option(help="Trainer preset (see `sweeper presets`): paper, paper-baseline, their -fixed variants, cpu-tiny, cpu-sweep, smoke.")] = "cpu-tiny",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key, e.g. --set model.k=4 (repeatable).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder (checkpoints, config, metrics.jsonl). Default: runs/<preset>-seed<seed>.")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Resume the run in this folder from its newest intact checkpoint.")] = None,
    track: Annotated[bool, typer.Option("--track", help="Log the run to MLflow, in the store `sweeper ui` serves (a --resume continues the same MLflow run).")] = False,
    experiment: Annotated[str, typer.Option(help="MLflow experiment of --track.")] = "train",
    tracking_uri: UriOpt = None,
) -> None:
    """Train one TRM (WTA when model.k > 1) and print its final metrics."""
    import json

    from sweeper.commands.config_help import parse_sets
    from sweeper.commands.progress import ProgressSink
    from trm_core.config import resolve, to_dict

    if resume is not None:
        if not (resume / "config.json").is_file():
            raise FileNotFoundError(str(resume / "config.json"))
        from trm_core.config import TrainConfig, from_dict

        cfg = from_dict(TrainConfig, json.loads((resume / "config.json").read_text()))
        if set_:
            raise UserError("--set cannot be combined with --resume (a resumed run keeps its config)")
        run_dir = resume
    else:
        cfg = resolve(preset, parse_sets(set_ or []))
        run_dir = out or Path("runs") / f"{preset}-seed{cfg.seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))

    from sweeper.hooks import CompositeSink
    from sweeper.tracking.single_run import tracked_run
    from trm_core.trainer import train as run_training

    with tracked_run(track, "train", experiment, tracking_uri, run_dir.name, to_dict(cfg), run_dir) as tracked:
        sink = CompositeSink([ProgressSink(total=cfg.steps, metrics_path=run_dir / "metrics.jsonl"), tracked.sink])
        final = run_training(cfg, sink, checkpoint_dir=run_dir / "checkpoints")
        tracked.finish(files=[run_dir / "config.json", run_dir / "metrics.jsonl"])  # metrics: the sink logged them
    typer.echo(f"run folder: {run_dir}")
    for key in sorted(final):
        typer.echo(f"{key:32s} {final[key]:.4f}")


def presets() -> None:
    """List the trainer presets (what each is; for a variant, the keys it changes in the preset it
    inherits), then every config key with its default and meaning."""
    from sweeper.commands.config_help import describe, preset_changes, preset_summary
    from trm_core.config import preset_names

    typer.echo("presets:")
    for name in preset_names():
        typer.echo(f"  {name:22s} {preset_summary(name)}")
        parent, changes = preset_changes(name)
        if parent is not None:
            diff = ", ".join(f"{k}={v!r}" for k, (_, v) in changes.items()) or "nothing"
            typer.echo(f"  {'':22s}   differs from {parent} in: {diff}")
    typer.echo("keys:")
    for key, default, doc in describe():
        typer.echo(f"  {key:26s} {default:>10s}  {doc}")
