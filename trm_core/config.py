"""The trainer's configuration schema (typed, validated dataclasses) and its YAML presets.

Every field carries a docstring (the string literal under it); `sweeper presets` prints them as help.
The generic dict <-> dataclass engine (key checks, coercion, dotted keys) lives in trm_core.dictconfig;
its functions are re-exported here bound to TrainConfig, so callers import everything from this module.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trm_core import dictconfig
from trm_core.dictconfig import check, flatten, from_dict, parse_value, to_dict
from trm_core.errors import ConfigError

__all__ = ["ConfigError", "DataConfig", "HaltConfig", "ModelConfig", "OptimConfig", "TrainConfig", "WTAConfig",
           "flatten", "from_dict", "parse_value", "preset_dict", "preset_names", "resolve", "set_dotted", "to_dict"]

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(kw_only=True)
class ModelConfig:
    hidden: int = 512
    """Hidden size D of z_H, z_L and the embedding."""
    n_blocks: int = 2
    """Number of post-norm MLP-Mixer blocks in the core net f."""
    expansion: float = 4.0
    """SwiGLU expansion: hidden = round(expansion * 2/3 * c_in), rounded up to multiple_of."""
    multiple_of: int = 256
    """SwiGLU hidden widths are rounded up to a multiple of this (256 in the paper)."""
    swiglu: Literal["modified", "standard"] = "modified"
    """modified: down(sigmoid(g) * RMSNorm(g*v)) (the paper); standard: down(silu(g) * v)."""
    h_cycles: int = 6
    """H-cycles per ACT step (only the last one is differentiated)."""
    l_cycles: int = 9
    """z_L updates per H-cycle."""
    max_act_steps: int = 16
    """Maximum ACT steps (deep-supervision steps) per puzzle."""
    k: int = 1
    """Parallel z_L chains per puzzle (K=1 is the single-chain baseline)."""
    z_l_init: Literal["fixed", "fresh"] = "fixed"
    """fixed: chain k starts from L_init[k]; fresh: trunc-normal per position at each puzzle load."""
    svd_equalise: bool = True
    """Equalise L_init rows 1.. against the top-10 right singular vectors of block 0's channel up-proj."""
    rms_eps: float = 1e-5
    """RMSNorm epsilon (no gain anywhere)."""
    seq_len: int = 82
    """Sequence length: 1 HALT position + 81 cells."""
    vocab: int = 12
    """Vocabulary: 0 pad, 1 blank, 2..10 digits, 11 HALT."""

    def __post_init__(self) -> None:
        check(self.hidden >= 4, "model.hidden must be >= 4")
        check(self.k >= 1, "model.k must be >= 1")
        check(self.h_cycles >= 1 and self.l_cycles >= 1, "model.h_cycles and model.l_cycles must be >= 1")
        check(self.max_act_steps >= 1, "model.max_act_steps must be >= 1")
        check(self.multiple_of >= 1, "model.multiple_of must be >= 1")


@dataclass(kw_only=True)
class HaltConfig:
    tau: float = 0.5
    """Training halting threshold: halt when sigmoid(q) > tau."""
    explore_prob: float = 0.1
    """Probability that a puzzle gets a random minimum step in [2, max_act_steps] (exploration)."""
    loss_weight: float = 0.05
    """Weight of the BCE halting loss (target: whole grid right)."""

    def __post_init__(self) -> None:
        check(0.0 < self.tau < 1.0, "halt.tau must be in (0, 1)")
        check(0.0 <= self.explore_prob <= 1.0, "halt.explore_prob must be in [0, 1]")
        check(self.loss_weight >= 0.0, "halt.loss_weight must be >= 0")


@dataclass(kw_only=True)
class WTAConfig:
    carry_h: Literal["copy_top1", "all", "top1", "top2", "none", "top1_reset"] = "copy_top1"
    """z_H carry after each ACT step (same policies for carry_l). copy_top1: every chain gets the winner's
    output (paper z_H). all: each chain its own output (paper z_L). top1 / top2 (reference): the best one
    / two chains take their outputs, the others stay frozen at their state before the step. none
    (reference): no chain advances. top1_reset (ours, formerly `top1`): the winner takes its output, the
    others restart from their initial state. Not offered: the reference's copy_top2 (a random half gets
    the runner-up's output; it draws from the reference's global RNG, and with K=2 equals all)."""
    carry_l: Literal["all", "copy_top1", "top1", "top2", "none", "top1_reset"] = "all"
    """z_L carry; the same policies as carry_h (paper: all)."""
    expunge: Literal["reset", "remove"] = "reset"
    """What happens to a chain whose z_L has collapsed onto another (cosine > expunge_cos). reset (ours):
    after the carry, every chain that duplicates a lower-index chain restarts from L_init[k] and keeps
    competing (it may be the winner). remove (the reference): after halting, each still-running puzzle
    whose alive chains contain such a pair loses the pair member with the largest loss of this step
    (at most one per puzzle per step); it stops competing (loss +inf, no gradient) but is still computed
    until its slot takes a new puzzle, which restores all K chains."""
    expunge_cos: float | None = 0.95
    """Cosine of two chains' flattened z_L above which one of them is expunged (null = never)."""
    loss_dtype: Literal["fp32", "logits"] = "fp32"
    """Precision of the per-chain losses that pick the winner (and form the loss). fp32 (ours): near-ties
    are resolved by value. logits: in the logits' dtype, as the reference; with bf16 logits (pure bf16 or
    autocast) near-ties collapse to exact ties, which go to the lowest chain index."""
    z_l_noise: float = 0.0
    """Std of Gaussian noise added to z_L at each ACT step in training (0 = off)."""

    def __post_init__(self) -> None:
        check(self.expunge_cos is None or -1.0 < self.expunge_cos <= 1.0, "wta.expunge_cos must be in (-1, 1]")
        check(self.z_l_noise >= 0.0, "wta.z_l_noise must be >= 0")


