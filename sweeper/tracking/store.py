"""Where MLflow runs go: the store, resolved once per command and recorded in the sweep folder.

Store (first that is set wins): `--tracking-uri` > $MLFLOW_TRACKING_URI > the sweep file's `tracking.uri`
> the URI an earlier session of this sweep recorded (sweeps/<name>/mlflow/store.json, so a resume from
another directory finds its runs) > the embedded SQLite store `./mlruns/mlflow.db` with artifacts in
`./mlruns/artifacts/`. Paths become absolute URIs, since trials run in other directories and processes.
File stores (`./mlruns` as a folder, file://) are refused: MLflow >= 3.13 no longer supports them.
MLflow's telemetry is switched off for every process of a sweep (MLFLOW_DISABLE_TELEMETRY).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sweeper.errors import UserError
from sweeper.util.files import write_json

ENV_URI = "MLFLOW_TRACKING_URI"
DEFAULT_DIR = "mlruns"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@dataclass(frozen=True)
class Store:
    """A resolved tracking store."""

    uri: str
    """Absolute tracking URI."""
    artifact_root: str | None
    """Artifact root for new experiments (the embedded store only; a server chooses its own)."""
    source: str
    """Which setting chose it: cli, env, spec, recorded or default."""


def resolve_store(cli_uri: str | None = None, spec_uri: str | None = None, sweep_dir: Path | None = None,
                  cwd: Path | None = None) -> Store:
    """The store by the precedence in the module docstring; UserError for a file store."""
    recorded = None
    if sweep_dir is not None and (Path(sweep_dir) / "mlflow" / "store.json").is_file():
        recorded = json.loads((Path(sweep_dir) / "mlflow" / "store.json").read_text()).get("uri")
    for source, uri in (("cli", cli_uri), ("env", os.environ.get(ENV_URI)), ("spec", spec_uri), ("recorded", recorded)):
        if uri:
            uri = _absolute(uri)
            return Store(uri, _sqlite_artifacts(uri), source)
    root = (Path(cwd) if cwd else Path.cwd()).resolve() / DEFAULT_DIR
    return Store(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri(), "default")


def _sqlite_artifacts(uri: str) -> str | None:
    """Artifacts of a SQLite store go beside its database (trials run in other working directories,
    where MLflow's relative default ./mlartifacts would scatter them); servers keep their own."""
    path = uri.removeprefix("sqlite:///")
    if not uri.startswith("sqlite:///") or path == ":memory:":
        return None
    return (Path(path).parent / "artifacts").as_uri()


def _absolute(uri: str) -> str:
    uri = uri.strip()
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        return uri if path.startswith("/") or path == ":memory:" else f"sqlite:///{Path(path).resolve()}"
    if uri.startswith("file:") or "://" not in uri:
        raise UserError(f"tracking URI {uri!r} is a file store, which MLflow >= 3.13 refuses; use "
                        "sqlite:///path/to/mlflow.db or an MLflow server URL (http://host:port)")
    return uri


def record_store(store: Store, sweep_dir: Path) -> None:
    """Remember the store in the sweep folder, so a resume from elsewhere keeps using it."""
    folder = Path(sweep_dir) / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "store.json", {"uri": store.uri, "artifact_root": store.artifact_root})
