"""Fixtures every test package shares: a free loopback port, a second process holding a file lock, and the
tiny trainer config. Helpers that are not fixtures live in tests/helpers/ (imported as `helpers.*`)."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest


@pytest.fixture
def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lock_holder():
    """hold(path): a real second process takes the file lock at `path` and keeps it until the test ends."""
    procs = []

    def hold(path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", (
            "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
            "print('locked', flush=True); time.sleep(120)"), str(path)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture
def tiny_cfg():
    """The smoke preset on the CPU, one thread: a TrainConfig that trains in about a second."""
    from trm_core.config import resolve

    return resolve("smoke", {"device": "cpu", "threads": 1})
