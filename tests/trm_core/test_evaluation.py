"""Evaluation modes agree where they must, map views back correctly, and count the cost they really pay."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from trm_core.config import ConfigError, ModelConfig
from trm_core.evaluation import Chain, chain_set, evaluate
from trm_core.evaluation import modes as M
from trm_core.evaluation.runner import digit_perms, run_chains
from trm_core.model import TRM

N, STEPS = 12, 3


def solved_grids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Valid solved grids (digits 1..9): the shifted-rows pattern under random digit, row and column shuffles."""
    base = np.array([[(r * 3 + r // 3 + c) % 9 for c in range(9)] for r in range(9)])
    out = []
    for _ in range(n):
        rows = np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])
        cols = np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])
        out.append(rng.permutation(9)[base[rows][:, cols]] + 1)
    return np.stack(out).reshape(n, 81)


def puzzle_set(n: int = N, seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    labels = solved_grids(n, rng) + 1  # tokens 2..10
    inputs = labels.copy()
    for i in range(n):
        inputs[i, rng.choice(81, size=rng.integers(20, 50), replace=False)] = 1
    return SimpleNamespace(inputs=inputs.astype(np.uint8), labels=labels.astype(np.uint8),
                           ratings=rng.random(n).astype(np.float32))


def tiny(k: int = 1, seed: int = 0, q_std: float = 3.0) -> TRM:
    """A random-init tiny TRM whose halting head is random too, so that sigmoid(q) crosses mid-range taus."""
    torch.manual_seed(seed)
    model = TRM(ModelConfig(hidden=16, multiple_of=16, h_cycles=1, l_cycles=1, max_act_steps=STEPS, k=k)).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, q_std)
        model.q_head.bias.zero_()
    return model


def count_rows(model) -> list[int]:
    """Make model.act_step record the rows of every call (the chain-steps really executed)."""
    calls: list[int] = []
    inner = model.act_step

    def counted(x, z_H, z_L):
        calls.append(x.shape[0])
        return inner(x, z_H, z_L)

    model.act_step = counted
    return calls


class Oracle(nn.Module):
    """A stand-in with the TRM interface whose logits are the one-hot of the solution of whatever view it sees."""

    def __init__(self, data, views: list[int], perms: torch.Tensor, k: int = 1, q: float = 10.0):
        super().__init__()
        from trm_core import augment

        self.cfg = ModelConfig(hidden=4, multiple_of=4, h_cycles=1, l_cycles=1, max_act_steps=STEPS, k=k)
        self.register_buffer("H_init", torch.zeros(1, 1))
        self.q = q
        self.table = {}
        x, y = torch.as_tensor(data.inputs).long(), torch.as_tensor(data.labels).long()
        for t in views:
            for p in [None, *range(len(perms))]:
                xv, yv = augment.dihedral(x, t), augment.dihedral(y, t)
                if p is not None:
                    pp = perms[p].unsqueeze(0).expand(len(x), -1)
                    xv, yv = augment.relabel_digits(xv, pp), augment.relabel_digits(yv, pp)
                self.table.update({bytes(a.to(torch.uint8).numpy()): b for a, b in zip(xv, yv)})

    def embed(self, tokens):
        return tokens.float().unsqueeze(-1)

    def init_h(self, n):
        return torch.zeros(n, 82, 1)

    def init_l(self, chain, fresh=False, generator=None):
        return torch.zeros(chain.shape[0], 82, 1)

    def act_step(self, x, z_H, z_L):
        grids = x[:, 1:, 0].long()
        labels = torch.stack([self.table[bytes(g.to(torch.uint8).numpy())] for g in grids])
        return z_H, z_L, 10 * nn.functional.one_hot(labels, 12).float(), torch.full((len(x),), self.q)


