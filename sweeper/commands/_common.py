"""Shared CLI plumbing: map known errors to one line on stderr and exit code 2."""
from __future__ import annotations

import functools
import os
import sys

import typer

from sweeper.errors import DISK_ERRNOS, UserError


def one_line(text: str) -> str:
    """Control characters from user input (a stray CR in a CSV header, say) must not split the message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def friendly(fn):
    """Run a command body; a known input error becomes 'error: <one line>' and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from trm_core.config import ConfigError

        try:
            return fn(*args, **kwargs)
        except (UserError, ConfigError) as e:
            typer.echo(f"error: {one_line(str(e))}", err=True)
            raise typer.Exit(2) from None
        except FileNotFoundError as e:
            typer.echo(f"error: file not found: {e.filename or e}", err=True)
            raise typer.Exit(2) from None
        except OSError as e:
            if e.errno not in DISK_ERRNOS:
                raise
            # Nothing is half-written (checkpoints and state files are replaced atomically), so say what
            # to do instead of printing a traceback.
            where = f" ({e.filename})" if e.filename else ""
            typer.echo(f"error: {os.strerror(e.errno).lower()}{where}; free space (or make it writable) and "
                       "run the command again (`sweeper resume NAME` continues a sweep)", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper
