"""`sweeper eval`: score checkpoints in every evaluation mode, on accuracy and on cost.

torch and trm_core.evaluation are imported inside the command body so `sweeper --help` stays instant.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sweeper.commands._common import friendly
from sweeper.commands.report import UriOpt
from sweeper.errors import UserError

ALL_MODES = "full,halt,halt_first,prob_avg,tta,tta_perm"
FROM_CHECKPOINT = "default: as the first checkpoint's training evaluates"


@friendly
def eval_command(
    checkpoints: Annotated[list[Path], typer.Argument(help="Checkpoint folders, run folders (newest checkpoint) or state.pt files; several = seeds pooled by halt_first/prob_avg.", show_default=False)],
    data: Annotated[str, typer.Option(help="'test' (the first checkpoint's held-out split), 'builtin' (shipped real puzzles), a Sudoku CSV, or a folder from 'sweeper data build' (its test split).")] = "test",
    modes: Annotated[str, typer.Option(help="Comma-separated modes: full, halt, halt_first, prob_avg, tta (rows tta, tta_vote, tta_halt_first over the 8 dihedral views), tta_perm (the same over digit relabellings).")] = ALL_MODES,
    tau: Annotated[Optional[float], typer.Option(help=f"Halting threshold: a chain halts when sigmoid(q) > tau ({FROM_CHECKPOINT}: eval_tau).", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N puzzles.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for results.json, results.csv and per_puzzle.csv.")] = None,
    views: Annotated[str, typer.Option(help="Views pooled by halt_first/prob_avg: identity, rot4, dihedral8, or dihedral indices like 0,1,2.")] = "identity",
    latents: Annotated[str, typer.Option(help="L_init rows used as chains by halt_first/prob_avg: all, first, or indices like 0,2.")] = "all",
    digit_perms: Annotated[int, typer.Option(help="Digit relabellings per view for halt_first/prob_avg (0 = none).")] = 0,
    tta_digit_perms: Annotated[int, typer.Option(help="Digit relabellings per dihedral view in tta (0 = the 8 views only).")] = 0,
    tta_perms: Annotated[int, typer.Option(help="Views of tta_perm: the identity and N-1 random digit relabellings.")] = 8,
    fallback: Annotated[str, typer.Option(help="halt-first answer when no chain halts: chain0 (the reference's), prob_avg or max_q.")] = "chain0",
    tau_curve: Annotated[bool, typer.Option(help="Record one all-steps pass and report the accuracy vs cost curve over a grid of tau.")] = True,
    batch_rows: Annotated[Optional[int], typer.Option(help=f"Rows (puzzles x chains) per forward pass ({FROM_CHECKPOINT}: eval_batch_rows, else 32 on CPU, 1024 on CUDA).", show_default=False)] = None,
    precision: Annotated[Optional[str], typer.Option(help=f"auto (bf16 autocast on CUDA), fp32, bf16-autocast or bf16 ({FROM_CHECKPOINT}).", show_default=False)] = None,
    z_l_init: Annotated[Optional[str], typer.Option(help=f"z_L start: l_init (L_init rows, the reference's) or fresh (noise, for fresh-init models) ({FROM_CHECKPOINT}).", show_default=False)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    track: Annotated[bool, typer.Option("--track", help="Log the evaluation to MLflow as one run, in the store `sweeper ui` serves (experiment --experiment).")] = False,
    experiment: Annotated[str, typer.Option(help="MLflow experiment of --track.")] = "eval",
    tracking_uri: UriOpt = None,
) -> None:
    """Evaluate checkpoints: print method | cell acc | puzzle acc | chain-steps/puzzle | relative cost | efficiency."""
    from sweeper.commands.progress import Progress
    from trm_core.evaluation import EvalConfig, check_modes, evaluate, resolve_device

    names = check_modes([m.strip() for m in modes.split(",") if m.strip()])
    if limit is not None and limit < 1:
        raise UserError("--limit must be >= 1")
    dev = resolve_device(device)
    models, cfg = _load_models(checkpoints, dev)
    puzzles = _load_data(data, cfg, limit)
    if len(puzzles.inputs) == 0:
        raise UserError(f"--data {data}: no puzzles")
    given = dict(tau=tau, batch_rows=batch_rows, precision=precision, z_l_init=z_l_init)
    config = EvalConfig.for_training(
        cfg, **{k: v for k, v in given.items() if v is not None}, modes=tuple(names), device=str(dev),
        views=_views(views), latents=_latents(latents), n_digit_perms=digit_perms, tta_digit_perms=tta_digit_perms,
        tta_perms=tta_perms, fallback=fallback, taus=None if not tau_curve else _default_taus(), limit=limit)
    with Progress(unit="puzzles", transient=True) as bar:  # plain lines where stdout is not a terminal
        res = evaluate(models, puzzles, config, progress=bar.by_label)
    res.meta["checkpoints"] = [str(p) for p in checkpoints]
    res.meta["data"] = data
    res.meta["data_label"] = puzzles.label  # what the puzzles are, e.g. "shipped puzzles, not Sudoku-Extreme"
    typer.echo(res.to_table())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        res.to_json(out / "results.json")
        res.to_csv(out / "results.csv")
        res.per_puzzle_csv(out / "per_puzzle.csv")
        typer.echo(f"wrote {out}/results.json, results.csv, per_puzzle.csv")
    if track:
        import dataclasses

        from sweeper.tracking.single_run import track_evaluation
        from trm_core.config import to_dict

        params = {**to_dict(cfg), "eval": dataclasses.asdict(config), "checkpoints": res.meta["checkpoints"], "data": data}
        track_evaluation(res, experiment, tracking_uri, ", ".join(p.name for p in checkpoints)[:200], params, out)


def _default_taus():
    from trm_core.evaluation import DEFAULT_TAUS

    return DEFAULT_TAUS


def _views(text: str):
    if all(part.strip().isdigit() for part in text.split(",")):
        return [int(part) for part in text.split(",")]
    return text


def _latents(text: str):
    if text in ("all", "first"):
        return text
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--latents {text!r}: expected all, first or comma-separated indices") from None


def _load_models(paths: list[Path], device):
    from trm_core.checkpoint import load_model

    models, cfg = [], None
    for path in paths:
        if not path.exists():
            raise UserError(f"checkpoint not found: {path}")
        try:
            model, c, _ = load_model(path, device)
        except (ValueError, KeyError) as e:  # corrupt, wrong schema, or no checkpoint in a run folder
            raise UserError(f"cannot load checkpoint {path}: {e}") from None
        models.append(model)
        cfg = cfg or c
    return models, cfg


def _load_data(spec: str, cfg, limit: int | None):
    """'test' | 'builtin' | CSV | built folder -> a PuzzleSet (the held-out part where there is a split)."""
    import dataclasses

    import numpy as np

    from trm_core.data import PuzzleSet, load_splits

    # The config comes from a checkpoint, i.e. from whoever wrote the file: it must not choose where eval
    # writes, so generated puzzles go to this user's cache ($SWEEPER_CACHE or ~/.cache/sweeper).
    data = dataclasses.replace(cfg.data, cache_dir=None)
    if spec == "test":
        return load_splits(data)[1]
    if spec == "builtin":
        return load_splits(dataclasses.replace(data, source="builtin", path=None, n_test=data.n_test or 1000))[1]
    path = Path(spec).expanduser()
    if path.is_dir():
        from trm_core.sudoku.build import read_metadata

        meta = read_metadata(path)
        n = meta["n_test_puzzles"] if limit is None else min(limit, meta["n_test_puzzles"])
        return load_splits(dataclasses.replace(data, source="dir", path=str(path), n_train=1, n_test=n))[1]
    if path.is_file():
        from trm_core.sudoku.csvio import read_csv

        d = read_csv(path)  # every puzzle of the file: a CSV given here is a test set
        return PuzzleSet(np.asarray(d.puzzles, dtype=np.uint8) + 1, np.asarray(d.solutions, dtype=np.uint8) + 1,
                         np.asarray(d.ratings, dtype=np.float32), label=path.name)
    raise UserError(f"--data {spec}: not 'test', 'builtin', a CSV file or a dataset folder")


def register(app: typer.Typer) -> None:
    """Add `sweeper eval` to the app."""
    app.command("eval")(eval_command)
