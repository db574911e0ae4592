"""Choosing the halting threshold without retraining: record once, replay any tau.

One pass runs a chain set for all ACT steps and records, per puzzle, step and chain, q and how right the
argmax answer is (and the loss vs labels, for winner diagnostics). Replaying the halting rule on the record
gives exactly what an explicit `halt` / `halt_first` run at that tau would give, because the rule and the
tie-breaks are the same functions (`rules.first_halter`) applied to the same q values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from trm_core.evaluation import rules
from trm_core.evaluation.chains import Chain, RunOptions, f_calls_per_step, run_chains
from trm_core.evaluation.config import DEFAULT_TAUS, FALLBACKS

__all__ = ["DEFAULT_TAUS", "ChainRecord", "record_chains", "replay_halt_first", "tau_curve"]


@dataclass
class ChainRecord:
    """Per-step, per-chain outcomes of one all-steps run. Shapes: N puzzles, S steps, C chains."""

    chains: list[Chain]
    q: Tensor
    """[N, S, C] float32 halting logits."""
    correct: Tensor
    """[N, S, C] bool: the chain's argmax grid is entirely right."""
    cells_right: Tensor
    """[N, S, C] int: cells right (of 81)."""
    blanks_right: Tensor
    """[N, S, C] int: blank cells right."""
    loss: Tensor
    """[N, S, C] float32: mean cross-entropy vs labels over the 81 cells (no smoothing)."""
    avg_correct: Tensor
    """[N, S] bool: the probability average over the `avg_cols` chains is entirely right."""
    avg_cells_right: Tensor
    """[N, S] int."""
    avg_blanks_right: Tensor
    """[N, S] int."""
    avg_cols: list[int]
    """Columns that the prob_avg fallback pools (the halt-first chain set)."""
    n_blank: Tensor
    """[N] blank cells per puzzle."""
    f_calls: list[int]
    """f-calls per ACT step of each chain's model."""

    @property
    def steps(self) -> int:
        return self.q.shape[1]


class _Recorder:
    """Writes each step's outcomes into device buffers (row N is the spare row of empty slots); one copy
    to the host at the end, so recording adds no host sync per step."""

    def __init__(self, n: int, steps: int, c: int, labels: Tensor, inputs: Tensor, avg_cols: list[int]):
        dev = labels.device
        spare = torch.ones(1, 81, dtype=torch.long, device=dev)
        self.labels, self.blank = torch.cat([labels, spare + 1]), torch.cat([inputs, spare]) == 1
        self.steps, self.avg_cols = steps, avg_cols
        per_chain = lambda dtype: torch.zeros(n + 1, steps, c, dtype=dtype, device=dev)  # noqa: E731
        per_step = lambda dtype: torch.zeros(n + 1, steps, dtype=dtype, device=dev)  # noqa: E731
        self.q, self.loss = per_chain(torch.float32), per_chain(torch.float32)
        self.correct, self.cells, self.blanks = per_chain(torch.bool), per_chain(torch.int16), per_chain(torch.int16)
        self.avg_correct, self.avg_cells, self.avg_blanks = per_step(torch.bool), per_step(torch.int16), per_step(torch.int16)

    def __call__(self, i: Tensor, step: Tensor, logits: Tensor, q: Tensor) -> None:
        s = (step - 1).clamp(max=self.steps - 1)  # empty slots may run past the last step; they write row N
        labels, blank = self.labels[i], self.blank[i]
        right = logits.argmax(-1) == labels.unsqueeze(1)  # [b, C, 81]
        self.q[i, s] = q.float()
        self.correct[i, s] = right.all(-1)
        self.cells[i, s] = right.sum(-1).to(torch.int16)
        self.blanks[i, s] = (right & blank.unsqueeze(1)).sum(-1).to(torch.int16)
        b, c, cells, v = logits.shape
        ce = F.cross_entropy(logits.float().reshape(-1, v), labels.unsqueeze(1).expand(b, c, cells).reshape(-1), reduction="none")
        self.loss[i, s] = ce.view(b, c, cells).mean(-1)
        avg_right = rules.prob_average(logits[:, self.avg_cols]) == labels
        self.avg_correct[i, s] = avg_right.all(-1)
        self.avg_cells[i, s] = avg_right.sum(-1).to(torch.int16)
        self.avg_blanks[i, s] = (avg_right & blank).sum(-1).to(torch.int16)

    def host(self, name: str) -> Tensor:
        return getattr(self, name)[:-1].cpu()


