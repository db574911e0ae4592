"""User-facing errors: one clear line, exit code 2, no traceback."""
from __future__ import annotations

import errno

DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
"""A full disk, a quota or a read-only file system: the environment's fault, not the input's or a trial's."""


class UserError(Exception):
    """A problem with the user's input (file, key, value, state); str() is the one line to print."""
