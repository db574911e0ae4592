"""The one error type trm_core raises for bad user input."""
from __future__ import annotations


class ConfigError(ValueError):
    """A bad configuration value, key or input file; the message is one line meant for the user."""
