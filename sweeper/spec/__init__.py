"""The spec layer: a sweep file (YAML, W&B or Hydra spellings) -> a validated, frozen `SweepSpec`.

Imports only sweeper.errors and trm_core (for the trainer's keys and presets); never the orchestration
(sweeper.sweep), tracking or commands. Nothing in a sweep file is executed.
"""
from sweeper.spec.load import build_spec, load_spec
from sweeper.spec.schema import KNOWN_METRICS, METHODS, Metric, Scheduler, SweepSpec
from sweeper.spec.trainer_keys import AUTO_PRESETS, EXPR_ALIASES, normalise_value

__all__ = ["AUTO_PRESETS", "EXPR_ALIASES", "KNOWN_METRICS", "METHODS", "Metric", "Scheduler", "SweepSpec",
           "build_spec", "load_spec", "normalise_value"]
