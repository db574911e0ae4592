"""sweeper: Ray Tune + Optuna + MLflow sweeps over the TRM trainer in trm_core."""
__version__ = "0.1.0"
