"""The TRM trainer with winner-take-all over K chains and deep supervision (one optimiser step per ACT step).

    step -> refill halted slots -> ACT step (B*K rows) -> per-chain loss -> winner -> backward -> clip
         -> Muon + AdamW step -> EMA -> carry -> halting -> expunge -> maybe log / evaluate + checkpoint

`train(cfg, sink, checkpoint_dir)` resumes from the newest intact checkpoint in `checkpoint_dir`; a run
stopped at step N and resumed produces the same metrics as an uninterrupted one (bitwise on CPU).
"""
from __future__ import annotations

import math
import random
import resource
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from trm_core import checkpoint
from trm_core.config import TrainConfig, to_dict
from trm_core.data import PuzzleSet, load_splits
from trm_core.device import pick_device  # noqa: F401 (also trm_core.trainer.pick_device)
from trm_core.model import TRM, make_tokens
from trm_core.optim import EMA, build_optimizers, lr_scale, set_lr
from trm_core.pool import Sampler, SlotPool
from trm_core.precision import autocast_dtype
from trm_core.sink import NullSink, Sink
from trm_core.wta import ExplorationDraws, carry, expunge_mask, expunge_remove, halt_decision, wta_objective

# What train() keeps of each step for the log window; the rest of train_step's record (logits, per-chain
# losses, ...) is dropped at once, so a window never holds B*K logits per step.
LOGGED = ("loss", "lm_loss", "halt_loss", "halt_rate", "act_steps_sum", "halted", "puzzle_acc", "grad_norm",
          "winner_counts", "expunged")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Run:
    """Everything a training run holds; `state_dict()` is the checkpoint."""

    def __init__(self, cfg: TrainConfig, device: torch.device, train_set: PuzzleSet, weights: dict | None = None):
        """`weights`: a model state_dict to start from instead of the seeded initialisation."""
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        init_gen = torch.Generator().manual_seed(cfg.seed)
        self.model = TRM(cfg.model, generator=init_gen).to(device)
        if weights is not None:
            self.model.load_state_dict(weights)
        if cfg.precision == "bf16":
            self.model = self.model.to(torch.bfloat16)
        o = cfg.optim
        self.ema = EMA(self.model, o.ema_decay, o.ema_start, o.ema_before_start) if o.ema_decay else None
        self.halt_draws = ExplorationDraws(self.gen, cfg.model.max_act_steps)  # a seam: tests feed recorded draws
        self.muon, self.adamw = build_optimizers(self.model, cfg.optim)
        self.inputs = torch.as_tensor(train_set.inputs, device=device)
        self.labels = torch.as_tensor(train_set.labels, device=device)
        self.sampler = Sampler.create(len(train_set), self.gen)
        dtype = next(self.model.parameters()).dtype
        self.pool = SlotPool(self.model, cfg.batch_size, device, dtype)
        self.step = 0
        self.chain_steps = 0
        if cfg.compile and device.type == "cuda":
            self.model.h_cycle = torch.compile(self.model.h_cycle)

    def state_dict(self) -> dict:
        return {
            "config": to_dict(self.cfg), "model": self.model.state_dict(),
            # None while evaluation uses the raw weights (optim.ema_before_start=hold), so every reader of a
            # checkpoint evaluates what the in-training evaluation did; the unused shadow needs no saving.
            "ema": self.ema.state_dict() if self.ema and self.ema.in_use(self.step) else None,
            "muon": self.muon.state_dict(), "adamw": self.adamw.state_dict(),
            "step": self.step, "chain_steps": self.chain_steps, "pool": self.pool.state_dict(),
            "sampler": {"order": self.sampler.order, "pos": self.sampler.pos, "epoch": self.sampler.epoch},
            "rng": {"gen": self.gen.get_state(), "torch": torch.get_rng_state(), "numpy": checkpoint.pack_numpy_rng(np.random.get_state()),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        if self.ema and s["ema"] is not None:
            self.ema.load_state_dict(s["ema"])
        self.muon.load_state_dict(s["muon"])
        self.adamw.load_state_dict(s["adamw"])
        self.step, self.chain_steps = s["step"], s["chain_steps"]
        self.pool.load_state_dict(s["pool"])
        self.sampler = Sampler(s["sampler"]["order"].to(self.device), s["sampler"]["pos"], s["sampler"]["epoch"])
        # RNG states are CPU byte tensors even for CUDA generators; a checkpoint loaded with
        # map_location=cuda has moved them, and set_state refuses them there
        self.gen.set_state(s["rng"]["gen"].cpu())
        torch.set_rng_state(s["rng"]["torch"].cpu())
        np.random.set_state(checkpoint.unpack_numpy_rng(s["rng"]["numpy"]))
        random.setstate(s["rng"]["python"])
        if s["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([state.cpu() for state in s["rng"]["cuda"]])

    @property
    def eval_model(self) -> TRM:
        return self.ema.model if self.ema and self.ema.in_use(self.step) else self.model


def train_step(run: Run) -> dict[str, torch.Tensor]:
    """One deep-supervision step of the slot pool. Returns device tensors (no host sync here): the LOGGED
    metrics and the step's record (logits, q, per-chain losses, winners, halting draws and decisions,
    expunged chains). The clipped gradients stay in the parameters' .grad until the next step."""
    cfg, model, pool = run.cfg, run.model, run.pool
    b, k = cfg.batch_size, cfg.model.k
    # ALGO LOGIC: load new puzzles where the previous ones halted
    pool.refill(model, run.sampler, run.inputs, run.labels, run.gen, cfg.data.augment, cfg.data.permute_blank,
                cfg.model.z_l_init == "fresh")
    set_lr((run.muon, run.adamw), lr_scale(run.step, cfg.steps, cfg.optim.warmup_steps, cfg.optim.lr_floor))
    x = model.embed(make_tokens(pool.inputs)).repeat_interleave(k, dim=0)
    # the record must not alias pool state that refill() later changes in place: hence the clones
    prev, alive = (pool.z_H, pool.z_L), pool.alive.clone()
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=autocast_dtype(cfg.precision, run.device) is not None):
        z_H, z_L, logits, q = model.act_step(x, pool.z_H.flatten(0, 1), pool.z_L.flatten(0, 1))
    obj = wta_objective(logits, q, pool.labels, k, cfg, alive)
    loss, win, losses = obj["loss"], obj["winner"], obj["chain_losses"].detach()

    run.muon.zero_grad(set_to_none=True)
    run.adamw.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf)
    run.muon.step()
    run.adamw.step()
    if run.ema:
        run.ema.update(model, run.step)

    # ALGO LOGIC: carry (detached); halting on the winner's q (all K chains halt together); expunging
    shape = (b, k, *pool.z_H.shape[2:])
    runner_up = losses.argsort(dim=1, stable=True)[:, min(1, k - 1)] if "top2" in (cfg.wta.carry_h, cfg.wta.carry_l) else None
    pool.z_H, pool.z_L = carry(z_H.view(shape), z_L.view(shape), win, cfg.wta.carry_h, cfg.wta.carry_l, pool.h0, pool.l0,
                               prev=prev, runner_up=runner_up)
    pool.steps += 1
    explore_u, min_random_steps = run.halt_draws(b)
    min_steps = (explore_u < cfg.halt.explore_prob) * min_random_steps
    halted = halt_decision(pool.steps, obj["q_winner"], min_steps, cfg.model.max_act_steps, cfg.halt.tau)
    pool.halted = halted.clone()
    expunged = _expunge(pool, losses, ~halted, cfg)
    if cfg.wta.z_l_noise > 0:
        pool.z_L = pool.z_L + cfg.wta.z_l_noise * torch.randn(pool.z_L.shape, generator=run.gen, device=run.device, dtype=pool.z_L.dtype)
    run.step += 1
    run.chain_steps += b * k
    correct = obj["correct"]
    return {"loss": loss.detach(), "lm_loss": obj["lm_loss"].detach(), "halt_loss": obj["halt_loss"].detach(),
            "halt_rate": halted.float().mean(), "act_steps_sum": (pool.steps * halted).sum(), "halted": halted.sum(),
            "puzzle_acc": correct.float().mean(), "grad_norm": grad_norm.detach(),
            "winner_counts": torch.bincount(win, minlength=k), "expunged": expunged.sum(),
            # the record
            "logits": logits.detach(), "q": q.detach(), "chain_losses": losses, "winner": win,
            "q_winner": obj["q_winner"].detach(), "halt_target": correct, "explore_u": explore_u,
            "min_random_steps": min_random_steps, "halted_mask": halted, "alive": alive, "expunged_mask": expunged}


def _expunge(pool: SlotPool, losses: torch.Tensor, running: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Apply wta.expunge to the running puzzles of the pool; returns the [B, K] mask of chains hit."""
    if pool.k == 1 or cfg.wta.expunge_cos is None:
        return torch.zeros_like(pool.alive)
    if cfg.wta.expunge == "remove":
        gone = expunge_remove(pool.z_L, losses, pool.alive, running, cfg.wta.expunge_cos)
        pool.alive = pool.alive & ~gone  # a new tensor: the step's record keeps the mask of its forward
        return gone
    dup = expunge_mask(pool.z_L, cfg.wta.expunge_cos) & running.unsqueeze(1)
    pool.z_L = torch.where(dup.view(*dup.shape, 1, 1), pool.l0, pool.z_L)
    return dup


def evaluate_full(model: TRM, data: PuzzleSet, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    """The in-training evaluation: trm_core.evaluation's `full` mode (one chain from L_init[0], every ACT
    step, answer from the last step) under the run's own evaluation rule (EvalConfig.for_training: eval tau,
    eval batch, training precision, eval latent init), so eval/* equals the final evaluation's full row.

    eval/mean_halt_step is the first step with sigmoid(q) > eval_tau (max steps if never), from the same pass.
    """
    from trm_core.evaluation import evaluate  # loaded at the first evaluation, not at import

    row = evaluate(model, data, cfg, modes=("full",), taus=None, device=str(device)).row("full")
    return {"eval/puzzle_acc": row["puzzle_acc"], "eval/cell_acc": row["cell_acc"],
            "eval/mean_halt_step": row["mean_halt_step"]}


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def train(cfg: TrainConfig, sink: Sink | None = None, checkpoint_dir: str | Path | None = None,
          should_stop: Callable[[], bool] | None = None) -> dict[str, float]:
    """Train (or resume) one run; report through `sink`; return the final metrics."""
    sink = sink or NullSink()
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_set, test_set = load_splits(cfg.data)
    run = Run(cfg, device, train_set)
    ckpt_root = Path(checkpoint_dir) if checkpoint_dir else None
    if ckpt_root and (state := checkpoint.load_latest(ckpt_root, map_location=device)):
        run.load_state_dict(state)
    final: dict[str, float] = {}
    window: list[dict] = []
    t0, t_window, cs_window = time.monotonic(), time.perf_counter(), run.chain_steps
    try:
        while run.step < cfg.steps:
            out = train_step(run)
            window.append({key: out[key] for key in LOGGED})
            if run.step % cfg.log_every == 0 or run.step == cfg.steps:
                metrics = _summarise(window, run, time.perf_counter() - t_window, run.chain_steps - cs_window)
                window, t_window, cs_window = [], time.perf_counter(), run.chain_steps
                sink.log(metrics, run.step)
                final.update(metrics)
            out_of_time = cfg.max_minutes is not None and time.monotonic() - t0 > 60 * cfg.max_minutes
            stop = out_of_time or (should_stop is not None and should_stop())
            if run.step % cfg.eval_every == 0 or run.step == cfg.steps or stop:
                if window:  # catch a divergence before it is checkpointed
                    _check_finite(window, run.step)
                final.update(_evaluate_and_checkpoint(run, test_set, sink, ckpt_root))
            if stop:
                final["stopped"] = 1.0
                break
    finally:
        sink.close()
    return final


def _evaluate_and_checkpoint(run: Run, test_set: PuzzleSet, sink: Sink, ckpt_root: Path | None) -> dict[str, float]:
    metrics = evaluate_full(run.eval_model, test_set, run.cfg, run.device)
    metrics["cost/chain_steps"] = float(run.chain_steps)
    path = checkpoint.save(ckpt_root, run.step, run.state_dict(), keep=run.cfg.keep_checkpoints) if ckpt_root else None
    sink.on_eval(metrics, run.step, path)
    return metrics


def _check_finite(window: list[dict], step: int) -> None:
    loss = torch.stack([w["loss"] for w in window])
    if not torch.isfinite(loss).all():
        raise TrainingDiverged(f"loss became {loss[~torch.isfinite(loss)][0].item()} by step {step}")


def _summarise(window: list[dict], run: Run, seconds: float, chain_steps: int) -> dict[str, float]:
    """Average a window of step outputs into namespaced metrics (one host sync per log)."""
    _check_finite(window, run.step)
    mean = lambda key: torch.stack([w[key].float() for w in window]).mean().item()  # noqa: E731
    halted = sum(w["halted"] for w in window).item()
    wins = sum(w["winner_counts"] for w in window).float()
    metrics = {
        "train/loss": mean("loss"), "train/lm_loss": mean("lm_loss"), "train/halt_loss": mean("halt_loss"),
        "train/halt_rate": mean("halt_rate"), "train/puzzle_acc": mean("puzzle_acc"),
        "train/grad_norm": mean("grad_norm"), "train/expunged_per_step": mean("expunged"),
        "train/lr_scale": lr_scale(run.step - 1, run.cfg.steps, run.cfg.optim.warmup_steps, run.cfg.optim.lr_floor),
        "cost/chain_steps": float(run.chain_steps),
        "perf/chain_steps_per_s": chain_steps / max(seconds, 1e-9),
        "perf/peak_mem_mb": _peak_mem_mb(run.device),
    }
    if halted:  # mean ACT steps of the puzzles that halted in this window
        metrics["train/mean_act_steps"] = sum(w["act_steps_sum"] for w in window).item() / halted
    for i, share in enumerate((wins / wins.sum()).tolist()):
        metrics[f"train/winner_share/{i}"] = share
    return metrics
