"""The `sweeper` command. Each subcommand lives in sweeper/commands/<group>.py and registers itself here.

Heavy libraries (torch, ray, mlflow) are imported inside command bodies so `sweeper --help` is instant.
"""
from __future__ import annotations

import atexit
import gc
from typing import Annotated

import typer

from sweeper import __version__
from sweeper.commands import data, eval, report, sweep, train, ui, validate

# The interpreter's last garbage collections walk every object Ray, MLflow and pandas left: 5 s of a 2-core
# machine after a sweep has ended (measured with py-spy: gc_collect_main during finalisation). Registered
# first, so it runs after every other exit handler (Ray's, MLflow's); a frozen heap is freed without them.
atexit.register(gc.freeze)

app = typer.Typer(
    name="sweeper",
    help="Sweeps and hyperparameter search for Tiny Recursive Models (TRM) and WTA training.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sweeper {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Sweeps and hyperparameter search for Tiny Recursive Models (TRM) and WTA training."""


for module in (train, data, validate, eval, sweep, report, ui):
    module.register(app)