@dataclass(kw_only=True)
class OptimConfig:
    muon_lr: float = 0.02
    """Muon learning rate for the mixer matrices."""
    muon_momentum: float = 0.6
    """Muon (Nesterov) momentum."""
    muon_ns_steps: int = 3
    """Newton-Schulz iterations in Muon."""
    muon_wd: float = 0.005
    """Muon weight decay."""
    adam_lr: float = 1e-4
    """AdamW learning rate for embedding, heads and biases."""
    adam_beta1: float = 0.9
    """AdamW beta1."""
    adam_beta2: float = 0.95
    """AdamW beta2."""
    adam_wd: float = 1.0
    """AdamW weight decay."""
    warmup_steps: int = 0
    """Linear warmup steps (the paper uses none)."""
    lr_floor: float = 0.0
    """Cosine decays to lr * lr_floor (0 = decay to zero)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 = off)."""
    label_smoothing: float = 0.2
    """Label smoothing of the cross-entropy."""
    loss: Literal["softmax", "stablemax"] = "softmax"
    """Cross-entropy flavour: softmax (the paper) or stablemax (original TRM)."""
    ema_decay: float | None = 0.9
    """EMA decay of the weights used for evaluation (null = off)."""
    ema_start: int = 5000
    """Update count from which the EMA averages; at update ema_start its shadow is set to the weights."""
    ema_before_start: Literal["track", "hold"] = "track"
    """The EMA before update ema_start. track (ours): the shadow copies the weights at every update and
    evaluation always uses it. hold (the reference): the shadow keeps the initial weights and evaluation
    uses the raw weights until then. Both give the same shadow, and evaluate the same weights, from then on."""

    def __post_init__(self) -> None:
        check(self.muon_lr > 0 and self.adam_lr > 0, "optim learning rates must be > 0")
        check(0.0 <= self.muon_momentum < 1.0, "optim.muon_momentum must be in [0, 1)")
        check(self.muon_ns_steps >= 1, "optim.muon_ns_steps must be >= 1")
        check(0.0 <= self.lr_floor <= 1.0, "optim.lr_floor must be in [0, 1]")
        check(0.0 <= self.label_smoothing < 1.0, "optim.label_smoothing must be in [0, 1)")
        check(self.ema_decay is None or 0.0 < self.ema_decay < 1.0, "optim.ema_decay must be in (0, 1)")
        check(self.ema_start >= 0, "optim.ema_start must be >= 0")


@dataclass(kw_only=True)
class DataConfig:
    source: Literal["generate", "csv", "builtin", "dir"] = "builtin"
    """generate: puzzles made by the solver (cached); csv: a Sudoku-Extreme CSV at `path`;
    builtin: the real puzzles shipped in the package; dir: a dataset built by `sweeper data build`."""
    path: str | None = None
    """CSV file (source=csv) or built dataset folder (source=dir)."""
    n_train: int = 1000
    """Training puzzles (before augmentation)."""
    n_test: int | None = 1000
    """Held-out puzzles, split by puzzle (never by augmented copy); null = all test puzzles of a built
    dataset (source=dir only: 38,400 in a Sudoku-Extreme build, as the reference evaluates)."""
    difficulty: Literal["easy", "medium", "hard"] = "easy"
    """For source=generate: easy = a solved grid with a number of blanks in [blanks_min, blanks_max]
    keeping a unique solution; medium/hard = minimal puzzles filtered by rating."""
    blanks_min: int = 20
    """Fewest blanks of an easy generated puzzle."""
    blanks_max: int = 35
    """Most blanks of an easy generated puzzle."""
    augment: bool = True
    """On-the-fly augmentation in training: one of 8 dihedral transforms and a digit relabelling."""
    permute_blank: bool = False
    """Reproduce the reference's bug of permuting tokens 1-9 (swaps blank with a digit). Faithfulness only."""
    seed: int = 0
    """Seed of data generation and of the train/test split."""
    cache_dir: str | None = None
    """Where generated data is cached (default: $SWEEPER_CACHE or ~/.cache/sweeper)."""

    def __post_init__(self) -> None:
        check(self.n_train >= 1 and (self.n_test is None or self.n_test >= 1), "data.n_train and data.n_test must be >= 1")
        check(self.n_test is not None or self.source == "dir", "data.n_test: null (all test puzzles) needs data.source=dir")
        check(0 <= self.blanks_min <= self.blanks_max <= 64, "data blanks must satisfy 0 <= blanks_min <= blanks_max <= 64")
        check(self.source not in ("csv", "dir") or bool(self.path), f"data.path is required for data.source={self.source}")


