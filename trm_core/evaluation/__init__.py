"""Inference and evaluation: every mode compared on accuracy and on the cost it really paid.

`evaluate(models, data, EvalConfig(modes=(...)))` (evaluate.py) runs the named modes (modes.py, one function
each) on the chain runner (chains.py: full puzzle slots, exact cost counters), scores them (table.py),
replays a grid of halting thresholds from one recorded pass (tau_curve.py) and computes the diagnostics
(diagnostics.py). `evaluate(model, data, train_cfg)` evaluates the way that training run evaluates.
"""
from trm_core.device import pick_device as resolve_device
from trm_core.evaluation.chains import Chain, RunOptions, RunOutput
from trm_core.evaluation.config import DEFAULT_TAUS, FALLBACKS, MODES, ROWS, VIEW_SETS, EvalConfig, check_modes, view_list
from trm_core.evaluation.evaluate import chain_set, evaluate, load_checkpoint, load_models
from trm_core.evaluation.table import EvalResults

__all__ = ["Chain", "DEFAULT_TAUS", "EvalConfig", "EvalResults", "FALLBACKS", "MODES", "ROWS", "RunOptions", "RunOutput",
           "VIEW_SETS", "chain_set", "check_modes", "evaluate", "load_checkpoint", "load_models", "resolve_device",
           "view_list"]
