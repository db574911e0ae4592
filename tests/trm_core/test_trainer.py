"""The trainer: WTA gradients, carry policies, halting, optimiser split, resume equivalence, learning."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from trm_core.config import ModelConfig, resolve
from trm_core.model import TRM
from trm_core.optim import EMA, lr_scale, split_params
from trm_core.sink import ListSink
from trm_core.trainer import Run, TrainingDiverged, train, train_step
from trm_core.wta import carry, expunge_mask, expunge_remove, halt_decision, wta_objective


def strip_perf(logs):
    return [(step, {k: v for k, v in m.items() if not k.startswith("perf/")}) for step, m in logs]


def test_wta_gradient_reaches_only_the_winner_chain():
    torch.manual_seed(0)
    b, k = 5, 3
    cfg = resolve("smoke", {"model.k": k})
    logits = torch.randn(b * k, 81, 12, requires_grad=True)
    q = torch.randn(b * k, requires_grad=True)
    labels = torch.randint(2, 11, (b, 81))
    obj = wta_objective(logits, q, labels, k, cfg)
    obj["loss"].backward()
    per_chain = logits.grad.abs().sum((1, 2)).view(b, k)
    q_grad = q.grad.abs().view(b, k)
    win = obj["winner"]
    assert torch.equal(win, obj["chain_losses"].argmin(1))
    for i in range(b):
        for j in range(k):
            assert (per_chain[i, j] > 0) == (j == win[i]), (i, j)
            assert (q_grad[i, j] > 0) == (j == win[i])


def test_k1_objective_is_plain_smoothed_ce_plus_halting_bce():
    cfg = resolve("smoke")
    logits, q = torch.randn(4, 81, 12), torch.randn(4)
    labels = torch.randint(2, 11, (4, 81))
    obj = wta_objective(logits, q, labels, 1, cfg)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 12), labels.reshape(-1), label_smoothing=0.2)
    right = (logits.argmax(-1) == labels).all(-1).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(q, right)
    torch.testing.assert_close(obj["loss"], ce + 0.05 * bce)


POLICIES = ["copy_top1", "all", "top1", "top2", "none", "top1_reset"]


@pytest.mark.parametrize("carry_h,carry_l", [(h, z) for h in POLICIES for z in POLICIES if h == z or (h, z) == ("copy_top1", "all")])
def test_carry_policies(carry_h, carry_l):
    b, k = 3, 4
    out_H, out_L = torch.randn(b, k, 82, 8, requires_grad=True), torch.randn(b, k, 82, 8, requires_grad=True)
    prev_H, prev_L = torch.randn(b, k, 82, 8), torch.randn(b, k, 82, 8)
    h0, l0 = torch.zeros(b, k, 82, 8), torch.full((b, k, 82, 8), -1.0)
    win, second = torch.tensor([2, 0, 3]), torch.tensor([1, 3, 0])
    nh, nl = carry(out_H, out_L, win, carry_h, carry_l, h0, l0, prev=(prev_H, prev_L), runner_up=second)

    def expected(policy, out, prev, init, i, j):
        w, r = win[i].item(), second[i].item()
        return {"copy_top1": out[i, w], "all": out[i, j], "top1": out[i, j] if j == w else prev[i, j],
                "top2": out[i, j] if j in (w, r) else prev[i, j], "none": prev[i, j],
                "top1_reset": out[i, j] if j == w else init[i, j]}[policy]

    for i in range(b):
        for j in range(k):
            assert torch.equal(nh[i, j], expected(carry_h, out_H, prev_H, h0, i, j))
            assert torch.equal(nl[i, j], expected(carry_l, out_L, prev_L, l0, i, j))
    assert not nh.requires_grad and not nl.requires_grad


def test_expunge_flags_only_later_duplicates():
    z = torch.randn(2, 3, 82, 8)
    z[0, 2] = z[0, 0] * 2.0  # same direction as chain 0
    mask = expunge_mask(z, 0.95)
    assert mask.tolist() == [[False, False, True], [False, False, False]]


def test_expunge_remove_takes_the_highest_loss_chain_of_the_pairs_once_per_running_puzzle():
    z = torch.randn(4, 4, 82, 8)
    for b in range(4):
        z[b, 1] = z[b, 3] * 3.0  # chains 1 and 3 collapsed
        z[b, 0] = z[b, 2] + 1e-3 * torch.randn(82, 8)  # chains 0 and 2 too
    losses = torch.tensor([[5.0, 1.0, 2.0, 3.0]] * 4)
    alive = torch.ones(4, 4, dtype=torch.bool)
    alive[2, 0] = False  # puzzle 2 already lost chain 0, so 2 is no longer in a pair
    alive[3, 3] = False  # puzzle 3: only the pair (0, 2) is left
    running = torch.tensor([True, False, True, True])
    gone = expunge_remove(z, losses, alive, running, 0.95)
    # puzzle 0: chain 0 (loss 5) of pairs {0,2}, {1,3}; puzzle 1 halted; puzzle 2: chain 3 (loss 3) of
    # the pair {1,3}; puzzle 3: chain 0 of the pair {0,2}
    assert gone.tolist() == [[True, False, False, False], [False] * 4, [False, False, False, True], [True, False, False, False]]


def test_removed_chains_never_win_and_get_no_gradient():
    b, k = 3, 2
    cfg = resolve("smoke", {"model.k": k})
    logits = torch.randn(b * k, 81, 12, requires_grad=True)
    labels = torch.randint(2, 11, (b, 81))
    alive = torch.tensor([[True, True], [False, True], [True, False]])
    obj = wta_objective(logits, torch.randn(b * k), labels, k, cfg, alive)
    obj["loss"].backward()
    assert obj["winner"][1] == 1 and obj["winner"][2] == 0
    assert torch.isinf(obj["chain_losses"][~alive]).all() and torch.isfinite(obj["loss"])
    assert logits.grad.view(b, k, -1)[~alive].abs().sum() == 0


def test_remove_keeps_computing_a_removed_chain_until_its_slot_takes_a_new_puzzle():
    # expunge_cos -1 makes every pair a duplicate: each running K=3 puzzle loses one chain per step
    cfg = resolve("smoke", {"model.k": 3, "wta.expunge": "remove", "wta.expunge_cos": -0.99, "halt.explore_prob": 0.0})
    from trm_core.data import load_splits

    run = Run(cfg, torch.device("cpu"), load_splits(cfg.data)[0])
    out = train_step(run)
    running = ~out["halted_mask"]
    assert (out["expunged_mask"].sum(1) == running.long()).all()  # one per running puzzle, none for halted
    assert torch.equal(run.pool.alive, ~out["expunged_mask"])
    out = train_step(run)
    refilled = ~running
    assert out["alive"][refilled].all()  # a new puzzle gets all K chains back
    assert (out["alive"].sum(1)[running] == 2).all()
    assert torch.isinf(out["chain_losses"][~out["alive"]]).all()


def test_halting_rule():
    steps = torch.tensor([1, 1, 3, 2, 4])
    q = torch.tensor([5.0, -5.0, 5.0, 5.0, -5.0])
    min_steps = torch.tensor([0, 0, 4, 2, 0])
    # confident & past min -> halt; not confident -> no; confident but min not reached -> no; max -> halt
    assert halt_decision(steps, q, min_steps, 4, 0.5).tolist() == [True, False, False, True, True]
    assert halt_decision(steps, torch.zeros(5), torch.zeros(5, dtype=torch.long), 4, 0.4).tolist() == [True, True, True, True, True]


def test_muon_gets_mixer_matrices_adamw_gets_the_rest():
    model = TRM(ModelConfig(hidden=16, multiple_of=16, k=2))
    muon, adamw = split_params(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in muon} == {n for n, p in model.named_parameters() if n.startswith("reasoning.")}
    assert {names[id(p)] for p in adamw} == {"embed_tokens.weight", "head.weight", "head.bias", "q_head.weight", "q_head.bias"}
    assert all(p.ndim == 2 for p in muon)


def test_cosine_schedule_without_warmup():
    assert lr_scale(0, 100) == 1.0
    assert abs(lr_scale(50, 100) - 0.5) < 1e-9
    assert lr_scale(100, 100) == 0.0
    assert lr_scale(0, 100, warmup=10) == 0.1 and abs(lr_scale(100, 100, floor=0.1) - 0.1) < 1e-12


def test_a_checkpoint_from_before_chain_removal_loads_with_every_chain_alive():
    cfg = resolve("smoke", {"model.k": 2, "wta.expunge": "remove"})
    from trm_core.data import load_splits

    train_set = load_splits(cfg.data)[0]
    run = Run(cfg, torch.device("cpu"), train_set)
    train_step(run)
    state = run.state_dict()
    del state["pool"]["alive"]  # what a checkpoint written before the option existed holds
    resumed = Run(cfg, torch.device("cpu"), train_set)
    resumed.load_state_dict(state)
    assert resumed.pool.alive.all()  # every chain alive: the only state such a run could be in
    assert torch.equal(resumed.pool.z_L, run.pool.z_L) and resumed.step == run.step


def test_ema_hold_keeps_the_initial_weights_until_its_start_and_tracks_after():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 3)
    first = {n: p.detach().clone() for n, p in model.named_parameters()}
    ema = EMA(model, 0.9, start=2, before_start="hold")
    track = EMA(model, 0.9, start=2, before_start="track")
    seen = []
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        seen.append({n: p.detach().clone() for n, p in model.named_parameters()})
        ema.update(model, step)
        track.update(model, step)
        if step == 0:  # update 1 < start: hold keeps the initial weights and is not used for evaluation
            assert all(torch.equal(p, first[n]) for n, p in ema.model.named_parameters())
            assert all(torch.equal(p, seen[0][n]) for n, p in track.model.named_parameters())
            assert not ema.in_use(1) and track.in_use(1)
    # update 2 sets the shadow to the weights, update 3 averages: identical for both rules
    for (n, p), (_, q) in zip(ema.model.named_parameters(), track.model.named_parameters()):
        torch.testing.assert_close(p, 0.9 * seen[1][n] + 0.1 * seen[2][n])
        assert torch.equal(p, q)
    assert ema.in_use(2)


@pytest.mark.parametrize("overrides", [
    {"model.k": 1},
    {"model.k": 3},
    # the reference's rules: chains removed (the pool's alive mask is in the checkpoint), EMA held until
    # its start, which lies between the checkpoints
    {"model.k": 3, "wta.expunge": "remove", "wta.expunge_cos": 0.0, "optim.ema_decay": 0.9, "optim.ema_start": 8,
     "optim.ema_before_start": "hold", "wta.carry_h": "top1", "wta.carry_l": "top2"},
])
def test_resume_equals_uninterrupted_run(tmp_path, overrides):
    cfg = resolve("smoke", {**overrides, "wta.z_l_noise": 0.01, "model.z_l_init": "fresh"})
    full = ListSink()
    train(cfg, full, tmp_path / "a")
    calls = iter(range(10**6))
    first, second = ListSink(), ListSink()
    # stop right after the first evaluation (step 6), as a scheduler or a kill after a checkpoint would
    out = train(cfg, first, tmp_path / "b", should_stop=lambda: next(calls) == cfg.eval_every - 1)
    assert out["stopped"] == 1.0 and [s for s, _ in first.evals] == [cfg.eval_every]
    train(cfg, second, tmp_path / "b")
    assert strip_perf(first.logs + second.logs) == strip_perf(full.logs)
    assert first.evals + second.evals == full.evals


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path):
    cfg = resolve("smoke")
    train(cfg, ListSink(), tmp_path)
    newest = sorted(tmp_path.glob("step-*"))[-1]
    (newest / "state.pt").write_bytes(b"garbage")
    sink = ListSink()
    with pytest.warns(UserWarning, match="checksum"):
        train(cfg, sink, tmp_path)
    assert [s for s, _ in sink.evals] == [cfg.steps]  # resumed from the previous one and redid the rest


def test_diverging_loss_raises(tmp_path):
    cfg = resolve("smoke", {"optim.adam_lr": 1e30, "optim.muon_lr": 1e30, "optim.grad_clip": 0.0})
    with pytest.raises(TrainingDiverged):
        train(cfg, ListSink(), tmp_path)
    assert not list(tmp_path.glob("step-*"))  # raised at the first log, before any checkpoint of NaN weights


def test_pure_bf16_trains_on_cpu(tmp_path):
    """precision bf16 (the faithful presets): parameters, pool state, EMA and optimiser states in bf16."""
    cfg = resolve("smoke", {"model.k": 2, "precision": "bf16", "wta.loss_dtype": "logits", "wta.expunge": "remove",
                            "optim.ema_decay": 0.9, "optim.ema_start": 2, "optim.ema_before_start": "hold"})
    from trm_core.data import load_splits

    run = Run(cfg, torch.device("cpu"), load_splits(cfg.data)[0])
    for _ in range(4):
        out = train_step(run)
    assert torch.isfinite(out["loss"]) and out["chain_losses"].dtype == torch.bfloat16
    assert run.pool.z_H.dtype == run.pool.z_L.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in run.model.parameters())
    assert all(p.dtype == torch.bfloat16 for p in run.ema.model.parameters())
    states = [s for opt in (run.muon, run.adamw) for s in opt.state.values()]
    assert states and all(v.dtype == torch.bfloat16 for s in states for v in s.values() if torch.is_tensor(v) and v.ndim)
    final = train(cfg, ListSink(), tmp_path)  # the whole loop, with evaluation and a checkpoint
    assert final["train/loss"] == final["train/loss"] and list(tmp_path.glob("step-*"))


@pytest.mark.slow
def test_tiny_preset_learns():
    cfg = resolve("cpu-tiny", {"steps": 150, "eval_every": 150, "log_every": 25, "data.n_train": 1000, "eval_puzzles": 200})
    sink = ListSink()
    final = train(cfg, sink)
    losses = [m["train/loss"] for _, m in sink.logs]
    assert losses[-1] < losses[0] - 0.3
    assert final["eval/cell_acc"] > 0.6  # from ~1/9 at random init


def test_import_trm_core_loads_no_orchestration_libraries():
    code = ("import sys, trm_core, trm_core.trainer, trm_core.checkpoint; "
            "bad = [m for m in ('ray', 'optuna', 'mlflow', 'typer') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)
