"""The trainer: WTA gradients, carry policies, halting, optimiser split, resume equivalence, learning."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from trm_core.config import ModelConfig, resolve
from trm_core.model import TRM
from trm_core.optim import lr_scale, split_params
from trm_core.sink import ListSink
from trm_core.trainer import TrainingDiverged, halt_decision, train, wta_objective
from trm_core.wta import carry, expunge_mask


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


@pytest.mark.parametrize("carry_h,carry_l", [("copy_top1", "all"), ("all", "all"), ("top1", "top1"), ("copy_top1", "copy_top1")])
def test_carry_policies(carry_h, carry_l):
    b, k = 3, 4
    z_H, z_L = torch.randn(b, k, 82, 8), torch.randn(b, k, 82, 8)
    h0, l0 = torch.zeros(b, k, 82, 8), torch.full((b, k, 82, 8), -1.0)
    win = torch.tensor([2, 0, 3])
    nh, nl = carry(z_H, z_L, win, carry_h, carry_l, h0, l0)
    for i in range(b):
        w = win[i]
        for j in range(k):
            exp_h = {"copy_top1": z_H[i, w], "all": z_H[i, j], "top1": z_H[i, j] if j == w else h0[i, j]}[carry_h]
            exp_l = {"copy_top1": z_L[i, w], "all": z_L[i, j], "top1": z_L[i, j] if j == w else l0[i, j]}[carry_l]
            assert torch.equal(nh[i, j], exp_h) and torch.equal(nl[i, j], exp_l)
    assert not nh.requires_grad and not nl.requires_grad


def test_expunge_flags_only_later_duplicates():
    z = torch.randn(2, 3, 82, 8)
    z[0, 2] = z[0, 0] * 2.0  # same direction as chain 0
    mask = expunge_mask(z, 0.95)
    assert mask.tolist() == [[False, False, True], [False, False, False]]


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


@pytest.mark.parametrize("k", [1, 3])
def test_resume_equals_uninterrupted_run(tmp_path, k):
    cfg = resolve("smoke", {"model.k": k, "wta.z_l_noise": 0.01, "model.z_l_init": "fresh"})
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
