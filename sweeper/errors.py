"""User-facing errors: one clear line, exit code 2, no traceback."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, key, value, state); str() is the one line to print."""