class Scripted(nn.Module):
    """Chain k always answers digit token k+2; its q at step s is script[k, s-1]. Tells who answered, when."""

    def __init__(self, script: torch.Tensor):
        super().__init__()
        k = script.shape[0]
        self.cfg = ModelConfig(hidden=4, multiple_of=4, h_cycles=1, l_cycles=1, max_act_steps=script.shape[1], k=k)
        self.register_buffer("H_init", torch.zeros(1, 1))
        self.script = script

    def embed(self, tokens):
        return tokens.float().unsqueeze(-1)

    def init_h(self, n):
        return torch.zeros(n, 82, 1)

    def init_l(self, chain, fresh=False, generator=None):
        return chain.float().view(-1, 1, 1).expand(-1, 82, 1)

    def act_step(self, x, z_H, z_L):
        z_H = z_H + 1  # z_H counts the steps taken
        chain, step = z_L[:, 0, 0].long(), z_H[:, 0, 0].long()
        logits = 10 * nn.functional.one_hot(chain + 2, 12).float().unsqueeze(1).expand(-1, 81, -1)
        return z_H, z_L, logits, self.script[chain, step - 1]


@pytest.fixture(scope="module")
def data():
    return puzzle_set()


def test_k1_one_view_every_mode_equals_full_at_the_matching_step(data):
    model = tiny(k=1)
    x = torch.as_tensor(data.inputs).long()
    full_at = {s: M.full([model], x, max_steps=s, batch_size=5).preds for s in range(1, STEPS + 1)}
    chains = chain_set([model])
    assert chains == [Chain()]
    for tau in (0.3, 0.6):
        for run in (M.halt([model], x, tau=tau, max_steps=STEPS, batch_size=5),
                    M.halt_first([model], x, chains, tau=tau, max_steps=STEPS, batch_size=5)):
            expect = np.stack([full_at[s][i] for i, s in enumerate(run.halt_step)])
            assert np.array_equal(run.preds, expect)
    assert np.array_equal(M.prob_avg([model], x, chains, max_steps=STEPS, batch_size=5).preds, full_at[STEPS])


def test_oracle_scores_100_percent_under_every_view(data):
    perms = digit_perms(2, seed=3)
    oracle = Oracle(data, list(range(8)), perms, k=1, q=-10.0)  # never halts: halt_first uses its fallback
    res = evaluate(oracle, data, ["full", "halt", "halt_first", "prob_avg", "tta"], views="dihedral8",
                   n_digit_perms=2, tta_digit_perms=2, taus=None, seed=3, device="cpu", batch_size=5)
    for row in res.rows:
        assert row["puzzle_acc"] == 1.0 and row["cell_acc"] == 1.0, row["method"]
    # Pooled views could outvote one wrongly mapped view, so each view (and relabelling) is also scored alone.
    for t in range(8):
        for n_perms in (0, 1):
            alone = evaluate(oracle, data, ["prob_avg"], views=[t], n_digit_perms=n_perms, taus=None, seed=3, device="cpu")
            assert alone.row("prob_avg")["cell_acc"] == 1.0, (t, n_perms)
    assert res.row("tta")["chain_steps_per_puzzle"] == 8 * 2 * STEPS
    halting = Oracle(data, list(range(8)), perms, q=10.0)
    res = evaluate(halting, data, ["halt_first"], views="dihedral8", n_digit_perms=2, taus=None, seed=3, device="cpu")
    assert res.row("halt_first")["puzzle_acc"] == 1.0
    assert res.row("halt_first")["chain_steps_per_puzzle"] == 16  # everyone halts at step 1


def test_halt_first_answers_with_the_earliest_halter_and_breaks_ties_by_q(data):
    x = torch.as_tensor(data.inputs).long()
    # chain 0 never halts; chain 1 halts at step 3; chains 2 and 3 both at step 2, chain 3 more confident.
    script = torch.tensor([[-5.0, -5, -5], [-5, -5, 5], [-5, 2, 5], [-5, 4, 5]])
    model = Scripted(script)
    run = M.halt_first([model], x, chain_set([model]), tau=0.5, max_steps=3, batch_size=5)
    assert (run.preds == 3 + 2).all() and (run.halt_step == 2).all()
    assert run.chain_steps == 2 * 4 * len(x)
    never = Scripted(torch.full((3, 3), -5.0))
    fallback = M.halt_first([never], x, chain_set([never]), tau=0.5, max_steps=3, batch_size=5, fallback="max_q")
    assert (fallback.halt_step == 3).all() and (fallback.preds == 2).all()  # all q equal: the first chain


