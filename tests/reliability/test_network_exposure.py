"""What a sweep serves on the network: every socket the local Ray of a sweep listens on is loopback (checked
on the real processes with psutil), its token file is private, and `sweeper ui` binds 127.0.0.1 unless
--host says otherwise."""
from __future__ import annotations

import inspect
import os
import stat
from pathlib import Path

import pytest

from sweeper.commands import ui
from sweeper.sweep import cluster
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.procs import _psutil

pytestmark = pytest.mark.slow


@pytest.mark.fault(
    fault="`sweeper ui` on the network", kind="inspection",
    injected="none: the command's default --host and the MLflow server command it builds are read",
    checked="binds 127.0.0.1 unless --host says otherwise")
def test_ui_serves_this_machine_only_by_default():
    assert inspect.signature(ui.ui).parameters["host"].default == "127.0.0.1"
    from sweeper.tracking import Store

    cmd = ui.server_command(Store("sqlite:////tmp/x.db", None, "default"), "127.0.0.1", 5000)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"


def listening(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN state owned by one of `pids`."""
    ps = _psutil()
    return [(c.pid, c.laddr.ip, c.laddr.port) for c in ps.net_connections("tcp")
            if c.status == ps.CONN_LISTEN and c.pid in pids]


@pytest.mark.fault(
    fault="local Ray listening on the network (finding 5)", kind="inspection",
    injected="none: a sweep's local Ray is started (sweeper.sweep.cluster.start_ray) and a task run on it",
    checked="every TCP socket in LISTEN state of the process and its children is 127.0.0.1 (psutil on the real "
            "processes); Ray's auth token file is private to the user")
def test_the_local_ray_of_a_sweep_listens_on_loopback_only(tmp_path, monkeypatch):
    """Why this fails on commit 6911ba4: there Ray rewrote the requested 127.0.0.1 to the machine's address
    and its GCS, raylet and workers listened on every interface; the old test only read ray.init's
    arguments."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    sweep = SweepDir.at("net", tmp_path)
    sweep.path.mkdir()
    assert cluster.start_ray(None, sweep) is True
    try:
        @ray.remote
        def ping():
            return os.getpid()

        assert ray.get(ping.remote()) > 0  # tasks still run
        ps = _psutil()
        pids = {os.getpid(), *(p.pid for p in ps.Process().children(recursive=True))}
        sockets = listening(pids)
        assert len(sockets) >= 3, sockets  # GCS, raylet, workers: something really listens
        assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for _, ip, _ in sockets), sockets
        token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
        if token.exists():  # Ray 2.60 starts local clusters with token auth; the token is the user's alone
            assert stat.S_IMODE(token.stat().st_mode) & 0o077 == 0, oct(token.stat().st_mode)
    finally:
        cluster.stop_ray(True)
