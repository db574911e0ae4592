"""The `sweeper` command. Each subcommand lives in sweeper/commands/<group>.py and registers itself here.

Heavy libraries (torch, ray, mlflow) are imported inside command bodies so `sweeper --help` is instant.
"""
from __future__ import annotations

from typing import Annotated

import typer

from sweeper import __version__
from sweeper.commands import data, eval, report, sweep, train, ui, validate

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
