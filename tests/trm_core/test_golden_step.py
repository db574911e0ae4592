"""One training step of trm_core equals the reference's (tests/data/trm_reference_step.pt, README section 9).

`k2`: K=2 winner-take-all with the paper's carry; `k1`: the single-chain baseline. Both start from the
forward file's weights and puzzles with fresh optimisers; the halting draws are the recorded ones.
"""
from __future__ import annotations

import pytest
import torch

from helpers.golden import (
    FORWARD,
    STEP,
    close,
    close_muon_replay,
    feed_draws,
    golden_config,
    golden_run,
    params,
    reference_weights,
)
from trm_core.model import TRM
from trm_core.optim import build_optimizers, lr_scale, set_lr
from trm_core.trainer import train_step
from trm_core.wta import pair_cosines


@pytest.fixture(scope="module")
def S():
    return torch.load(STEP)


def setup(S, name):
    k = S["config"]["K"][name]
    cfg = golden_config(S["config"], k, S["config"]["total_train_steps"])
    return k, cfg, reference_weights(k)


@pytest.fixture(scope="module", params=["k2", "k1"])
def stepped(request, S):
    """(name, K, run, step record, gradients before and after clipping) after one train_step."""
    name = request.param
    k, cfg, weights = setup(S, name)
    run = golden_run(cfg, weights, S["grids"], S["labels"])
    G = S[name]
    feed_draws(run, G["explore_u"], G["min_random_steps"])
    out = train_step(run)
    clipped = {n: p.grad.clone() for n, p in params(run.model).items()}
    coef = torch.clamp(cfg.optim.grad_clip / (out["grad_norm"] + 1e-6), max=1.0)  # torch's clip rule
    return name, k, run, out, clipped, coef


def test_forward_losses_winner_and_halting_loss(S, stepped):
    name, k, run, out, _, _ = stepped
    G, tol = S[name], S["config"]["recommended_tolerance"]
    close(tol, f"{name}/chain_losses", out["chain_losses"], G["chain_losses"])
    close(tol, f"{name}/logits", out["logits"].view(4, k, 81, 12), G["logits"])
    close(tol, f"{name}/q", out["q"].view(4, k), G["q"])
    close(tol, f"{name}/winner", out["winner"], G["winner"])
    win_loss = out["chain_losses"].gather(1, out["winner"].unsqueeze(1)).squeeze(1)
    close(tol, f"{name}/winner_loss", win_loss, G["winner_loss"])
    close(tol, f"{name}/lm_loss", out["lm_loss"], G["lm_loss"])
    close(tol, f"{name}/q_winner", out["q_winner"], G["q_winner"])
    close(tol, f"{name}/halt_target", out["halt_target"].float(), G["halt_target"])
    close(tol, f"{name}/halt_loss", out["halt_loss"], G["halt_loss"])
    close(tol, f"{name}/total_loss", out["loss"], G["total_loss"])


def test_gradients_before_and_after_clipping(S, stepped):
    name, _, _, out, clipped, coef = stepped
    G, tol = S[name], S["config"]["recommended_tolerance"]
    close(tol, f"{name}/grad_norm", out["grad_norm"], G["grad_norm"])
    close(tol, f"{name}/clip_coef", coef, G["clip_coef"])
    assert set(clipped) == set(G["grad"])  # all 13 parameters got a gradient
    for n, g in clipped.items():
        close(tol, f"{name}/grad/{n}", g / coef, G["grad"][n])
        ref = G["clipped_grad"][n] if "clipped_grad" in G else G["grad"][n] * G["clip_coef"]
        close(tol, f"{name}/clipped_grad/{n}", g, ref)


def test_parameters_after_muon_and_adamw(S, stepped):
    name, _, run, _, _, _ = stepped
    G, tol = S[name], S["config"]["recommended_tolerance"]
    for n, p in params(run.model).items():
        close(tol, f"{name}/params_after/{n}", p.detach(), G["params_after"][n])


def test_carry_halting_and_expunge(S, stepped):
    name, k, run, out, _, _ = stepped
    G, tol = S[name], S["config"]["recommended_tolerance"]
    if k == 2:
        close(tol, f"{name}/z_H", run.pool.z_H, G["z_H"])
        close(tol, f"{name}/z_L", run.pool.z_L, G["z_L"])
        torch.testing.assert_close(pair_cosines(run.pool.z_L)[:, 0, 1], G["zL_cos"], atol=1e-5, rtol=0)
        close(tol, f"{name}/expunged", out["expunged_mask"], G["expunged"])
    else:  # section 9.3: the K=1 carry equals the forward file's step-1 states
        F = torch.load(FORWARD)
        close(tol, f"{name}/z_H", run.pool.z_H[:, 0], F["step1_z_H"])
        close(tol, f"{name}/z_L", run.pool.z_L[:, 0], F["step1_z_L"])
    close(tol, f"{name}/h_step", run.pool.steps, G["h_step"])
    close(tol, f"{name}/halted", out["halted_mask"], G["halted"])
    assert torch.equal(out["explore_u"] < run.cfg.halt.explore_prob, G["force_continue"])


def test_optimisers_alone_reproduce_the_update_from_the_stored_gradients(S):
    """Section 9.5 step 3: weight decay, lr adjustment and update formulas without bf16 Newton-Schulz noise."""
    for name in ("k2", "k1"):
        k, cfg, weights = setup(S, name)
        G, tol = S[name], S["config"]["recommended_tolerance"]
        model = TRM(cfg.model)
        model.load_state_dict(weights)
        muon, adamw = build_optimizers(model, cfg.optim)
        set_lr((muon, adamw), lr_scale(0, cfg.steps))
        for n, p in params(model).items():
            p.grad = (G["clipped_grad"][n] if "clipped_grad" in G else G["grad"][n] * G["clip_coef"]).clone()
        muon.step()
        adamw.step()
        adjusted = S["config"]["muon"]["adjusted_lr"]
        for n, p in params(model).items():
            path = f"{name}/params_after_from_stored_grads/{n}"
            if n in adjusted:
                close_muon_replay(tol, path, p.detach(), G["params_after"][n], adjusted[n])
            else:
                close(tol, path, p.detach(), G["params_after"][n])
