"""The sweep directory: layout, safe names, the single-driver lock, the state file and stale processes.

    sweeps/<name>/
        spec.yaml, spec.json    the spec as given and as normalised (resume reads these)
        state.json              status, reason, driver pid/host, sessions, Ray processes
        live.json               the driver's latest view of the trials (for `sweeper status`)
        optuna.journal          Optuna JournalStorage (optuna-dashboard opens it)
        ray/tune/               Ray Tune's experiment state (Tuner.restore reads it)
        trials/t0007/           one trial: checkpoints/, evals.jsonl, attempts.jsonl, failure.json
        stop-request            written by `sweeper stop`; the driver stops gracefully when it sees it
        .lock                   held by the running driver (a second driver is refused)

Nothing here imports Ray or Optuna; processes are found through psutil (vendored by Ray) or /proc.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from sweeper.errors import UserError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Sweep names are directory names: no separators, no dots, so they cannot leave the root."""
ENV_HOME = "SWEEPER_HOME"


def sweeps_root(root: str | Path | None = None) -> Path:
    """--root, else $SWEEPER_HOME, else ./sweeps (absolute, so Ray workers can use it)."""
    chosen = root or os.environ.get(ENV_HOME) or Path.cwd() / "sweeps"
    return Path(chosen).expanduser().resolve()


def check_name(name: str) -> str:
    """The name if it is a safe directory name, else UserError."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise UserError(f"sweep name {name!r} must be 1-64 letters, digits, '-' or '_', starting with a "
                        "letter or digit")
    return name


@dataclass(frozen=True)
class SweepDir:
    """Paths of one sweep (see the module docstring)."""

    root: Path
    name: str

    @classmethod
    def at(cls, name: str, root: str | Path | None = None) -> "SweepDir":
        """The sweep `name` under the sweeps root; refuses names that would leave the root."""
        base = sweeps_root(root)
        check_name(name)
        sweep = cls(base, name)
        if sweep.path.resolve().parent != base:  # e.g. a symlink planted under the root
            raise UserError(f"sweep '{name}': {sweep.path} resolves outside {base}")
        return sweep

    @property
    def path(self) -> Path:
        return self.root / self.name

    def exists(self) -> bool:
        return (self.path / "state.json").is_file()

    def require(self) -> "SweepDir":
        """self, or UserError naming the sweeps that do exist."""
        if not self.exists():
            known = ", ".join(list_sweeps(self.root)) or "none"
            raise UserError(f"no sweep named '{self.name}' under {self.root} (sweeps there: {known})")
        return self

    spec_yaml = property(lambda self: self.path / "spec.yaml")
    spec_json = property(lambda self: self.path / "spec.json")
    state_file = property(lambda self: self.path / "state.json")
    live_file = property(lambda self: self.path / "live.json")
    journal = property(lambda self: self.path / "optuna.journal")
    ray_storage = property(lambda self: self.path / "ray")
    experiment = property(lambda self: self.path / "ray" / "tune")
    trials = property(lambda self: self.path / "trials")
    stop_file = property(lambda self: self.path / "stop-request")
    lock_file = property(lambda self: self.path / ".lock")

    def trial_dir(self, number: int) -> Path:
        return self.trials / f"t{number:04d}"

    # -- state ------------------------------------------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        return read_json(self.state_file) or {}

    def update_state(self, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into state.json (atomically). Only the lock holder calls this."""
        state = self.read_state()
        state.update(changes)
        write_json(self.state_file, state)
        return state

    # -- the driver lock --------------------------------------------------------------------------

    def lock(self) -> FileLock:
        """Take the driver lock now or raise UserError saying who holds it.

        The lock is an fcntl lock, so the kernel drops it when its holder dies, even by kill -9.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_file), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            d = self.read_state().get("driver") or {}
            who = f" by pid {d.get('pid')} on {d.get('host')} since {d.get('started')}" if d else ""
            raise UserError(f"sweep '{self.name}' is already running{who}; "
                            f"stop it with `sweeper stop {self.name}`") from None
        return lock

    def is_locked(self) -> bool:
        """True while some driver holds the lock."""
        if not self.lock_file.exists():
            return False
        probe = FileLock(str(self.lock_file), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        return False

    # -- stop requests ----------------------------------------------------------------------------

    def request_stop(self, reason: str = "requested by `sweeper stop`") -> None:
        write_json(self.stop_file, {"reason": reason, "at": now(), "by": os.getpid()})

    def stop_requested(self) -> str | None:
        """The reason of a pending stop request, or None."""
        data = read_json(self.stop_file)
        return None if data is None else str(data.get("reason") or "stop requested")

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)


def list_sweeps(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "state.json").is_file() and SAFE_NAME.fullmatch(p.name))


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def driver_record() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": now()}


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename), so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (writer killed mid-write) is skipped."""
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


# -- processes ------------------------------------------------------------------------------------

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


def pid_alive(record: dict[str, Any] | None) -> bool:
    if not record:
        return False
    ps = _psutil()
    try:
        p = ps.Process(int(record["pid"]))
        return "create_time" not in record or abs(p.create_time() - float(record["create_time"])) <= 0.01
    except (ps.Error, KeyError, ValueError):
        return False


# -- opening sweeps -------------------------------------------------------------------------------

def init_sweep(spec_path: str | Path, name: str | None, root: str | Path | None):
    """(SweepDir, SweepSpec, existed) for `sweeper run SPEC [--name N]`.

    A new sweep gets a copy of the spec file; an existing one must have been started from the same
    spec (same normalised hash), so a changed file never silently joins an old study.
    """
    import dataclasses

    from sweeper.spec import load_spec

    spec = load_spec(spec_path)
    spec = dataclasses.replace(spec, name=check_name(name or spec.name))
    sweep = SweepDir.at(spec.name, root)
    if sweep.exists():
        stored = sweep.read_state().get("spec_hash")
        if stored and stored != spec.spec_hash:
            raise UserError(f"sweep '{spec.name}' exists and was started from a different spec "
                            f"(hash {stored} vs {spec.spec_hash}); pick another --name, or "
                            f"`sweeper resume {spec.name}` to continue the old one")
        return sweep, spec, True
    sweep.path.mkdir(parents=True, exist_ok=True)
    sweep.spec_yaml.write_bytes(Path(spec_path).read_bytes())
    write_json(sweep.spec_json, spec.to_dict())
    write_json(sweep.state_file, {"name": spec.name, "status": "new", "spec_hash": spec.spec_hash,
                                  "created": now(), "sessions": 0})
    return sweep, spec, False


def open_sweep(name: str, root: str | Path | None):
    """(SweepDir, SweepSpec) of an existing sweep, read from its stored spec copy."""
    import dataclasses

    from sweeper.spec import load_spec

    sweep = SweepDir.at(name, root).require()
    spec = dataclasses.replace(load_spec(sweep.spec_yaml), name=name)
    return sweep, spec
