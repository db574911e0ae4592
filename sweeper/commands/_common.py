"""Shared CLI plumbing: map known errors to one line on stderr and exit code 2."""
from __future__ import annotations

import functools
import sys

import typer

from sweeper.errors import UserError


def friendly(fn):
    """Run a command body; a known input error becomes 'error: <one line>' and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from trm_core.config import ConfigError

        try:
            return fn(*args, **kwargs)
        except (UserError, ConfigError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except FileNotFoundError as e:
            typer.echo(f"error: file not found: {e.filename or e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper
