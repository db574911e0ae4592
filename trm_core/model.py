"""The Tiny Recursive Model of "Speed is Confidence" (arXiv 2601.19085), Sudoku variant.

One small net f (post-norm MLP-Mixer blocks, no attention) is applied recursively. Per H-cycle:
z_L = f(z_L + (z_H + x)) L times, then z_H = f(z_H + z_L). One ACT step is H_cycles H-cycles, all
but the last without gradients. Semantics (token ids, HALT at position 0, fused gate/value halves,
norm axes, init) follow the paper-era reference model as documented in shared/golden/README.md.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trm_core.config import ModelConfig

HALT_TOKEN = 11
_TRUNC_STD = 0.8796256610342398  # std of a standard normal truncated at +-2


def trunc_normal_(t: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Truncated normal whose std AFTER truncation at +-2 sigma' equals `std` (the reference's recipe)."""
    s = std / _TRUNC_STD
    return nn.init.trunc_normal_(t, mean=0.0, std=s, a=-2 * s, b=2 * s, generator=generator)


def swiglu_hidden(c_in: int, expansion: float, multiple_of: int) -> int:
    """round(expansion * 2/3 * c_in) rounded up to a multiple of `multiple_of` (256 at D=64 and D=512 token-mix)."""
    h = round(expansion * 2 / 3 * c_in)
    return multiple_of * math.ceil(h / multiple_of)


