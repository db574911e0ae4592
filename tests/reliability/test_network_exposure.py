"""What a sweep serves on the network: `sweeper ui` binds 127.0.0.1 unless --host says otherwise, and the
local Ray a sweep starts runs no dashboard (Ray's HTTP server, which can submit jobs)."""
from __future__ import annotations

import inspect


from sweeper.commands import report
from sweeper.sweepdir import SweepDir


def test_ui_serves_this_machine_only_by_default():
    assert inspect.signature(report.ui).parameters["host"].default == "127.0.0.1"
    from sweeper.tracking import Store

    cmd = report.server_command(Store("sqlite:////tmp/x.db", None, "default"), "127.0.0.1", 5000)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"


def test_the_local_ray_of_a_sweep_runs_without_a_dashboard(tmp_path, monkeypatch):
    import ray

    from sweeper import runner

    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(kw))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    sweep = SweepDir.at("net", tmp_path)
    sweep.path.mkdir()
    req = runner.RunRequest(sweep=sweep, spec=None, address=None)
    assert runner._start_ray(req) is True
    assert seen["include_dashboard"] is False
    assert seen.get("dashboard_host", "127.0.0.1") == "127.0.0.1"
