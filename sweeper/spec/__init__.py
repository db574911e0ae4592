"""The spec layer: a sweep file (YAML, W&B or Hydra spellings) -> a validated, frozen `SweepSpec`.

Imports only sweeper.errors, sweeper.util and trm_core (for the trainer's keys and presets); never the
orchestration (sweeper.sweep), tracking or commands. Nothing in a sweep file is executed. A `Param`
tells the search what to sample (`Param.latent`) and what a sample means (`Param.value`).
"""
from sweeper.spec.distributions import Latent
from sweeper.spec.load import build_spec, load_spec
from sweeper.spec.param import Param
from sweeper.spec.schema import KNOWN_METRICS, METHODS
from sweeper.spec.sweepspec import Metric, Scheduler, SweepSpec, WarmStart
from sweeper.spec.trainer_keys import AUTO_PRESETS, EXPR_ALIASES, normalise_value

__all__ = ["AUTO_PRESETS", "EXPR_ALIASES", "KNOWN_METRICS", "METHODS", "Latent", "Metric", "Param", "Scheduler",
           "SweepSpec", "WarmStart", "build_spec", "load_spec", "normalise_value"]
