"""Durable file writes: every state file is replaced whole (temp + fsync + rename + directory fsync), and
JSONL appends never glue a record onto a torn line. One helper, so no caller hand-rolls tmp+rename.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def write_bytes(path: str | Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably: readers see the old file or the new one, and
    after a power cut the rename is not ahead of the data (fsync of the file, then of its folder)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is None:  # a failed write() names no file; say which one (a full disk: which disk)
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """write_bytes for UTF-8 text."""
    write_bytes(path, text.encode())


def write_json(path: str | Path, data: Any) -> None:
    """write_bytes for JSON (sorted keys, numpy scalars and paths as plain values)."""
    write_text(path, json.dumps(data, indent=1, sort_keys=True, default=plain))


def fsync_dir(folder: str | Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: str | Path) -> Any:
    """The file's JSON, or None when it is missing or torn (a torn state file reads as absent)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line. A writer killed mid-line leaves a torn last line; start on a fresh line then,
    so the torn one stays alone (and is skipped) instead of swallowing this record too."""
    path = Path(path)
    line = json.dumps(record, default=plain) + "\n"
    with open(path, "ab+") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; torn lines are skipped."""
    out = []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def plain(o: Any) -> Any:
    """JSON fallback: numpy arrays and scalars as Python values, anything else as its str()."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    return str(o)