class SwiGLU(nn.Module):
    """up: [2h, c_in] whose first half is the gate g and second the value v; down: [c_in, h].

    modified (the paper): down(sigmoid(g) * RMSNorm_h(g * v)); standard: down(silu(g) * v).
    The paper credits the modified form with making Muon at lr 0.02 stable.
    """

    def __init__(self, c_in: int, hidden: int, modified: bool, eps: float):
        super().__init__()
        self.hidden, self.modified, self.eps = hidden, modified, eps
        self.up_proj = nn.Linear(c_in, 2 * hidden, bias=False)
        self.down_proj = nn.Linear(hidden, c_in, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        g, v = self.up_proj(x).chunk(2, dim=-1)
        if self.modified:
            a = torch.sigmoid(g) * F.rms_norm(g * v, (self.hidden,), eps=self.eps)
        else:
            a = F.silu(g) * v
        return self.down_proj(a)


class MixerBlock(nn.Module):
    """Post-norm MLP-Mixer block: token mixing along the sequence axis, then channel mixing."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        modified = cfg.swiglu == "modified"
        self.seq, self.dim, self.eps = cfg.seq_len, cfg.hidden, cfg.rms_eps
        self.attn = SwiGLU(cfg.seq_len, swiglu_hidden(cfg.seq_len, cfg.expansion, cfg.multiple_of), modified, cfg.rms_eps)
        self.mlp = SwiGLU(cfg.hidden, swiglu_hidden(cfg.hidden, cfg.expansion, cfg.multiple_of), modified, cfg.rms_eps)

    def forward(self, x: Tensor) -> Tensor:
        t = x.transpose(1, 2)  # [B, D, S]: each channel's 82-vector over positions
        t = F.rms_norm(t + self.attn(t), (self.seq,), eps=self.eps).transpose(1, 2)
        return F.rms_norm(t + self.mlp(t), (self.dim,), eps=self.eps)

    def token_mix(self, x: Tensor) -> Tensor:
        """Only the token-mixing half (for localising golden-test failures)."""
        t = x.transpose(1, 2)
        return F.rms_norm(t + self.attn(t), (self.seq,), eps=self.eps).transpose(1, 2)


class TRM(nn.Module):
    """Embedding, core net f, output head (positions 1..81), halting head (position 0), latent inits."""

    def __init__(self, cfg: ModelConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden
        self.embed_tokens = nn.Embedding(cfg.vocab, d)
        self.reasoning = nn.ModuleList(MixerBlock(cfg) for _ in range(cfg.n_blocks))
        self.head = nn.Linear(d, cfg.vocab, bias=True)
        self.q_head = nn.Linear(d, 1, bias=True)
        self.register_buffer("H_init", torch.empty(1, d))
        self.register_buffer("L_init", torch.empty(cfg.k, d))
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        d = self.cfg.hidden
        trunc_normal_(self.embed_tokens.weight, 1 / math.sqrt(d), generator)
        for block in self.reasoning:
            for lin in (block.attn.up_proj, block.attn.down_proj, block.mlp.up_proj, block.mlp.down_proj):
                trunc_normal_(lin.weight, 1 / math.sqrt(lin.weight.shape[1]), generator)
        trunc_normal_(self.head.weight, 1 / math.sqrt(d), generator)
        self.head.bias.zero_()
        # Zero weight, bias -5: the halting head starts at "never halt" (sigmoid(-5) = 0.007).
        self.q_head.weight.zero_()
        self.q_head.bias.fill_(-5.0)
        trunc_normal_(self.H_init, 1.0, generator)
        trunc_normal_(self.L_init, 1.0, generator)
        if self.cfg.svd_equalise and self.cfg.k > 1:
            self.L_init.copy_(svd_equalise(self.L_init, self.reasoning[0].mlp.up_proj.weight))

    # --- the recursion -------------------------------------------------------------------------
    def embed(self, tokens: Tensor) -> Tensor:
        """tokens [B, 82] (HALT first) -> sqrt(D) * E[tokens]; no positional encoding."""
        return self.embed_tokens(tokens) * math.sqrt(self.cfg.hidden)

    def f(self, h: Tensor) -> Tensor:
        for block in self.reasoning:
            h = block(h)
        return h

    def h_cycle(self, x: Tensor, z_H: Tensor, z_L: Tensor) -> tuple[Tensor, Tensor]:
        c = z_H + x  # fixed during the L loop; the reference adds z_L + (z_H + x)
        for _ in range(self.cfg.l_cycles):
            z_L = self.f(z_L + c)
        return self.f(z_H + z_L), z_L

    def act_step(self, x: Tensor, z_H: Tensor, z_L: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One ACT step. Returns (z_H, z_L, logits [B, 81, V], q [B]); only the last H-cycle has gradients."""
        with torch.no_grad():
            for _ in range(self.cfg.h_cycles - 1):
                z_H, z_L = self.h_cycle(x, z_H, z_L)
        z_H, z_L = self.h_cycle(x, z_H, z_L)
        logits = self.head(z_H[:, 1:])
        q = self.q_head(z_H[:, 0]).squeeze(-1)
        return z_H, z_L, logits, q

    # --- latent initial states ---------------------------------------------------------------
    def init_h(self, n: int) -> Tensor:
        return self.H_init.view(1, 1, -1).expand(n, self.cfg.seq_len, -1)

    def init_l(self, chain: Tensor, fresh: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """z_L starts for rows whose chain index is `chain` [n]: L_init[chain] broadcast, or fresh noise."""
        if fresh:
            z = torch.empty(chain.shape[0], self.cfg.seq_len, self.cfg.hidden, device=self.H_init.device, dtype=self.H_init.dtype)
            return trunc_normal_(z, 1.0, generator)
        return self.L_init[chain].unsqueeze(1).expand(-1, self.cfg.seq_len, -1)


def svd_equalise(L_init: Tensor, up_proj: Tensor, top: int = 10) -> Tensor:
    """Give rows 1.. of L_init the same share of energy in block 0's top-`top` input directions as row 0.

    The reference's recipe (golden README 2.10): with V the top right singular vectors of the channel
    up-projection and a = ||V^T u0|| for unit row 0, rescale each other row's in-span part so that its
    fraction matches a, then restore the row's norm.
    """
    V = torch.linalg.svd(up_proj.float(), full_matrices=False).Vh[:top].T  # [D, top]
    out = L_init.clone()
    u0 = L_init[0] / L_init[0].norm()
    a = (V.T @ u0).norm()
    for i in range(1, L_init.shape[0]):
        v = L_init[i]
        par = V @ (V.T @ v)
        perp = v - par
        target = torch.sqrt(a**2 * perp.norm() ** 2 / (1 - a**2 + 1e-8))
        par = par * (target / par.norm())
        w = par + perp
        out[i] = w * (v.norm() / w.norm())
    return out


def make_tokens(grids: Tensor) -> Tensor:
    """[B, 81] cell tokens -> [B, 82] with the HALT token at position 0."""
    halt = torch.full((grids.shape[0], 1), HALT_TOKEN, dtype=torch.long, device=grids.device)
    return torch.cat([halt, grids.long()], dim=1)