def test_tau_curve_replays_explicit_runs_exactly(data):
    models = [tiny(k=2, seed=0), tiny(k=2, seed=1)]
    res = evaluate(models, data, [], taus=(0.2, 0.5, 0.8), device="cpu", batch_size=4)
    curve = {(p["method"], p["tau"]): p for p in res.tau_curve}
    assert 0 < curve[("halt", 0.5)]["mean_steps"] < STEPS  # the taus really stop some puzzles early
    for tau in (0.2, 0.5, 0.8):
        explicit = evaluate(models, data, ["halt", "halt_first"], tau=tau, taus=None, device="cpu", batch_size=4)
        for method in ("halt", "halt_first"):
            row, point = explicit.row(method), curve[(method, tau)]
            for key in ("puzzle_acc", "cell_acc", "cell_acc_blank", "chain_steps_per_puzzle", "f_calls_per_puzzle", "relative_cost"):
                assert row[key] == pytest.approx(point[key], abs=1e-12), (method, tau, key)


def test_cost_counters_equal_the_chain_steps_executed(data):
    models = [tiny(k=2, seed=0), tiny(k=1, seed=1)]
    calls = [count_rows(m) for m in models]
    for mode, methods in (("full", ["full"]), ("halt", ["halt"]), ("halt_first", ["halt_first"]),
                          ("prob_avg", ["prob_avg"]), ("tta", ["tta", "tta_vote"])):
        for c in calls:
            c.clear()
        res = evaluate(models, data, [mode], views=[0, 1], tau=0.5, taus=None, device="cpu", batch_size=5)
        ran = sum(sum(c) for c in calls)
        f_per = [m.cfg.h_cycles * (m.cfg.l_cycles + 1) for m in models]
        for method in methods:
            row = res.row(method)
            assert row["chain_steps_per_puzzle"] * N == pytest.approx(ran)
            assert row["f_calls_per_puzzle"] * N == pytest.approx(sum(f * sum(c) for f, c in zip(f_per, calls)))
            assert row["relative_cost"] == pytest.approx(ran / N / STEPS)
    assert res.row("tta")["relative_cost"] == 8.0


def test_results_export_as_table_json_csv_and_flat_metrics(data, tmp_path):
    res = evaluate(tiny(k=2), data, ["full", "tta"], taus=(0.5,), device="cpu")
    m = res.metrics()
    assert m["eval_final/full/relative_cost"] == 1.0 and "eval_final/tta_vote/puzzle_acc" in m
    assert all(isinstance(v, float) for v in m.values())
    assert "chain-steps/puzzle" in res.to_table().splitlines()[0]
    loaded = json.loads(res.to_json(tmp_path / "r.json"))
    assert [r["method"] for r in loaded["rows"]] == ["full", "tta", "tta_vote"] and loaded["tau_curve"]
    assert res.to_csv().splitlines()[0].startswith("method,cell_acc,cell_acc_blank,puzzle_acc")
    assert res.per_puzzle["tta"].shape == (N,) and res.per_puzzle["tta"].dtype == bool
    assert {"oracle_acc", "q_calibration", "winners"} <= set(res.diagnostics)


def test_bad_mode_and_view_names_say_the_nearest_valid_one(data):
    with pytest.raises(ConfigError, match="did you mean 'halt_first'"):
        evaluate(tiny(), data, ["halt_frist"], device="cpu")
    with pytest.raises(ConfigError, match="did you mean 'rot4'"):
        evaluate(tiny(), data, ["full"], views="rot5", device="cpu")


def test_the_runner_refuses_a_mode_that_leaves_puzzles_unanswered(data):
    x = torch.as_tensor(data.inputs).long()
    never = lambda step, logits, q, final: (torch.zeros(len(q), dtype=torch.bool), logits[:, 0].argmax(-1))
    with pytest.raises(RuntimeError, match="unanswered"):
        run_chains([tiny()], [Chain()], x, never, max_steps=2, batch_size=4)
