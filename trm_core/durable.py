"""Durable file writes: fsync what was written, swap folders without a moment where the data is gone,
and tell a full disk from other write failures.

Every writer in trm_core (checkpoints, built datasets, the generated-puzzle cache) fills a temporary
folder, fsyncs its files, renames the folder into place and fsyncs the parent: after a power cut the
folder is either the old one or the complete new one, never a folder of empty files.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

NEARLY_FULL_BYTES = 16 << 20
"""Below this many free bytes a failed write is taken to be a full disk (see disk_error)."""


def fsync_file(path: Path) -> None:
    """Flush one written file to the device."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to the device; a no-op where folders
    cannot be opened (not Linux)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Write a small text file and fsync it (callers write into a temporary folder, then swap)."""
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def disk_error(e: BaseException, where: Path) -> OSError | None:
    """OSError(ENOSPC) when a failed write `e` looks like a full disk at `where`, else None.

    Writers in C++ (torch.save to a path, for one) report a full disk as RuntimeError without an errno,
    and callers that keep a run resumable on a full disk look only at OSError errnos. Free space is
    read while the partial file still fills the disk, so a write that failed for lack of room shows
    (almost) nothing free.
    """
    if isinstance(e, OSError) and e.errno is not None:
        return None  # already carries its cause
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return None
    if free >= NEARLY_FULL_BYTES:
        return None
    return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free} bytes free; {type(e).__name__}: {e})",
                   str(where))


def swap_dir(new: Path, final: Path) -> None:
    """Put folder `new` at `final`, replacing what is there: the old folder is renamed aside first, the
    new one renamed into place, then the old one deleted, so the old data exists until the new data does.
    Both must be on one file system (callers make `new` next to `final`)."""
    new, final = Path(new), Path(final)
    aside = final.parent / f".{final.name}.old-{os.getpid()}"
    had_old = final.exists() or final.is_symlink()
    if had_old:
        if aside.exists():  # left by a swap killed half-way; its data was replaced since
            shutil.rmtree(aside)
        os.replace(final, aside)
    try:
        os.replace(new, final)
    except BaseException:
        if had_old:
            os.replace(aside, final)
        raise
    fsync_dir(final.parent)
    if had_old:
        if aside.is_symlink():
            aside.unlink()
        else:
            shutil.rmtree(aside, ignore_errors=True)
