"""Inference and evaluation: every mode compared on accuracy and on the cost it really paid.

`evaluate(models, data, modes=[...])` runs the named modes (see `MODES`), scores them, replays a grid of
halting thresholds from one recorded pass, and computes the diagnostics. Cost is counted in chain-steps
(ACT steps x chains actually run), f-calls (H_cycles * (L_cycles + 1) per chain-step) and wall time;
relative cost is chain-steps over those of `full` (one chain, every step); efficiency = puzzle acc / cost.
"""
from __future__ import annotations

import difflib
import itertools
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from trm_core.config import ConfigError
from trm_core.evaluation import diagnostics as diag
from trm_core.evaluation import modes as M
from trm_core.evaluation.runner import Chain, RunOutput, digit_perms
from trm_core.evaluation.table import EvalResults
from trm_core.evaluation.tau_curve import DEFAULT_TAUS, record_chains, tau_curve

__all__ = ["Chain", "EvalResults", "MODES", "evaluate", "chain_set", "view_list"]

MODES = ("full", "halt", "halt_first", "prob_avg", "tta")
"""Mode names; `tta` adds two rows, `tta` (probability averaging) and `tta_vote` (majority vote)."""

VIEW_SETS = {"identity": (0,), "rot4": (0, 1, 2, 3), "dihedral8": tuple(range(8))}
"""Named dihedral view sets (t indices of trm_core.augment.dihedral; t = 0..3 are the rotations)."""


def check_modes(names: Sequence[str]) -> list[str]:
    """Validate mode names; an unknown one is a ConfigError naming the nearest valid mode."""
    for name in names:
        if name not in MODES:
            near = difflib.get_close_matches(name, MODES, n=1, cutoff=0.4)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (valid: {', '.join(MODES)})"
            raise ConfigError(f"unknown evaluation mode '{name}'{hint}")
    return list(names)


