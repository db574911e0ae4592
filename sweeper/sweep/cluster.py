"""Ray for a sweep: attach to a cluster or start a private local one, keep Ray's console quiet, and end
the processes a killed driver left behind. The only module that starts or stops Ray.

A local Ray is started loopback-only: every gRPC server of Ray binds 127.0.0.1 exactly when the node IP
is 127.0.0.1, but Ray rewrites a requested 127.0.0.1 to the machine's address unless its "cluster mode"
is off (on Linux it is on). So, with no --address, cluster mode is switched off for this process before
ray.init, and `address="local"` keeps Ray from joining whatever /tmp/ray/ray_current_cluster names.
Ray 2.60 starts local clusters with token authentication; its files are created under umask 077 and
its session folders live in a 0700 folder of the user's, so the token and the sessions are private.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import now, read_jsonl
from sweeper.util.procs import descendants, kill_recorded

LOCAL_RAY_CONFIG = {"prestart_worker_first_driver": False}
"""Ray starts one idle Python worker per CPU for the first driver; Tune never uses them (its trial actors
carry a runtime_env, so Ray starts them new workers: measured), and on 2 cores starting them cost ray.init
~0.9 s (3.9 -> 3.0 s, 4 alternated runs)."""


def ray_address(address: str | None) -> str | None:
    """--address, else $RAY_ADDRESS, else None (a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def start_ray(address: str | None, sweep: SweepDir) -> bool:
    """Attach to a cluster or start a local Ray; True if this driver started (and owns) Ray."""
    import ray

    if ray.is_initialized():  # the caller (a test, a notebook) owns this Ray
        return False
    quiet = dict(log_to_driver=False, configure_logging=True, logging_level="ERROR")
    if address:
        ray.init(address=address, **quiet)
        sweep.update_state(ray={"address": address, "processes": []})
        return True
    from ray._private import ray_constants  # noqa: PLC2701 -- the switch Ray itself reads (see module doc)

    ray_constants.ENABLE_RAY_CLUSTER = False
    old = os.umask(0o077)
    try:
        ray.init(address="local", num_cpus=usable_cpus(), num_gpus=detect_gpus(), include_dashboard=False,
                 _node_ip_address="127.0.0.1", _temp_dir=str(private_temp_dir()), _system_config=LOCAL_RAY_CONFIG,
                 **quiet)
    finally:
        os.umask(old)
    _private_token()
    # Recorded so that a resume after kill -9 of this driver can end what it left behind.
    sweep.update_state(ray={"address": None, "processes": descendants(os.getpid())})
    return True


def private_temp_dir() -> Path:
    """Ray's temp folder for a local sweep: /tmp/sweeper-<uid>/ray. Ray makes its temp and session folders
    0777 whatever the umask; inside a parent that is ours with mode 0700, nobody else can reach them. A
    parent of that name that is not ours (or is a symlink) is refused rather than used."""
    import tempfile

    from sweeper.errors import UserError

    parent = Path(tempfile.gettempdir()) / f"sweeper-{os.getuid()}"
    try:
        parent.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(parent)
    if parent.is_symlink() or info.st_uid != os.getuid():
        raise UserError(f"{parent} is not a folder of this user; remove it (Ray's files of a local sweep go there)")
    if info.st_mode & 0o077:
        parent.chmod(0o700)
    return parent / "ray"


def _private_token() -> None:
    """Ray's auth token, if it exists from before (made under another umask), is made readable by its owner only."""
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if token.is_file() and token.stat().st_mode & 0o077:
        token.chmod(0o600)


def stop_ray(owned: bool) -> None:
    if owned:
        import ray

        ray.shutdown()


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a container's CPU quota (Ray's detection)."""
    count = len(os.sched_getaffinity(0))
    try:
        from ray._private.utils import get_num_cpus

        count = min(count, max(1, int(get_num_cpus())))
    except Exception:  # a Ray without this helper: the affinity mask alone
        pass
    return count


def detect_gpus() -> int:
    """CUDA devices visible to this process (0 without CUDA; torch is not imported where there is no GPU)."""
    from sweeper.util.gpus import gpu_count

    return gpu_count()


def cluster_facts() -> tuple[float, float]:
    """(GPUs in the Ray cluster, CPUs of its largest alive node)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return ray.cluster_resources().get("GPU", 0.0), max((n.get("CPU", 0.0) for n in nodes), default=0.0)


def clean_stale(sweep: SweepDir) -> list[int]:
    """End the Ray processes and trial workers a killed driver of this sweep left running (this host's only)."""
    import socket

    state = sweep.read_state()
    records = list((state.get("ray") or {}).get("processes") or [])
    host = socket.gethostname()
    for trial in sorted(sweep.trials.glob("t*")):
        starts = [a for a in read_jsonl(trial / "attempts.jsonl") if a.get("event") == "start"]
        if starts and starts[-1].get("host", host) == host:
            records.append({"pid": starts[-1]["pid"], "create_time": starts[-1].get("create_time", 0)})
    killed = kill_recorded([r for r in records if r.get("create_time")])
    if killed:
        sweep.update_state(last_cleanup=now())
    return killed


class _LogFile(logging.FileHandler):
    """driver.log is in the sweep folder: on a full disk, Ray's warnings are dropped instead of reaching the
    terminal as logging's 'Logging error' traceback."""

    def handleError(self, record):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)


# Set while Tune runs: the new output engine prints its banner at any verbosity; Tune's own result files
# (CSV, JSON, TensorBoard per trial under ray/) duplicate the trial folders, and tensorboardX's import alone
# held up the first trial by ~2 s of a 2-core machine (py-spy).
TUNE_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}


@contextlib.contextmanager
def quiet_ray(log_file: Path):
    """Ray's own output off: its console output (the live table replaces it) and Tune's result files; its
    warnings go to driver.log."""
    old_env = {k: os.environ.get(k) for k in TUNE_ENV}
    os.environ.update(TUNE_ENV)
    ray_log = logging.getLogger("ray")
    handler = _LogFile(log_file)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    muted = [(h, h.level) for h in ray_log.handlers]
    for h, _ in muted:
        h.setLevel(logging.CRITICAL)
    ray_log.addHandler(handler)
    try:
        yield
    finally:
        ray_log.removeHandler(handler)
        handler.close()
        for h, level in muted:
            h.setLevel(level)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
