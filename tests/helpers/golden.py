"""Shared set-up of the training-step golden tests (tests/data/trm_reference_step{,s}.pt).

The files and the tolerances are described in shared/golden/README.md sections 9 and 10. Everything
numerical here is trm_core's own code: a Run built from the reference's weights and puzzles, stepped by
trm_core.trainer.train_step; the helpers only feed the recorded halting draws and the puzzle order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trm_core.config import TrainConfig, from_dict
from trm_core.data import PuzzleSet
from trm_core.pool import Sampler
from trm_core.trainer import Run

DATA = Path(__file__).parents[1] / "data"
FORWARD = DATA / "trm_reference_golden.pt"
STEP = DATA / "trm_reference_step.pt"
STEPS = DATA / "trm_reference_steps.pt"

# The reference's training rules (what the faithful `paper` presets set). In float32 on CPU the winner-loss
# precision option changes nothing; it is set as the faithful presets set it.
REFERENCE_WTA = {"carry_h": "copy_top1", "carry_l": "all", "expunge": "remove", "expunge_cos": 0.95, "loss_dtype": "logits"}


def golden_config(file_cfg: dict, k: int, steps: int, ema: dict | None = None) -> TrainConfig:
    """The TrainConfig of a golden file's trainer (model of section 1, optimisers of section 9.1)."""
    m = file_cfg["model"]
    optim = {"label_smoothing": file_cfg["label_smoothing"], "grad_clip": file_cfg["grad_clip_max_norm"],
             "muon_lr": file_cfg["muon"]["lr"], "muon_wd": file_cfg["muon"]["weight_decay"],
             "muon_momentum": file_cfg["muon"]["momentum"], "muon_ns_steps": file_cfg["muon"]["ns_steps"],
             "adam_lr": file_cfg["adamw"]["lr"], "adam_wd": file_cfg["adamw"]["weight_decay"],
             "adam_beta1": file_cfg["adamw"]["betas"][0], "adam_beta2": file_cfg["adamw"]["betas"][1],
             "ema_decay": None, **(ema or {})}
    return from_dict(TrainConfig, {
        "model": {"hidden": m["hidden_size"], "multiple_of": m["swiglu_multiple_of"], "h_cycles": m["H_cycles"],
                  "l_cycles": m["L_cycles"], "n_blocks": m["num_layers"], "rms_eps": m["rmsnorm_eps"],
                  "max_act_steps": file_cfg["max_act_steps"], "k": k, "svd_equalise": False},
        "halt": {"explore_prob": file_cfg["halt_exploration_prob"], "loss_weight": file_cfg["q_halt_weight"]},
        "wta": REFERENCE_WTA, "optim": optim,
        "data": {"augment": False}, "batch_size": file_cfg["batch_puzzles"], "steps": steps,
        "device": "cpu", "precision": "fp32", "seed": 0})


def reference_weights(k: int, overrides: dict | None = None) -> dict:
    """The forward file's state_dict (L_init rows 0..k-1), with `overrides` {name: tensor} applied."""
    sd = {n: t.clone() for n, t in torch.load(FORWARD)["state_dict"].items() if n != "_dummy"}
    sd["L_init"] = sd["L_init"][:k].clone()
    for name, value in (overrides or {}).items():
        sd[name] = value.reshape(sd[name].shape).to(sd[name].dtype)
    return sd


def golden_run(cfg: TrainConfig, weights: dict, grids: torch.Tensor, labels: torch.Tensor) -> Run:
    """A Run on the golden puzzles, loaded in file order (the lowest empty slot takes the next puzzle)."""
    puzzles = PuzzleSet(inputs=grids.numpy().astype(np.uint8), labels=labels.numpy().astype(np.uint8),
                        ratings=np.full(len(grids), np.nan, dtype=np.float32))
    run = Run(cfg, torch.device("cpu"), puzzles, weights=weights)
    run.sampler = Sampler(torch.arange(len(grids)), 0, 0)
    return run


def feed_draws(run: Run, explore_u: torch.Tensor, min_random_steps: torch.Tensor) -> None:
    """Make the run's next halting draw the recorded one."""
    run.halt_draws = lambda b: (explore_u.clone(), min_random_steps.clone())


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(model.named_parameters())


def close(tol: dict, path: str, mine, ref) -> None:
    """Compare under the file's recommended tolerance for `path` (equal infinities count as equal)."""
    mine = torch.as_tensor(mine)
    ref = torch.as_tensor(ref)
    t = tol[path]
    exact = t["atol"] == 0 and t["rtol"] == 0
    if exact or ref.dtype == torch.bool or not ref.is_floating_point():
        assert torch.equal(mine.to(ref.dtype), ref), f"{path}: {mine.tolist()} != {ref.tolist()}"
        return
    torch.testing.assert_close(mine.to(ref.dtype), ref, atol=t["atol"], rtol=t["rtol"], equal_nan=True, msg=lambda m: f"{path}: {m}")


def close_muon_replay(tol: dict, path: str, mine: torch.Tensor, ref: torch.Tensor, adjusted_lr: float) -> None:
    """The optimiser-only check of a Muon matrix (README 9.5 step 3, 10.6 step 5), robust to the CPU.

    Newton-Schulz runs in bfloat16. The file was made on a CPU whose bf16 matmul rounds differently from
    CPUs without native bf16 (on an AVX2-only CPU up to 25 % of a matrix's entries moved differently, by
    at most 1.5 x 2^-9 x adjusted lr), so bit-equality holds only on hardware like the generating one.
    Checked instead: every entry within adjusted lr / 256 (the README's worst measured Muon noise), and
    at least half of the entries within the file's tight tolerance. Muon weight decay off leaves only
    about 1 % within that tolerance; a wrong lr adjustment or update formula moves entries by far more.
    """
    t = tol[path]
    diff = (mine - ref).abs()
    tight = diff <= t["atol"] + t["rtol"] * ref.abs()
    assert diff.max().item() <= adjusted_lr / 256 + t["atol"], f"{path}: max diff {diff.max().item():.3g}"
    assert tight.float().mean().item() >= 0.5, f"{path}: only {tight.float().mean().item():.1%} of entries within tolerance"
