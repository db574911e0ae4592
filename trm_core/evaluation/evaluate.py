"""`evaluate(models, data, config)`: run the named modes, score them, replay a tau grid, compute diagnostics.

Cost is counted in chain-steps (ACT steps x chains actually run for puzzles), f-calls (H_cycles *
(L_cycles + 1) per chain-step) and wall time; relative cost is chain-steps over those of `full` (one chain,
every step); efficiency = puzzle acc / relative cost.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from trm_core.config import ConfigError, TrainConfig
from trm_core.device import pick_device
from trm_core.evaluation import diagnostics as diag
from trm_core.evaluation import modes as M
from trm_core.evaluation.chains import Chain, RunOptions, RunOutput
from trm_core.evaluation.config import DEFAULT_ROWS, EvalConfig, view_list
from trm_core.evaluation.table import EvalResults
from trm_core.evaluation.tau_curve import record_chains, tau_curve
from trm_core.evaluation.views import digit_perms, perm_family
from trm_core.precision import autocast_dtype, with_weights_for

Progress = Callable[[str, int, int], None]


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


def load_checkpoint(path: str | Path, device: torch.device | str):
    """(model, TrainConfig, state) of a checkpoint, with bf16 weights if it trained in pure bf16."""
    from trm_core.checkpoint import load_model

    model, cfg, state = load_model(Path(path), device)
    return with_weights_for(model, cfg.precision), cfg, state


def load_models(models_or_checkpoints, device: torch.device, precision: str = "auto") -> list:
    """TRM modules are moved to `device`; paths are loaded with their EMA weights. Precision 'bf16' gives
    every model bf16 weights (a cast copy of a module that has fp32 ones)."""
    items = models_or_checkpoints if isinstance(models_or_checkpoints, (list, tuple)) else [models_or_checkpoints]
    out = []
    for item in items:
        model = load_checkpoint(item, device)[0] if isinstance(item, (str, Path)) else item.to(device).eval()
        out.append(with_weights_for(model, precision))
    if not out:
        raise ConfigError("evaluate needs at least one model or checkpoint")
    return out


def evaluate(models_or_checkpoints, data, config: EvalConfig | TrainConfig | None = None, *,
             progress: Progress | None = None, **changes) -> EvalResults:
    """Evaluate one or more models (TRM modules or checkpoint paths) on `data` as `config` says.

    config: an EvalConfig; a TrainConfig (evaluate the way that training evaluates: EvalConfig.for_training);
    or None (the EvalConfig defaults). Keyword `changes` override its fields (`modes=("full", "tta")`).
    data: anything with `inputs` [N, 81] (1 blank, 2..10 digits), `labels` [N, 81] and optionally `ratings`
    [N] (a trm_core.data.PuzzleSet). halt_first / prob_avg run `chain_set(models, views, latents,
    n_digit_perms)`; full / halt use chain 0 of the first model; the TTA families run the first model's
    chain 0 on their views. `progress(name, done, total)` is called as puzzles finish.
    """
    if isinstance(config, TrainConfig):
        cfg = EvalConfig.for_training(config, **changes)
    else:
        cfg = (config or EvalConfig()).replace(**changes)
    dev = pick_device(cfg.device)
    models = load_models(models_or_checkpoints, dev, cfg.precision)
    inputs = torch.as_tensor(np.asarray(data.inputs)[:cfg.limit]).long()
    labels = torch.as_tensor(np.asarray(data.labels)[:cfg.limit]).long()
    ratings = getattr(data, "ratings", None)
    ratings = None if ratings is None else np.asarray(ratings)[:cfg.limit]
    n = inputs.shape[0]
    steps = cfg.max_steps or min(m.cfg.max_act_steps for m in models)
    chains = chain_set(models, cfg.views, cfg.latents, cfg.n_digit_perms)
    rows = cfg.batch_rows or DEFAULT_ROWS.get(dev.type, DEFAULT_ROWS["cuda"])
    opts = RunOptions(max_steps=steps, batch_rows=rows, tau=cfg.tau, seed=cfg.seed,
                      perms=digit_perms(max(cfg.n_digit_perms, cfg.tta_digit_perms), cfg.seed),
                      autocast=autocast_dtype(cfg.precision, dev), fresh_latents=cfg.z_l_init == "fresh",
                      sync_every=cfg.sync_every or (4 if dev.type == "cuda" else 1))
    tick = lambda name: (lambda done: progress(name, done, n)) if progress else None  # noqa: E731
    family_tick = (lambda name, done: progress(name, done, n)) if progress else None

    runs: dict[str, RunOutput] = {}
    for name in cfg.modes:
        if name == "full":
            runs[name] = M.full(models, inputs, opts, progress=tick(name))
        elif name == "halt":
            runs[name] = M.halt(models, inputs, opts, tau=cfg.tau, progress=tick(name))
        elif name == "halt_first":
            runs[name] = M.halt_first(models, inputs, chains, opts, tau=cfg.tau, fallback=cfg.fallback, progress=tick(name))
        elif name == "prob_avg":
            runs[name] = M.prob_avg(models, inputs, chains, opts, progress=tick(name))
        elif name == "tta":
            runs.update(M.tta_family(name, models, inputs, M.tta_chains(cfg.tta_digit_perms), opts, tau=cfg.tau,
                                     fallback=cfg.fallback, progress=family_tick))
        elif name == "tta_perm":
            perm_opts = dataclasses.replace(opts, perms=perm_family(cfg.tta_perms, cfg.seed))
            runs.update(M.tta_family(name, models, inputs, M.perm_chains(cfg.tta_perms), perm_opts, tau=cfg.tau,
                                     fallback=cfg.fallback, progress=family_tick))

    res = EvalResults(meta={"puzzles": n, "tau": cfg.tau, "max_steps": steps, "device": str(dev), "models": len(models),
                            "chains": [c.__dict__ for c in chains], "fallback": cfg.fallback, "modes": list(cfg.modes),
                            "precision": cfg.precision, "z_l_init": cfg.z_l_init, "batch_rows": rows,
                            "padding_rows": {name: run.padding_rows for name, run in runs.items()},
                            "cpu_s": {name: run.cpu_s for name, run in runs.items()}})
    inp, lab = inputs.numpy(), labels.numpy()
    for name, run in runs.items():
        res.rows.append(_row(name, run, lab, inp, steps, n))
        res.per_puzzle[name] = (run.preds == lab).all(1)
    if "halt" in runs:
        res.diagnostics["halting_histogram"] = diag.halting_histogram(runs["halt"].halt_step, steps)
        if ratings is not None and n > 1:
            res.diagnostics["halt_step_vs_rating_spearman"] = diag.halting_vs_difficulty(runs["halt"].halt_step, ratings)
    if cfg.taus is not None and n:
        _record_diagnostics(res, models, chains, inputs, labels, opts, cfg, tick)
    return res


def _row(name: str, run: RunOutput, labels: np.ndarray, inputs: np.ndarray, steps: int, n: int) -> dict:
    s = M.score(run.preds, labels, inputs)
    per = max(n, 1)
    rel = run.chain_steps / per / steps
    acc = float(s["correct"].mean()) if n else 0.0
    return {"method": name, "cell_acc": s["cell_acc"], "cell_acc_blank": s["cell_acc_blank"], "puzzle_acc": acc,
            "chain_steps_per_puzzle": run.chain_steps / per, "f_calls_per_puzzle": run.f_calls / per,
            "relative_cost": rel, "efficiency": acc / rel if rel else 0.0, "wall_s": run.wall_s,
            "puzzles_per_s": n / run.wall_s if run.wall_s else 0.0,
            "mean_halt_step": float(run.first_halt.mean()) if n else 0.0}


def _record_diagnostics(res: EvalResults, models, chains, inputs, labels, opts: RunOptions, cfg: EvalConfig, tick) -> None:
    """One all-steps pass over the chain set (plus chain 0 if absent) -> tau curve and record diagnostics."""
    rec_chains = list(chains) + ([] if M.BASE in chains else [M.BASE])
    cols = list(range(len(chains)))
    rec = record_chains(models, rec_chains, inputs, labels, opts, avg_cols=cols, progress=tick("record"))
    res.tau_curve = tau_curve(rec, cfg.taus, base_col=rec_chains.index(M.BASE), halt_first_cols=cols, fallback=cfg.fallback)
    last = rec.correct[:, -1, cols].numpy()
    d = res.diagnostics
    d["oracle_acc"] = diag.oracle_accuracy(last)
    seeds = diag.seed_columns(rec_chains)
    if len(seeds) > 1:
        d["seed_failure_jaccard"] = diag.failure_jaccard_matrix(rec.correct[:, -1, seeds].numpy()).tolist()
    d["q_calibration"] = diag.expected_calibration_error(torch.sigmoid(rec.q[:, :, cols]).numpy(), rec.correct[:, :, cols].numpy())
    d["winners"] = diag.winner_stats(rec.loss[:, :, cols].numpy())
