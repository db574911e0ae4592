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

Nothing here imports Ray, Optuna or the spec layer (opening a sweep from its YAML is the commands' job).
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from sweeper.errors import UserError
from sweeper.util.files import now, read_json, write_json
from sweeper.util.names import trial_name, trial_number  # noqa: F401 (the sweep folder's names)

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
        return self.trials / trial_name(number)

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
        """The reason of a pending stop request, or None. A request file without readable JSON is one a trial
        made on a full disk, with no room to write why (request files are otherwise replaced whole)."""
        data = read_json(self.stop_file)
        if data is None:
            return self.no_room_reason() if self.stop_file.exists() else None
        return str(data.get("reason") or "stop requested")

    def no_room_reason(self) -> str:
        """The stop reason of an empty request file (see stop_requested)."""
        return (f"a trial found the disk full or read-only, with no room to write more (its worker log says "
                f"which file); free space, then `sweeper resume {self.name}`")

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)


def list_sweeps(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "state.json").is_file() and SAFE_NAME.fullmatch(p.name))


def driver_record() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": now()}