def record_chains(models: Sequence, chains: Sequence[Chain], inputs: Tensor, labels: Tensor, opts: RunOptions, *,
                  avg_cols: list[int] | None = None, progress: Callable | None = None) -> ChainRecord:
    """Run `chains` for all `opts.max_steps` steps on every puzzle and record per-step, per-chain outcomes."""
    n, c, steps = inputs.shape[0], len(chains), opts.max_steps
    avg_cols = list(range(c)) if avg_cols is None else list(avg_cols)
    device = models[0].H_init.device
    rec = _Recorder(n, steps, c, labels.long().to(device), inputs.long().to(device), avg_cols)

    def decide(step, logits, q, final):
        return final, logits[:, 0].argmax(-1)

    run_chains(models, chains, inputs, decide, opts, observe=rec, progress=progress)
    h = rec.host
    return ChainRecord(list(chains), h("q"), h("correct"), h("cells"), h("blanks"), h("loss"), h("avg_correct"),
                       h("avg_cells"), h("avg_blanks"), avg_cols, (inputs.cpu() == 1).sum(1),
                       [f_calls_per_step(models[ch.model]) for ch in chains])


def replay_halt_first(rec: ChainRecord, cols: Sequence[int], tau: float, fallback: str = "chain0") -> dict[str, Tensor]:
    """What halt-first over columns `cols` at threshold `tau` answers, per puzzle, read from the record.

    Returns step [N] (0-based step answered at), correct [N], cells_right [N], blanks_right [N], halted [N].
    With a single column this is the single-chain `halt` mode (every fallback answers with that column).
    """
    cols = list(cols)
    n, s_max = rec.q.shape[0], rec.steps
    q = rec.q[:, :, cols]  # [N, S, C']
    any_s = rules.halted(q, tau).any(2)  # [N, S]
    halted = any_s.any(1)
    first = torch.where(halted, any_s.float().argmax(1), torch.full((n,), s_max - 1))
    rows = torch.arange(n)
    _, chain = rules.first_halter(q[rows, first], tau)
    if fallback == "max_q":
        chain = torch.where(halted, chain, q[:, -1].argmax(1))
    elif fallback == "chain0":
        chain = torch.where(halted, chain, torch.zeros_like(chain))
    elif fallback != "prob_avg":
        raise ValueError(f"unknown fallback {fallback!r} (valid: {', '.join(FALLBACKS)})")
    col = torch.tensor(cols)[chain]
    out = {
        "step": first,
        "halted": halted,
        "correct": rec.correct[rows, first, col],
        "cells_right": rec.cells_right[rows, first, col].long(),
        "blanks_right": rec.blanks_right[rows, first, col].long(),
    }
    if fallback == "prob_avg" and len(cols) > 1:
        if sorted(cols) != sorted(rec.avg_cols):
            raise ValueError("the record pooled other chains than these; record with avg_cols=cols")
        last = s_max - 1
        out["correct"] = torch.where(halted, out["correct"], rec.avg_correct[:, last])
        out["cells_right"] = torch.where(halted, out["cells_right"], rec.avg_cells_right[:, last].long())
        out["blanks_right"] = torch.where(halted, out["blanks_right"], rec.avg_blanks_right[:, last].long())
    return out


def curve_point(rec: ChainRecord, cols: Sequence[int], tau: float, fallback: str, method: str, base_steps: int) -> dict:
    """One point of the accuracy vs cost curve: accuracy, mean ACT steps, chain-steps and f-calls per puzzle."""
    r = replay_halt_first(rec, cols, tau, fallback)
    n = max(rec.q.shape[0], 1)
    steps = (r["step"] + 1).double()
    chain_steps = steps * len(cols)
    f_per_step = sum(rec.f_calls[c] for c in cols)
    blanks = int(rec.n_blank.sum())
    return {
        "method": method,
        "tau": tau,
        "puzzle_acc": float(r["correct"].double().mean()) if rec.q.shape[0] else 0.0,
        "cell_acc": float(r["cells_right"].sum()) / (81 * n),
        "cell_acc_blank": float(r["blanks_right"].sum()) / blanks if blanks else 1.0,
        "mean_steps": float(steps.mean()) if rec.q.shape[0] else 0.0,
        "chain_steps_per_puzzle": float(chain_steps.sum()) / n,
        "f_calls_per_puzzle": float((steps * f_per_step).sum()) / n,
        "relative_cost": float(chain_steps.sum()) / n / base_steps,
        "halted_share": float(r["halted"].double().mean()) if rec.q.shape[0] else 0.0,
    }


def tau_curve(rec: ChainRecord, taus: Sequence[float] = DEFAULT_TAUS, *, base_col: int = 0,
              halt_first_cols: Sequence[int] | None = None, fallback: str = "chain0") -> list[dict]:
    """Accuracy vs mean steps over a grid of tau: single-chain `halt` (column `base_col`) and, if the record
    holds more than one chain, `halt_first` over `halt_first_cols` (default: the record's pooled columns).
    relative_cost is against one chain run for all recorded steps (the `full` mode).
    """
    cols = list(rec.avg_cols if halt_first_cols is None else halt_first_cols)
    points = []
    for tau in taus:
        points.append(curve_point(rec, [base_col], tau, "max_q", "halt", rec.steps))
        if len(cols) > 1:
            points.append(curve_point(rec, cols, tau, fallback, "halt_first", rec.steps))
    return points
