"""Processes a sweep starts and may have to end after its driver was killed: records with create times (so a
reused pid is never touched), descendants, and a TERM-then-KILL of what is still alive.

psutil comes with Ray (vendored in ray/thirdparty_files), so it is found there without importing ray.
"""
from __future__ import annotations

import os
import signal
from typing import Any


def _psutil():
    try:
        import psutil
    except ImportError:  # Ray vendors psutil in ray/thirdparty_files; add it without importing ray
        import importlib.util
        import sys

        ray_dir = importlib.util.find_spec("ray").submodule_search_locations[0]
        sys.path.append(os.path.join(ray_dir, "thirdparty_files"))
        import psutil
    return psutil


def process_record(pid: int) -> dict[str, Any] | None:
    """{pid, create_time, name} of a live process (create_time tells a reused pid apart)."""
    ps = _psutil()
    try:
        p = ps.Process(pid)
        return {"pid": pid, "create_time": p.create_time(), "name": p.name()}
    except ps.Error:
        return None


def descendants(pid: int) -> list[dict[str, Any]]:
    """Records of every live descendant of `pid`."""
    ps = _psutil()
    try:
        kids = ps.Process(pid).children(recursive=True)
    except ps.Error:
        return []
    return [r for r in (process_record(k.pid) for k in kids) if r]


def kill_recorded(records: list[dict[str, Any]], grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL, every recorded process still alive (same pid AND create_time) and
    its descendants. Returns the pids signalled. Never touches a process that merely reuses a pid."""
    ps = _psutil()
    victims = []
    for r in records:
        try:
            p = ps.Process(int(r["pid"]))
            if abs(p.create_time() - float(r["create_time"])) > 0.01:
                continue
            victims += [*p.children(recursive=True), p]
        except (ps.Error, KeyError, ValueError, TypeError):
            continue
    for p in victims:
        try:
            p.send_signal(signal.SIGTERM)
        except ps.Error:
            pass
    _, alive = ps.wait_procs(victims, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except ps.Error:
            pass
    ps.wait_procs(alive, timeout=grace_s)
    return [p.pid for p in victims]
