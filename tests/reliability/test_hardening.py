"""The small hardening fixes of issue 12, each checked on the real thing: state files reach the disk before
they replace the old ones (strace of the real syscalls), a failed write leaves the old file and no temporary
file (/dev/full and a full tmpfs), the local Ray takes only the CPUs the process may use (a real affinity
mask), MLflow's telemetry is off in every sweep process, and Ray's session folder is private (open)."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.disk import fill
from helpers.sweeps import REPO, env
from sweeper.util.files import read_json, write_bytes, write_json


def _temp_name(path: Path) -> Path:
    """Where sweeper.util.files.write_bytes writes before the rename (the test routes that file to a device)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@pytest.mark.fault(
    fault="a state file write fails (disk full)", kind="real",
    injected="the temporary file of write_json is a link to /dev/full (the kernel's always-full device); and a "
             "full tmpfs",
    checked="OSError(ENOSPC) raised; the old state.json intact; no temporary file left")
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, tmpfs):
    """Why this fails on commit 6911ba4: its write_json wrote the temporary file without cleaning up, so a
    failed write left `.state.json.PID.tmp` behind (a full disk kept its space taken)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    path = tmp_path / "state.json"
    write_json(path, {"old": 1})
    _temp_name(path).symlink_to("/dev/full")
    with pytest.raises(OSError) as err:
        write_json(path, {"new": 2})
    assert err.value.errno == errno.ENOSPC
    assert read_json(path) == {"old": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]

    disk = tmpfs(1 << 20)
    path = disk / "state.json"
    write_json(path, {"old": 1})
    fill(disk, leave=16 << 10)
    with pytest.raises(OSError) as err:
        write_bytes(path, b"x" * (256 << 10))
    assert err.value.errno == errno.ENOSPC
    assert read_json(path) == {"old": 1} and sorted(p.name for p in disk.iterdir()) == ["filler", "state.json"]


@pytest.mark.fault(
    fault="power cut after a state file write", kind="inspection",
    injected="none: the syscalls of a real write_json are traced with strace",
    checked="fsync of the new file before the rename over the old one, then fsync of the folder")
def test_state_files_are_fsynced_before_and_after_the_rename(tmp_path):
    """Why this fails on commit 6911ba4: write_json there renamed an unsynced file, so after a power cut
    state.json could be empty (read as {}: the spec-hash check skipped, the sweep 'new')."""
    if shutil.which("strace") is None:
        pytest.skip("no strace")
    log, target = tmp_path / "trace", tmp_path / "state.json"
    code = f"from sweeper.util.files import write_json; write_json({str(target)!r}, {{'a': 1}})"
    done = subprocess.run(["strace", "-f", "-o", str(log), "-e", "trace=openat,fsync,rename,renameat,renameat2",
                           sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    fds: dict[str, str] = {}  # fd -> what it was opened on
    order = []
    for line in calls:
        if m := re.search(r'openat\(AT_FDCWD, "([^"]+)".*\) = (\d+)$', line):
            fds[m.group(2)] = m.group(1)
        elif m := re.search(r"fsync\((\d+)\)", line):
            order.append(("fsync", fds.get(m.group(1))))
        elif m := re.search(r'rename\w*\(.*"([^"]+)".*"([^"]+)"', line):
            order.append(("rename", m.group(2)))
    mine = [(op, what) for op, what in order if what and str(tmp_path) in what]
    temp = [what for op, what in mine if op == "fsync" and what.endswith(".tmp")]
    assert len(temp) == 1, mine
    assert mine == [("fsync", temp[0]), ("rename", str(target)), ("fsync", str(tmp_path))], mine


RAY_CPUS = """
import json, os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import ray
from sweeper.sweep import cluster
from sweeper.sweep.sweepdir import SweepDir
sweep = SweepDir.at("cpus", sys.argv[1])
sweep.path.mkdir(parents=True)
cluster.start_ray(None, sweep)
try:
    session = ray._private.worker._global_node.get_session_dir_path()
    chain, here = [], session
    while here != os.path.dirname(here):  # the session folder and every folder above it
        st = os.stat(here)
        chain.append([here, st.st_mode & 0o777, st.st_uid])
        here = os.path.dirname(here)
    print(json.dumps({"cpus": ray.cluster_resources().get("CPU"), "usable": cluster.usable_cpus(),
                      "session_chain": chain, "uid": os.getuid()}))
finally:
    cluster.stop_ray(True)
"""


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory) -> dict:
    """Facts of a sweep's local Ray (sweeper.sweep.cluster.start_ray) started by a process pinned to one CPU
    (one start serves the tests below)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a machine with more than one usable CPU")
    done = subprocess.run([sys.executable, "-c", RAY_CPUS, str(tmp_path_factory.mktemp("ray"))], env=env(),
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.fault(
    fault="CPU limit (affinity mask, container quota)", kind="real",
    injected="the driver process is pinned to one CPU with sched_setaffinity before it starts its local Ray",
    checked="Ray offers 1 CPU to trials, not os.cpu_count()")
def test_the_local_ray_offers_only_the_cpus_this_process_may_use(local_ray):
    """Why this fails on commit 6911ba4: it started Ray with num_cpus=os.cpu_count(), which ignores the
    affinity mask and a container's CPU quota, so more one-CPU trials ran than CPUs existed."""
    assert local_ray["usable"] == 1 and local_ray["cpus"] == 1, local_ray


@pytest.mark.slow
@pytest.mark.fault(
    fault="Ray session folder writable by other users", kind="inspection",
    injected="none: the modes of the session folder of a sweep's local Ray and of every folder above it are read",
    checked="a folder on the way is ours with no access for group or others (Ray itself makes sessions 0777)")
def test_the_local_ray_session_folder_is_private(local_ray):
    """Why this fails on commit 6911ba4: Ray's sessions were in /tmp/ray, 0777 all the way down."""
    guards = [(p, oct(m)) for p, m, uid in local_ray["session_chain"] if uid == local_ray["uid"] and m & 0o077 == 0]
    assert guards, local_ray["session_chain"]


@pytest.mark.fault(
    fault="MLflow telemetry", kind="inspection",
    injected="none: a fresh interpreter without DO_NOT_TRACK, CI or MLFLOW_DISABLE_TELEMETRY imports the tracking "
             "package",
    checked="MLflow's own is_telemetry_disabled() is true after the import (and false before it, so the test can fail)")
def test_mlflow_telemetry_is_off_in_every_sweep_process():
    """Why this fails on commit 6911ba4: nothing set MLFLOW_DISABLE_TELEMETRY, so MLflow sent usage telemetry
    from the driver, the trials and the `sweeper ui` server."""
    code = textwrap.dedent("""
        import os, sys
        if sys.argv[1] == "sweeper":
            import sweeper.tracking
        from mlflow.telemetry.utils import is_telemetry_disabled
        print(is_telemetry_disabled())
    """)
    clean = {k: v for k, v in env().items() if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "CI")
             and not k.startswith(("PYTEST", "GITHUB_", "GITLAB_", "BUILDKITE", "JENKINS", "CIRCLECI", "TRAVIS"))}
    seen = {}
    for what in ("mlflow", "sweeper"):
        done = subprocess.run([sys.executable, "-c", code, what], env=clean, capture_output=True, text=True,
                              timeout=120, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        seen[what] = done.stdout.strip().splitlines()[-1]
    assert seen == {"mlflow": "False", "sweeper": "True"}, seen
