"""EvalConfig: every option of `evaluate`, validated; and the names of modes, rows, views and fallbacks."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Sequence

from trm_core.config import ConfigError, TrainConfig
from trm_core.dictconfig import nearest_hint
from trm_core.precision import PRECISIONS

MODES = ("full", "halt", "halt_first", "prob_avg", "tta", "tta_perm")
"""Mode names (what to run). Most modes give one row named like the mode; the TTA families give three."""

ROWS = {
    "tta": ("tta", "tta_vote", "tta_halt_first"),
    "tta_perm": ("tta_perm", "tta_perm_vote", "tta_perm_halt_first"),
}
"""Rows of the TTA families. `tta` runs chain 0 on the 8 dihedral views (x tta_digit_perms relabellings),
`tta_perm` on `tta_perms` digit relabellings (identity first; the paper's "8 digit permutations"). Each is
scored three ways, because the paper does not say how its TTA-8 (97.3 %) combines views: probability
averaging (the row named like the mode; one all-steps run), per-cell majority vote (the same run, the same
cost) and halt-first over the views (its own run, stopping at the first view that halts)."""

FALLBACKS = ("chain0", "prob_avg", "max_q")
"""halt-first answer when no chain halts by the last step. chain0 (default): chain 0's last-step answer,
as the reference's WTA evaluation does (`_evaluate_act_haltfast_wta`), so halt-first numbers compare with
the paper's. prob_avg: the argmax of the chains' averaged probabilities (the chains have all run to the
end, so it costs nothing and is usually the stronger guess; this project's earlier default). max_q: the
chain with the largest q."""

VIEW_SETS = {"identity": (0,), "rot4": (0, 1, 2, 3), "dihedral8": tuple(range(8))}
"""Named dihedral view sets (t indices of trm_core.augment.dihedral; t = 0..3 are the rotations)."""

DEFAULT_TAUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

DEFAULT_ROWS = {"cpu": 32, "cuda": 1024}
"""Rows per forward pass when batch_rows is null. CPU: small chunks stay in cache; at cpu-tiny's shape 32
rows ran 1.3x faster per row than 128 (benchmarks/bench_eval.py). CUDA (and any other device): about a
paper-preset training step's rows (192 x 4), with no activations kept for a backward pass."""


def _fail(msg: str) -> None:
    raise ConfigError(msg)


def check_modes(names: Sequence[str]) -> list[str]:
    """Validate mode names; an unknown one is a ConfigError naming the nearest valid mode."""
    for name in names:
        if name in MODES:
            continue
        owner = next((m for m, rows in ROWS.items() if name in rows), None)
        if owner:
            _fail(f"unknown evaluation mode '{name}': it is a row of mode '{owner}' (did you mean '{owner}'?)")
        _fail(f"unknown evaluation mode '{name}'{nearest_hint(name, list(MODES))}")
    return list(names)


def view_list(views: str | Sequence[int]) -> list[int]:
    """'identity' | 'rot4' | 'dihedral8' | [t, ...] -> dihedral indices."""
    if isinstance(views, str):
        if views not in VIEW_SETS:
            _fail(f"unknown view set '{views}'{nearest_hint(views, list(VIEW_SETS))}")
        return list(VIEW_SETS[views])
    out = [int(t) for t in views]
    if not out or any(not 0 <= t < 8 for t in out):
        _fail(f"views must be dihedral indices in 0..7, got {list(views)}")
    return out


@dataclass(kw_only=True, frozen=True)
class EvalConfig:
    modes: tuple[str, ...] = ("full",)
    """Modes to run, in order: full, halt, halt_first, prob_avg, tta, tta_perm."""
    tau: float = 0.5
    """Halting threshold: a chain halts when sigmoid(q) > tau (the reference's q > 0 is tau = 0.5)."""
    fallback: Literal["chain0", "prob_avg", "max_q"] = "chain0"
    """halt-first answer when no chain halts by the last step (see FALLBACKS; chain0 is the reference's)."""
    batch_rows: int | None = None
    """Rows per forward pass: a mode with C chains per puzzle keeps batch_rows // C puzzle slots (at least
    one), each refilled with the next puzzle as soon as it is answered. null = DEFAULT_ROWS of the device."""
    device: str = "auto"
    """auto (cuda if available), cpu, cuda, cuda:N."""
    precision: Literal["auto", "fp32", "bf16-autocast", "bf16"] = "auto"
    """The training precision (TrainConfig.precision): auto = bf16 autocast on CUDA, fp32 on CPU."""
    z_l_init: Literal["l_init", "fresh"] = "l_init"
    """z_L start of chain k. l_init (default, the reference's): L_init[k] for every model, even one trained
    with model.z_l_init=fresh (the reference evaluates all models from H_init[0], L_init[0]). fresh:
    trunc-normal noise (seeded by `seed`) for models trained with fresh init; fixed-init models keep L_init."""
    views: str | tuple[int, ...] = "identity"
    """Dihedral views pooled by halt_first / prob_avg: identity, rot4, dihedral8 or indices 0..7."""
    latents: str | tuple[int, ...] = "all"
    """L_init rows used as chains by halt_first / prob_avg: all, first, or row indices."""
    n_digit_perms: int = 0
    """Digit relabellings per view for halt_first / prob_avg (0 = none)."""
    tta_digit_perms: int = 0
    """Digit relabellings per dihedral view in the `tta` family (0 = the 8 views only)."""
    tta_perms: int = 8
    """Views of the `tta_perm` family: the identity and tta_perms - 1 random digit relabellings."""
    max_steps: int | None = None
    """ACT steps per chain (null = the smallest max_act_steps of the models)."""
    taus: tuple[float, ...] | None = DEFAULT_TAUS
    """Thresholds of the tau curve, replayed from one extra all-steps pass (null = skip that pass)."""
    limit: int | None = None
    """Evaluate only the first N puzzles (null = all)."""
    seed: int = 0
    """Seed of the random digit relabellings and of fresh z_L noise."""
    sync_every: int | None = None
    """Read the slot pool on the host every this many ACT steps (progress, stop, dropping empty slots).
    null = 1 on CPU, where reading is free and empty slots then never run, and 4 on CUDA, where each read
    is a device sync; slots that empty between reads run as padding, counted apart from the cost."""

    def __post_init__(self) -> None:
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        fix("modes", tuple(check_modes(list(self.modes))))
        if not isinstance(self.views, str):
            fix("views", tuple(self.views))
        view_list(self.views)
        if not isinstance(self.latents, str):
            fix("latents", tuple(int(r) for r in self.latents))
        elif self.latents not in ("all", "first"):
            _fail(f"latents must be all, first or row indices, got '{self.latents}'")
        if self.taus is not None:
            fix("taus", tuple(float(t) for t in self.taus))
        checks = [
            (0.0 < self.tau < 1.0, "tau must be in (0, 1)"),
            (self.fallback in FALLBACKS, f"unknown fallback '{self.fallback}' (valid: {', '.join(FALLBACKS)})"),
            (self.precision in PRECISIONS, f"unknown precision '{self.precision}' (valid: {', '.join(PRECISIONS)})"),
            (self.z_l_init in ("l_init", "fresh"), f"z_l_init must be l_init or fresh, got '{self.z_l_init}'"),
            (self.batch_rows is None or self.batch_rows >= 1, "batch_rows must be >= 1"),
            (self.n_digit_perms >= 0 and self.tta_digit_perms >= 0, "digit permutation counts must be >= 0"),
            (self.tta_perms >= 1, "tta_perms must be >= 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
            (self.limit is None or self.limit >= 1, "limit must be >= 1"),
            (self.sync_every is None or self.sync_every >= 1, "sync_every must be >= 1"),
            (self.taus is None or all(0.0 < t < 1.0 for t in self.taus), "taus must be in (0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                _fail(msg)

    def replace(self, **changes) -> "EvalConfig":
        """A copy with `changes`; an unknown option is a ConfigError naming the nearest one."""
        names = [f.name for f in dataclasses.fields(self)]
        for key in changes:
            if key not in names:
                _fail(f"unknown evaluation option '{key}'{nearest_hint(key, names)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_training(cls, cfg: TrainConfig, **changes) -> "EvalConfig":
        """How a training run evaluates: its eval tau, eval rows, precision, latent rule, puzzle limit, seed.

        The in-training evaluation (eval/*) and the end-of-trial evaluation (final/*) both start from this,
        so the same checkpoint scores the same in both.
        """
        base = cls(tau=cfg.eval_tau, batch_rows=cfg.eval_batch_rows, device=cfg.device, precision=cfg.precision,
                   z_l_init=cfg.eval_z_l_init, limit=cfg.eval_puzzles, seed=cfg.seed)
        return base.replace(**changes)
