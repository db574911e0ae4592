"""Four consecutive training steps of trm_core equal the reference's (tests/data/trm_reference_steps.pt,
README section 10): halts (one held back by exploration), refills, three chains expunged by removal at
step 3, one-chain puzzles at step 4, the cosine schedule over 8 steps, the optimiser moments and the EMA
(decay 0.9, warm-up 2, the reference's `hold` rule).
"""
from __future__ import annotations

import pytest
import torch

from helpers.golden import STEPS, close, close_muon_replay, feed_draws, golden_config, golden_run, params, reference_weights
from trm_core.model import TRM
from trm_core.optim import EMA, build_optimizers, lr_scale, set_lr
from trm_core.trainer import train_step
from trm_core.wta import pair_cosines

EMA_REF = {"ema_decay": 0.9, "ema_start": 2, "ema_before_start": "hold"}  # README 10.1: decay 0.9, warm-up 2


@pytest.fixture(scope="module")
def S():
    return torch.load(STEPS)


def config_and_weights(S):
    c = S["config"]
    assert c["ema"]["decay"] == EMA_REF["ema_decay"] and c["ema"]["warmup_steps"] == EMA_REF["ema_start"]
    cfg = golden_config(c, c["K"], c["total_train_steps"], EMA_REF)
    return cfg, reference_weights(c["K"], S["initial_weight_overrides"])


@pytest.fixture(scope="module")
def trace(S):
    """Run the 4 steps once; per step: (record, pool snapshot, parameters, EMA shadow, optimiser states)."""
    cfg, weights = config_and_weights(S)
    run = golden_run(cfg, weights, S["puzzles"]["grids"], S["puzzles"]["labels"])
    out = []
    for st in S["steps"]:
        feed_draws(run, st["explore_u"], st["min_random_steps"])
        rec = train_step(run)
        p = params(run.model)
        out.append({
            "rec": rec, "inputs": run.pool.inputs.clone(), "steps": run.pool.steps.clone(), "alive": run.pool.alive.clone(),
            "z_H": run.pool.z_H.clone(), "z_L": run.pool.z_L.clone(),
            "lr_factor": run.adamw.param_groups[0]["lr"] / run.adamw.param_groups[0]["base_lr"],
            "grad": {n: t.grad.clone() for n, t in p.items()}, "params": {n: t.detach().clone() for n, t in p.items()},
            "ema": {n: t.detach().clone() for n, t in params(run.ema.model).items()},
            "adamw": {n: {k: v.clone() if torch.is_tensor(v) else v for k, v in run.adamw.state[t].items()} for n, t in p.items() if t in run.adamw.state},
            "muon": {n: run.muon.state[t]["momentum_buffer"].clone() for n, t in p.items() if t in run.muon.state},
        })
    return out