def view_list(views: str | Sequence[int]) -> list[int]:
    """'identity' | 'rot4' | 'dihedral8' | [t, ...] -> dihedral indices."""
    if isinstance(views, str):
        if views not in VIEW_SETS:
            near = difflib.get_close_matches(views, VIEW_SETS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (valid: {', '.join(VIEW_SETS)})"
            raise ConfigError(f"unknown view set '{views}'{hint}")
        return list(VIEW_SETS[views])
    out = [int(t) for t in views]
    if not out or any(not 0 <= t < 8 for t in out):
        raise ConfigError(f"views must be dihedral indices in 0..7, got {list(views)}")
    return out


def chain_set(models: Sequence, views: str | Sequence[int] = "identity", latents: str | Sequence[int] = "all",
              n_digit_perms: int = 0) -> list[Chain]:
    """The product models x latent inits x dihedral views (x digit permutations) used by halt_first/prob_avg.

    latents: "all" (every row of each model's L_init), "first" (row 0) or explicit rows. The paper's 12
    chains are 3 seeds x 4 rotations: three checkpoints, views="rot4", latents="first".
    """
    chains = []
    perms = list(range(n_digit_perms)) if n_digit_perms > 0 else [-1]
    for m, model in enumerate(models):
        k = model.cfg.k
        rows = range(k) if latents == "all" else [0] if latents == "first" else list(latents)
        if any(not 0 <= r < k for r in rows):
            raise ConfigError(f"latent rows {list(rows)} out of range for a model with k={k}")
        for r, t, p in itertools.product(rows, view_list(views), perms):
            chains.append(Chain(model=m, latent=r, dihedral=t, perm=p))
    return chains


def load_models(models_or_checkpoints, device: torch.device) -> list:
    """TRM modules are moved to `device`; paths are loaded with checkpoint.load_model (EMA weights)."""
    from trm_core.checkpoint import load_model

    items = models_or_checkpoints if isinstance(models_or_checkpoints, (list, tuple)) else [models_or_checkpoints]
    out = []
    for item in items:
        if isinstance(item, (str, Path)):
            out.append(load_model(Path(item), device)[0])
        else:
            out.append(item.to(device).eval())
    if not out:
        raise ConfigError("evaluate needs at least one model or checkpoint")
    return out


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def evaluate(models_or_checkpoints, data, modes: Sequence[str] = ("full",), *, tau: float = 0.5,
             batch_size: int = 256, device: str | torch.device | None = "auto", views: str | Sequence[int] = "identity",
             latents: str | Sequence[int] = "all", n_digit_perms: int = 0, tta_digit_perms: int = 0,
             fallback: str = "prob_avg", max_steps: int | None = None, taus: Sequence[float] | None = DEFAULT_TAUS,
             limit: int | None = None, progress: Callable[[str, int, int], None] | None = None,
             seed: int = 0) -> EvalResults:
    """Evaluate one or more models (TRM modules or checkpoint paths) on `data` in the named `modes`.

    data: anything with `inputs` [N, 81] (1 blank, 2..10 digits), `labels` [N, 81] and optionally `ratings`
    [N] (a trm_core.data.PuzzleSet). halt_first / prob_avg run the chain set `chain_set(models, views,
    latents, n_digit_perms)`; full / halt use chain 0 of the first model; tta runs the first model's chain 0
    on the 8 dihedral views (x tta_digit_perms relabellings). `taus` (None = skip) adds the tau curve and
    the record-based diagnostics from one extra all-steps pass over the chain set. `progress(mode, done,
    total)` is called as puzzles finish. max_steps defaults to the smallest max_act_steps of the models.
    """
    names = check_modes(modes)
    if fallback not in M.FALLBACKS:
        raise ConfigError(f"unknown fallback '{fallback}' (valid: {', '.join(M.FALLBACKS)})")
    if not 0.0 < tau < 1.0:
        raise ConfigError("tau must be in (0, 1)")
    dev = resolve_device(device)
    models = load_models(models_or_checkpoints, dev)
    inputs = torch.as_tensor(np.asarray(data.inputs)[:limit]).long()
    labels = torch.as_tensor(np.asarray(data.labels)[:limit]).long()
    ratings = getattr(data, "ratings", None)
    ratings = None if ratings is None else np.asarray(ratings)[:limit]
    n = inputs.shape[0]
    steps = max_steps or min(m.cfg.max_act_steps for m in models)
    chains = chain_set(models, views, latents, n_digit_perms)
    perms = digit_perms(max(n_digit_perms, tta_digit_perms, 0), seed)
    common = dict(max_steps=steps, batch_size=batch_size)
    tick = lambda name: (lambda done: progress(name, done, n)) if progress else None

    runs: dict[str, RunOutput] = {}
    for name in names:
        if name == "full":
            runs["full"] = M.full(models, inputs, **common, progress=tick(name))
        elif name == "halt":
            runs["halt"] = M.halt(models, inputs, tau=tau, **common, progress=tick(name))
        elif name == "halt_first":
            runs["halt_first"] = M.halt_first(models, inputs, chains, tau=tau, fallback=fallback, perms=perms,
                                              **common, progress=tick(name))
        elif name == "prob_avg":
            runs["prob_avg"] = M.prob_avg(models, inputs, chains, perms=perms, **common, progress=tick(name))
        elif name == "tta":
            runs["tta"], runs["tta_vote"] = M.tta(models, inputs, n_digit_perms=tta_digit_perms, perms=perms,
                                                  **common, progress=tick(name))

    res = EvalResults(meta={"puzzles": n, "tau": tau, "max_steps": steps, "device": str(dev), "models": len(models),
                            "chains": [c.__dict__ for c in chains], "fallback": fallback, "modes": names})
    inp, lab = inputs.numpy(), labels.numpy()
    for name, run in runs.items():
        res.rows.append(_row(name, run, lab, inp, steps, n))
        res.per_puzzle[name] = (run.preds == lab).all(1)
    if "halt" in runs:
        res.diagnostics["halting_histogram"] = diag.halting_histogram(runs["halt"].halt_step, steps)
        if ratings is not None and n > 1:
            res.diagnostics["halt_step_vs_rating_spearman"] = diag.halting_vs_difficulty(runs["halt"].halt_step, ratings)
    if taus is not None and n:
        _record_diagnostics(res, models, chains, inputs, labels, perms, taus, fallback, tick, **common)
    return res


def _row(name: str, run: RunOutput, labels: np.ndarray, inputs: np.ndarray, steps: int, n: int) -> dict:
    s = M.score(run.preds, labels, inputs)
    per = max(n, 1)
    rel = run.chain_steps / per / steps
    acc = float(s["correct"].mean()) if n else 0.0
    return {"method": name, "cell_acc": s["cell_acc"], "cell_acc_blank": s["cell_acc_blank"], "puzzle_acc": acc,
            "chain_steps_per_puzzle": run.chain_steps / per, "f_calls_per_puzzle": run.f_calls / per,
            "relative_cost": rel, "efficiency": acc / rel if rel else 0.0, "wall_s": run.wall_s,
            "puzzles_per_s": n / run.wall_s if run.wall_s else 0.0}


def _record_diagnostics(res: EvalResults, models, chains, inputs, labels, perms, taus, fallback, tick, **common) -> None:
    """One all-steps pass over the chain set (plus chain 0 if absent) -> tau curve and record diagnostics."""
    rec_chains = list(chains) + ([] if M.BASE in chains else [M.BASE])
    cols = list(range(len(chains)))
    rec = record_chains(models, rec_chains, inputs, labels, avg_cols=cols, perms=perms, progress=tick("record"), **common)
    res.tau_curve = tau_curve(rec, taus, base_col=rec_chains.index(M.BASE), halt_first_cols=cols, fallback=fallback)
    last = rec.correct[:, -1, cols].numpy()
    d = res.diagnostics
    d["oracle_acc"] = diag.oracle_accuracy(last)
    seeds = diag.seed_columns(rec_chains)
    if len(seeds) > 1:
        d["seed_failure_jaccard"] = diag.failure_jaccard_matrix(rec.correct[:, -1, seeds].numpy()).tolist()
    d["q_calibration"] = diag.expected_calibration_error(torch.sigmoid(rec.q[:, :, cols]).numpy(), rec.correct[:, :, cols].numpy())
    d["winners"] = diag.winner_stats(rec.loss[:, :, cols].numpy())
