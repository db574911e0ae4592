"""`sweeper report`: the paper-style table of a sweep (configurations, seeds pooled, against every TTA rule).

Read from the sweep's folder when it is here (`--root`), else from its MLflow runs (the store: first that
is set of --tracking-uri, $MLFLOW_TRACKING_URI, ./mlruns/mlflow.db): the same records either way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sweeper.commands._common import friendly
from sweeper.errors import UserError

UriOpt = Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db).")]
FORMATS = ("table", "csv", "markdown")


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@friendly
def report(
    name: Annotated[str, typer.Argument(help="Sweep name (its folder under --root, and its MLflow experiment).")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or markdown.")] = "table",
    vs: Annotated[Optional[str], typer.Option("--vs", help="TTA rule to compare with, e.g. tta_vote (default: the strongest, i.e. the highest baseline accuracy).")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="Folder holding the sweeps (default: $SWEEPER_HOME, else ./sweeps).")] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Print the sweep's results per configuration (seeds pooled) against the TTA baseline, best first."""
    if fmt not in FORMATS:
        raise UserError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    from sweeper.results import report as table
    from sweeper.util.names import nearest

    runs, where = _records(name, root, tracking_uri)
    rules = sorted({k.split("/")[1] for r in runs if r["tags"].get("sweeper.role") == "baseline"
                    for k in r["metrics"] if k.startswith("final/tta")})
    if vs is not None and vs not in rules:
        raise UserError(f"--vs: the baseline has no TTA rule {vs!r}{nearest(vs, rules)}")
    rows = table.build_table(runs, vs)
    if not any(r["role"] == "trial" for r in rows):
        states = sorted({r["tags"].get("sweeper.state", r["status"]) for r in runs if r["tags"].get("sweeper.role") == "trial"})
        raise UserError(f"sweep '{name}' has no completed trial with a final evaluation yet ({where}; "
                        f"trial states: {', '.join(states) or 'none'})")
    ref = table.reference_rule(runs, vs)
    label = next((r["tags"].get("sweeper.data_label") for r in runs if r["tags"].get("sweeper.data_label")), "")
    typer.echo(f"sweep {name} ({where}); Δ, p and verdict against TTA rule {ref}"
               + (f"; puzzles: {label}" if label else ""), err=True)
    typer.echo(table.render(rows, fmt), nl=False)


def _records(name: str, root: Path | None, tracking_uri: str | None) -> tuple[list[dict], str]:
    """(records, where they came from): the sweep folder if it exists, else MLflow."""
    from sweeper.sweep.sweepdir import SweepDir

    sweep = SweepDir.at(name, root)
    if sweep.exists() and tracking_uri is None:
        from sweeper.results import pairing, records

        pairing.update(sweep.path)
        return records.sweep_records(sweep.path), f"folder {sweep.path}"
    from sweeper.tracking import open_existing, resolve_store, run_rows

    store = resolve_store(tracking_uri)
    runs = run_rows(open_existing(store, name))
    return runs, f"MLflow {store.uri}"