def slot_puzzles(inputs: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    """The id of the puzzle in each slot (augmentation is off, so a slot holds its puzzle's grid)."""
    match = (inputs.unsqueeze(1) == grids.unsqueeze(0)).all(-1)  # [slots, puzzles]
    assert (match.sum(1) == 1).all()
    return match.float().argmax(1)


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_discrete_record(S, trace, s):
    """Slots, ACT counters, surviving chains, winners, halting and expunge decisions: exact."""
    st, t, tol = S["steps"][s - 1], trace[s - 1], S["config"]["recommended_tolerance"]
    rec = t["rec"]
    close(tol, f"step{s}/slot_puzzle", slot_puzzles(t["inputs"], S["puzzles"]["grids"]), st["slot_puzzle"])
    close(tol, f"step{s}/h_step_before", t["steps"] - 1, st["h_step_before"])
    close(tol, f"step{s}/h_step_after", t["steps"], st["h_step_after"])
    close(tol, f"step{s}/chain_valid", rec["alive"], st["chain_valid"])
    close(tol, f"step{s}/winner", rec["winner"], st["winner"])
    close(tol, f"step{s}/halt_target", rec["halt_target"].float(), st["halt_target"])
    close(tol, f"step{s}/force_continue", rec["explore_u"] < S["config"]["halt_exploration_prob"], st["force_continue"])
    close(tol, f"step{s}/q_positive", rec["q_winner"] > 0, st["q_positive"])
    close(tol, f"step{s}/halted", rec["halted_mask"], st["halted"])
    close(tol, f"step{s}/expunge_eligible", ~rec["halted_mask"], st["expunge_eligible"])
    close(tol, f"step{s}/expunged", rec["expunged_mask"], st["expunged"])
    # trm_core empties and refills a halted slot at the start of the next step, so the pool after a step
    # matches the reference's in the slots that keep their puzzle (README 10.6 step 4)
    kept = ~st["halted"] & ~st["loaded_at_end"]
    assert torch.equal(t["alive"][kept], st["chain_valid_after"][kept])


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_losses_forward_and_carry(S, trace, s):
    st, t, tol = S["steps"][s - 1], trace[s - 1], S["config"]["recommended_tolerance"]
    rec, valid = t["rec"], st["chain_valid"]
    close(tol, f"step{s}/lr_factor", torch.tensor(t["lr_factor"], dtype=torch.float64), torch.tensor(st["lr_factor"], dtype=torch.float64))
    assert t["lr_factor"] == pytest.approx(lr_scale(s - 1, 8), abs=1e-15)
    close(tol, f"step{s}/chain_losses", rec["chain_losses"], st["chain_losses"])  # +inf at removed chains
    close(tol, f"step{s}/logits", rec["logits"].view(4, 2, 81, 12)[valid], st["logits"][valid])
    close(tol, f"step{s}/q", rec["q"].view(4, 2)[valid], st["q"][valid])
    close(tol, f"step{s}/winner_loss", rec["chain_losses"].gather(1, rec["winner"].unsqueeze(1)).squeeze(1), st["winner_loss"])
    close(tol, f"step{s}/lm_loss", rec["lm_loss"], st["lm_loss"])
    close(tol, f"step{s}/q_winner", rec["q_winner"], st["q_winner"])
    close(tol, f"step{s}/halt_loss", rec["halt_loss"], st["halt_loss"])
    close(tol, f"step{s}/total_loss", rec["loss"], st["total_loss"])
    z_H_win = t["z_H"].gather(1, rec["winner"].view(4, 1, 1, 1).expand(-1, 1, *t["z_H"].shape[2:])).squeeze(1)
    close(tol, f"step{s}/carry_z_H", z_H_win, st["carry_z_H"])
    close(tol, f"step{s}/carry_z_L", t["z_L"][valid], st["carry_z_L"][valid])
    tested = torch.isfinite(st["zL_cos"])  # slots still running with two chains
    close(tol, f"step{s}/zL_cos", pair_cosines(t["z_L"])[:, 0, 1][tested], st["zL_cos"][tested])


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_gradients_weights_optimiser_state_and_ema(S, trace, s):
    st, t, tol = S["steps"][s - 1], trace[s - 1], S["config"]["recommended_tolerance"]
    close(tol, f"step{s}/grad_norm", t["rec"]["grad_norm"], st["grad_norm"])
    close(tol, f"step{s}/clip_coef", torch.clamp(1.0 / (t["rec"]["grad_norm"] + 1e-6), max=1.0), st["clip_coef"])
    for n, g in st["clipped_grad"].items():
        close(tol, f"step{s}/clipped_grad/{n}", t["grad"][n], g)
    for n, w in st["params_after"].items():
        close(tol, f"step{s}/params_after/{n}", t["params"][n], w)
    for n, w in st["ema"].items():
        close(tol, f"step{s}/ema/{n}", t["ema"][n], w)
    for n, state in st["adamw_state"].items():
        assert t["adamw"][n]["step"].item() == state["step"]
        for key in ("exp_avg", "exp_avg_sq"):
            close(tol, f"step{s}/adamw_state/{n}/{key}", t["adamw"][n][key], state[key])
    for n, buf in st.get("muon_momentum", {}).items():
        close(tol, f"step{s}/muon_momentum/{n}", t["muon"][n], buf)


def test_ema_holds_the_initial_weights_before_its_warm_up(S, trace):
    """README 10.2 step 4: after update 1 the shadow is still the initial weights (the `hold` rule)."""
    _, weights = config_and_weights(S)
    for n, w in trace[0]["ema"].items():
        assert torch.equal(w, weights[n]), n


def test_optimisers_and_ema_alone_reproduce_the_updates_from_the_stored_gradients(S):
    """README 10.6 step 5: momentum, Nesterov, Adam moments, weight decay, lr adjustment, schedule, EMA."""
    cfg, weights = config_and_weights(S)
    tol, adjusted = S["config"]["recommended_tolerance"], S["config"]["muon"]["adjusted_lr"]
    model = TRM(cfg.model)
    model.load_state_dict(weights)
    muon, adamw = build_optimizers(model, cfg.optim)
    ema = EMA(model, cfg.optim.ema_decay, cfg.optim.ema_start, cfg.optim.ema_before_start)
    p = params(model)
    for s, st in enumerate(S["steps"], start=1):
        for t in p.values():
            t.grad = None
        for n, g in st["clipped_grad"].items():
            if n in st["params_after"]:  # step 1 stores all 13 gradients but only 7 weights: feed those 7
                p[n].grad = g.clone()
        set_lr((muon, adamw), lr_scale(s - 1, cfg.steps))
        muon.step()
        adamw.step()
        ema.update(model, s - 1)
        for n, w in st["params_after"].items():
            if n not in st["clipped_grad"] or (s == 4 and n not in S["steps"][0]["params_after"]):
                continue  # the 6 untracked matrices get no gradient in this replay
            path = f"step{s}/params_after_from_stored_grads/{n}"
            (close_muon_replay(tol, path, p[n].detach(), w, adjusted[n]) if n in adjusted else close(tol, path, p[n].detach(), w))
        ema_p = params(ema.model)
        for n, w in st["ema"].items():
            if n in adjusted:
                close_muon_replay(tol, f"step{s}/params_after_from_stored_grads/{n}", ema_p[n], w, adjusted[n])
            else:
                torch.testing.assert_close(ema_p[n], w, atol=0, rtol=0, msg=lambda m: f"step{s}/ema/{n}: {m}")
