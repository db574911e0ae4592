"""MLflow tracking: a package that only logs what the sweep and its trials produced.

    store.py         which store (CLI > env > spec > recorded > ./mlruns/mlflow.db), recorded in the sweep folder
    client.py        Tracker: the few MlflowClient operations a sweep needs, run lookup by tags and id files
    trial_sink.py    the per-trial Sink (child run; uploads the final evaluation the trainable ran)
    driver_hooks.py  the driver's SweepHooks (parent, baseline and child run lifecycle; logs sweeper.results records)
    runs_view.py     what the MLflow UI opens on: the model-training view and a saved runs view per experiment
    single_run.py    one-off runs: `sweeper train --track`, `sweeper eval --track`

May import sweeper.hooks, sweeper.results and sweeper.util; never sweeper.sweep, sweeper.spec or commands.
"""
from sweeper.tracking.client import Tracker, open_existing, run_rows
from sweeper.tracking.driver_hooks import MlflowHooks, hooks_for
from sweeper.tracking.store import Store, record_store, resolve_store
from sweeper.tracking.trial_sink import MlflowSinkFactory

__all__ = ["MlflowHooks", "MlflowSinkFactory", "Store", "Tracker", "hooks_for", "open_existing", "record_store",
           "resolve_store", "run_rows"]