@dataclass(kw_only=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network and its recursion."""
    halt: HaltConfig = field(default_factory=HaltConfig)
    """Training halting (ACT)."""
    wta: WTAConfig = field(default_factory=WTAConfig)
    """Winner-take-all over K chains."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimisers, schedule, losses, EMA."""
    data: DataConfig = field(default_factory=DataConfig)
    """Where puzzles come from."""
    batch_size: int = 384
    """Puzzle slots B per step (each runs K chains, so B*K rows)."""
    steps: int = 8000
    """Optimiser steps (one per ACT step of the slot pool)."""
    eval_every: int = 500
    """Evaluate (and checkpoint) every this many steps, and at the end."""
    eval_puzzles: int | None = None
    """Evaluate on the first N held-out puzzles (null = all)."""
    eval_tau: float = 0.5
    """Halting threshold of the evaluations: eval/mean_halt_step, and halt / halt_first in the final one."""
    eval_batch_rows: int | None = None
    """Rows (puzzles x chains) per evaluation forward pass (null = 32 on CPU, where small chunks stay in
    cache, 1024 on CUDA; see trm_core.evaluation.config.DEFAULT_ROWS)."""
    eval_z_l_init: Literal["l_init", "fresh"] = "l_init"
    """z_L start in evaluation. l_init: L_init[k], even for model.z_l_init=fresh (the reference evaluates
    every model from L_init[0]); fresh: seeded noise for fresh-init models. In-training and final eval alike."""
    log_every: int = 50
    """Log train/* metrics every this many steps."""
    seed: int = 0
    """Seed of init, sampling, augmentation and exploration."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda, cuda:N."""
    precision: Literal["auto", "fp32", "bf16-autocast", "bf16"] = "auto"
    """auto: bf16 autocast on CUDA, fp32 on CPU; bf16: pure-bf16 parameters (the paper)."""
    compile: bool = False
    """torch.compile the H-cycle (CUDA only; ignored on CPU where it costs ~40 s and gains nothing)."""
    threads: int | None = None
    """torch CPU threads (null = leave torch's default)."""
    max_minutes: float | None = None
    """Stop training after this wall time (the run still evaluates and checkpoints)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (the older ones are the fallback if the newest is corrupt)."""

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size must be >= 1")
        check(self.steps >= 1, "steps must be >= 1")
        check(self.eval_every >= 1 and self.log_every >= 1, "eval_every and log_every must be >= 1")
        check(0.0 < self.eval_tau < 1.0, "eval_tau must be in (0, 1)")
        check(self.eval_batch_rows is None or self.eval_batch_rows >= 1, "eval_batch_rows must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1")


# ---------------------------------------------------------------------------------------------------
# presets and overrides

def set_dotted(d: dict, key: str, value: Any) -> None:
    """Set d['a']['b'] = value for the TrainConfig key 'a.b' (every part checked against the schema)."""
    dictconfig.set_dotted(TrainConfig, d, key, value)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def _preset(name: str) -> dict:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {dictconfig.short_repr(name)}{dictconfig.nearest_hint(name, preset_names())}")
    import yaml  # only here: trm_core imports (and trains from code) on a machine without PyYAML

    data = yaml.safe_load(path.read_text()) or {}
    base = data.pop("inherit", None)
    if not base:
        return data
    merged = copy.deepcopy(_preset(base))
    dictconfig.deep_update(merged, data)
    return merged


def preset_dict(name: str) -> dict:
    """The preset's nested dict with its `inherit:` chain merged (a fresh copy: callers may mutate it)."""
    return copy.deepcopy(_preset(name))


def preset_parent(name: str) -> str | None:
    """The preset that `name` inherits from (None for a root preset)."""
    import yaml

    return (yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text()) or {}).get("inherit")


def resolve(preset: str | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset (by name) + dotted overrides {'optim.muon_lr': 0.01} -> validated TrainConfig."""
    d = preset_dict(preset) if preset else {}
    for key, value in (overrides or {}).items():
        set_dotted(d, key, value)
    return from_dict(TrainConfig, d)
