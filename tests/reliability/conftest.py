"""Fixtures of the reliability suite: a real size-limited file system (tmpfs), and the `fault` marker that
scripts/reliability_table.py reads to build docs/RELIABILITY.md (fault, real or simulated, how it is
injected, what is checked)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fault(fault, kind, injected, checked): a row of docs/RELIABILITY.md (scripts/reliability_table.py)")


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size_bytes) -> a fresh tmpfs of that size (a real file system that really fills up); unmounted
    when the test ends. Skips, saying why, where mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def mount(size_bytes: int) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no `mount` command: cannot make a real full file system here")
        kib = max(64, -(-size_bytes // 1024))
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip() or done.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)

