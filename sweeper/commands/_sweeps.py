"""Opening sweeps for the commands: a sweep file becomes a new (or existing) sweep folder."""
from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from sweeper.errors import UserError
from sweeper.spec import SweepSpec, load_spec
from sweeper.sweep.sweepdir import SweepDir, check_name
from sweeper.util.files import now, write_bytes, write_json


def init_sweep(spec_path: str | Path, name: str | None, root: str | Path | None) -> tuple[SweepDir, SweepSpec, bool]:
    """(SweepDir, SweepSpec, existed) for `sweeper run SPEC [--name N]`.

    A new sweep gets a copy of the spec file and a random sweep id (MLflow keeps two sweeps of one name
    apart by it); an existing one must have been started from the same spec (same normalised hash), so a
    changed file never silently joins an old study.
    """
    spec = load_spec(spec_path)
    spec = dataclasses.replace(spec, name=check_name(name or spec.name))
    sweep = SweepDir.at(spec.name, root)
    lock = sweep.lock()  # two first runs at once: one creates, the other finds it (or is refused)
    try:
        if sweep.exists():
            stored = sweep.read_state().get("spec_hash")
            if stored and stored != spec.spec_hash:
                raise UserError(f"sweep '{spec.name}' exists and was started from a different spec "
                                f"(hash {stored} vs {spec.spec_hash}); pick another --name, or "
                                f"`sweeper resume {spec.name}` to continue the old one")
            return sweep, spec, True
        write_json(sweep.spec_json, spec.to_dict())
        write_bytes(sweep.spec_yaml, Path(spec_path).read_bytes())
        write_json(sweep.state_file, {"name": spec.name, "status": "new", "spec_hash": spec.spec_hash,
                                      "created": now(), "sessions": 0, "sweep_id": uuid.uuid4().hex})
        return sweep, spec, False
    finally:
        lock.release()


def open_sweep(name: str, root: str | Path | None) -> tuple[SweepDir, SweepSpec]:
    """(SweepDir, SweepSpec) of an existing sweep, read from its stored spec copy."""
    sweep = SweepDir.at(name, root).require()
    spec = dataclasses.replace(load_spec(sweep.spec_yaml), name=name)
    return sweep, spec


def sweep_id(sweep: SweepDir) -> str:
    """The sweep's id (made now for a sweep from before ids existed)."""
    state = sweep.read_state()
    if not state.get("sweep_id"):
        state = sweep.update_state(sweep_id=uuid.uuid4().hex)
    return state["sweep_id"]
