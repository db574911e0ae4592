"""MLflow tracking: a package that only logs what the sweep and its trials produced.

    store.py         which store (CLI > env > spec > recorded > ./mlruns/mlflow.db), recorded in the sweep folder
    client.py        Tracker: the few MlflowClient operations a sweep needs, run lookup by tags and id files
    trial_sink.py    the per-trial Sink (child run; uploads the final evaluation the trainable ran)
    driver_hooks.py  the driver's SweepHooks (parent, baseline and child run lifecycle; logs sweeper.results records)
    runs_view.py     what the MLflow UI opens on: the model-training view and a saved runs view per experiment
    single_run.py    one-off runs: `sweeper train --track`, `sweeper eval --track`

May import sweeper.hooks, sweeper.results and sweeper.util; never sweeper.sweep, sweeper.spec or commands.
"""
from __future__ import annotations

import sweeper.tracking.store  # noqa: F401 -- eager: it turns MLflow's telemetry off in this process

# A lazy face (as sweeper.sweep's): a trial worker unpickles MlflowSinkFactory from trial_sink.py, and
# importing this package must not pull the driver's modules (driver_hooks -> records -> pairing) into it.
_FACE = {"Tracker": "client", "open_existing": "client", "run_rows": "client", "MlflowHooks": "driver_hooks",
         "hooks_for": "driver_hooks", "Store": "store", "record_store": "store", "resolve_store": "store",
         "MlflowSinkFactory": "trial_sink"}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name not in _FACE:
        raise AttributeError(f"module 'sweeper.tracking' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"sweeper.tracking.{_FACE[name]}"), name)
