"""trm_core's model reproduces the paper's reference numbers (tests/data/trm_reference_golden.pt).

The file and its semantics are described in shared/golden/README.md; tolerances come from the file.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trm_core.config import ModelConfig
from trm_core.model import TRM, make_tokens, svd_equalise
from trm_core.wta import carry, cell_loss, winners

GOLDEN = Path(__file__).parents[1] / "data" / "trm_reference_golden.pt"


@pytest.fixture(scope="module")
def G():
    return torch.load(GOLDEN)


def build(G, swiglu="modified") -> TRM:
    c = G["config"]
    cfg = ModelConfig(hidden=c["hidden_size"], multiple_of=c["swiglu_multiple_of"], h_cycles=c["H_cycles"],
                      l_cycles=c["L_cycles"], k=c["K_L"], swiglu=swiglu, svd_equalise=False)
    model = TRM(cfg).eval()
    ref = {k: v for k, v in G["state_dict"].items() if k != "_dummy"}
    # Names match the reference one to one (fused gate/value up-projections kept fused).
    missing, unexpected = model.load_state_dict(ref, strict=True)
    assert not missing and not unexpected
    return model


def close(G, mine, key):
    torch.testing.assert_close(mine, G[key], **G["config"]["recommended_tolerance"][key])


def two_steps(model, G, prefix):
    tokens = G["tokens"]
    x = model.embed(tokens)
    z_H, z_L = model.init_h(4), model.init_l(torch.zeros(4, dtype=torch.long))
    for step in (1, 2):
        z_H, z_L, logits, q = model.act_step(x, z_H, z_L)
        # The model keeps positions 1..81 (the reference drops the HALT position before any loss).
        key = f"{prefix}step{step}_logits"
        torch.testing.assert_close(logits, G[key][:, 1:], **G["config"]["recommended_tolerance"][key])
        for name, t in (("q", q), ("z_H", z_H), ("z_L", z_L)):
            close(G, t, f"{prefix}step{step}_{name}")


@torch.no_grad()
def test_embedding_and_tokens(G):
    model = build(G)
    assert torch.equal(make_tokens(G["grids"]), G["tokens"])
    close(G, model.embed(G["tokens"]), "input_emb")


@torch.no_grad()
def test_f_call_and_block_intermediates(G):
    model = build(G)
    close(G, model.reasoning[0].token_mix(G["f_in"]), "f_block0_tokenmix_out")
    close(G, model.reasoning[0](G["f_in"]), "f_block0_out")
    close(G, model.f(G["f_in"]), "f_out")


@torch.no_grad()
def test_two_act_steps_modified_swiglu(G):
    two_steps(build(G), G, "")


@torch.no_grad()
def test_standard_swiglu_variant(G):
    model = build(G, swiglu="standard")
    close(G, model.f(G["f_in"]), "std_f_out")
    two_steps(model, G, "std_")


@torch.no_grad()
def test_two_chain_wta_steps(G):
    model = build(G)
    b, k = 4, 2
    x = model.embed(G["tokens"]).repeat_interleave(k, dim=0)
    chains = torch.arange(k).repeat(b)
    z_H, z_L = model.init_h(b * k), model.init_l(chains)
    h0, l0 = z_H.reshape(b, k, 82, -1), z_L.reshape(b, k, 82, -1)
    for step in (1, 2):
        z_H, z_L, logits, q = model.act_step(x, z_H, z_L)
        logits = logits.view(b, k, 81, -1)
        losses = cell_loss(logits.reshape(b * k, 81, -1), G["labels"].repeat_interleave(k, 0), 0.2).view(b, k)
        win = winners(losses)
        close(G, logits, f"wta_step{step}_logits")
        close(G, q.view(b, k), f"wta_step{step}_q")
        close(G, losses, f"wta_step{step}_losses")
        assert torch.equal(win, G[f"wta_step{step}_winner"])
        cH, cL = carry(z_H.view(b, k, 82, -1), z_L.view(b, k, 82, -1), win, "copy_top1", "all", h0, l0)
        if step == 1:
            close(G, cH, "wta_step1_carry_z_H")
            close(G, cL, "wta_step1_carry_z_L")
        z_H, z_L = cH.reshape(b * k, 82, -1), cL.reshape(b * k, 82, -1)


def test_svd_equalisation_matches_reference(G):
    up = G["state_dict"]["reasoning.0.mlp.up_proj.weight"]
    got = svd_equalise(G["L_init_before_svd_equalisation"], up)
    torch.testing.assert_close(got, G["L_init"], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_f_call_at_paper_width_512(G):
    big = G["config"]["big"]
    cfg = ModelConfig(hidden=512, multiple_of=256, svd_equalise=False)
    model = TRM(cfg).eval()
    g = torch.Generator().manual_seed(512)
    params = dict(model.named_parameters())
    for name in big["param_order"]:
        shape = big["param_shapes"][name]
        u = torch.rand(shape, generator=g)
        w = (2 * u - 1) * math.sqrt(3 / shape[1])
        assert math.isclose(w.double().sum().item(), big["checksums"][name]["sum"], rel_tol=1e-9, abs_tol=1e-9)
        params[f"reasoning.{name}"].copy_(w)
    x = (2 * torch.rand((2, 82, 512), generator=g) - 1) * math.sqrt(3)
    assert torch.equal(x, G["big_f_in"])
    close(G, model.f(x), "big_f_out")
