"""Which trials are baseline trials: those whose resolved config equals a baseline configuration.

Used by the runner (the scheduler never stops a baseline trial early, since every trial is compared
against the baseline's TTA evaluation) and by tracking (the baseline run). No Ray, Optuna or MLflow.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

MACHINE_KEYS = ("seed", "device", "threads", "data.cache_dir")
"""Config keys that do not make a configuration different (the seed is a sweep axis of its own)."""


def config_key(config: Mapping[str, Any]) -> str:
    """12-hex-digit hash of a resolved config without MACHINE_KEYS: equal for the seeds of one configuration."""
    from trm_core.config import flatten

    flat = {k: v for k, v in flatten(dict(config)).items() if k not in MACHINE_KEYS}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_label(config: Mapping[str, Any], swept: tuple[str, ...]) -> str:
    """'model.k=2 optim.adam_lr=0.001': the swept keys' values in this resolved config."""
    from trm_core.config import flatten

    flat = flatten(dict(config))
    return " ".join(f"{k}={flat.get(k)}" for k in swept) or "base"


def baseline_keys(spec, preset: str) -> set[str]:
    """config_key of each baseline configuration (the base config when `baseline:` is null or empty;
    with an empty list the grid is expected to contain it, as search_spaces/smoke.yaml says)."""
    from sweeper import space
    from trm_core.config import to_dict

    entries = spec.baseline if spec.baseline else ({},)
    return {config_key(to_dict(space.trial_config(spec, dict(e), spec.seeds[0], preset))) for e in entries}
