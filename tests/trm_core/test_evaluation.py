"""Evaluation modes agree where they must, map views back correctly, and count the cost they really pay."""
from __future__ import annotations

import copy
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from trm_core.config import ConfigError, ModelConfig
from trm_core.evaluation import Chain, EvalConfig, RunOptions, chain_set, evaluate
from trm_core.evaluation import modes as M
from trm_core.evaluation.chains import run_chains
from trm_core.evaluation.views import digit_perms, perm_family
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
    """Chain k always answers digit token answers[k] (default k+2); its q at step s is script[k, s-1].
    Tells who answered, when."""

    def __init__(self, script: torch.Tensor, answers: torch.Tensor | None = None):
        super().__init__()
        k = script.shape[0]
        self.cfg = ModelConfig(hidden=4, multiple_of=4, h_cycles=1, l_cycles=1, max_act_steps=script.shape[1], k=k)
        self.register_buffer("H_init", torch.zeros(1, 1))
        self.script = script
        self.answers = torch.arange(k) + 2 if answers is None else answers

    def embed(self, tokens):
        return tokens.float().unsqueeze(-1)

    def init_h(self, n):
        return torch.zeros(n, 82, 1)

    def init_l(self, chain, fresh=False, generator=None):
        return chain.float().view(-1, 1, 1).expand(-1, 82, 1)

    def act_step(self, x, z_H, z_L):
        z_H = z_H + 1  # z_H counts the steps taken
        chain, step = z_L[:, 0, 0].long(), z_H[:, 0, 0].long()
        logits = 10 * nn.functional.one_hot(self.answers[chain], 12).float().unsqueeze(1).expand(-1, 81, -1)
        return z_H, z_L, logits, self.script[chain, step - 1]


@pytest.fixture(scope="module")
def data():
    return puzzle_set()


def opts(steps: int = STEPS, batch: int = 5, **kw) -> RunOptions:
    return RunOptions(max_steps=steps, batch_rows=batch, **kw)


def test_k1_one_view_every_mode_equals_full_at_the_matching_step(data):
    model = tiny(k=1, seed=2)  # its halting head stops puzzles at steps 1, 2 and 3
    x = torch.as_tensor(data.inputs).long()
    full_at = {s: M.full([model], x, opts(s)).preds for s in range(1, STEPS + 1)}
    chains = chain_set([model])
    assert chains == [Chain()]
    for tau in (0.3, 0.9):
        for run in (M.halt([model], x, opts(), tau=tau), M.halt_first([model], x, chains, opts(), tau=tau)):
            assert 1 < len(set(run.halt_step)), "the taus must stop puzzles at different steps"
            expect = np.stack([full_at[s][i] for i, s in enumerate(run.halt_step)])
            assert np.array_equal(run.preds, expect)
    assert np.array_equal(M.prob_avg([model], x, chains, opts()).preds, full_at[STEPS])


def test_refilled_slots_answer_as_puzzles_run_alone(data):
    """Slots refilled as puzzles halt give each puzzle the answer, answer step and cost it gets alone in a
    batch of one, in every mode, also when the host reads the pool only every 5 steps (then empty slots run
    until the next read: padding, counted apart from the cost). 4 rows: 4 slots of one chain (full, halt);
    32 rows: 5 slots of the 6-chain set, 4 of the 8 TTA views; 12 puzzles."""
    models = [tiny(k=2, seed=2), tiny(k=1, seed=3)]
    calls = [count_rows(m) for m in models]
    modes = ("full", "halt", "halt_first", "prob_avg", "tta", "tta_perm")
    common = dict(modes=modes, views=[0, 5], n_digit_perms=1, tau=0.5, taus=None, device="cpu", seed=2)
    alone = evaluate(models, data, batch_rows=1, **common)
    for batch, sync in ((4, 1), (32, 1), (32, 5)):
        for c in calls:
            c.clear()
        res = evaluate(models, data, batch_rows=batch, sync_every=sync, **common)
        for row, ref in zip(res.rows, alone.rows):
            assert row["method"] == ref["method"]
            assert np.array_equal(res.per_puzzle[row["method"]], alone.per_puzzle[row["method"]]), (batch, row["method"])
            for key in ("cell_acc", "chain_steps_per_puzzle", "f_calls_per_puzzle", "mean_halt_step"):
                assert row[key] == ref[key], (batch, sync, row["method"], key)
        padding = res.meta["padding_rows"]
        runs = [m for m in padding if not m.endswith("_vote")]  # a vote row shares its averaging row's run
        assert sum(sum(c) for c in calls) == sum(res.row(m)["chain_steps_per_puzzle"] * N + padding[m] for m in runs)
        assert sum(padding.values()) == 0 if sync == 1 else padding["halt"] > 0
    steps = {r["method"]: r["chain_steps_per_puzzle"] for r in alone.rows}
    assert 1 < steps["halt"] < STEPS and steps["tta_halt_first"] < steps["tta"] == steps["tta_vote"] == 8 * STEPS


def test_oracle_scores_100_percent_under_every_view(data):
    perms = digit_perms(2, seed=3)
    family = perm_family(8, seed=3)  # the tta_perm views: identity first, then 7 relabellings
    seen = torch.cat([perms, family])  # every relabelling the oracle may be shown
    oracle = Oracle(data, list(range(8)), seen, k=1, q=-10.0)  # never halts: halt_first uses its fallback
    modes = ("full", "halt", "halt_first", "prob_avg", "tta", "tta_perm")
    for fallback in ("chain0", "prob_avg", "max_q"):
        res = evaluate(oracle, data, modes=modes, views="dihedral8", n_digit_perms=2, tta_digit_perms=2, taus=None,
                       seed=3, device="cpu", batch_rows=5, fallback=fallback)
        assert [r["method"] for r in res.rows] == ["full", "halt", "halt_first", "prob_avg", "tta", "tta_vote",
                                                   "tta_halt_first", "tta_perm", "tta_perm_vote", "tta_perm_halt_first"]
        for row in res.rows:
            assert row["puzzle_acc"] == 1.0 and row["cell_acc"] == 1.0, (fallback, row["method"])
    # Pooled views could outvote one wrongly mapped view, so each view (and relabelling) is also scored alone.
    for t in range(8):
        for n_perms in (0, 1):
            alone = evaluate(oracle, data, modes=("prob_avg",), views=[t], n_digit_perms=n_perms, taus=None, seed=3, device="cpu")
            assert alone.row("prob_avg")["cell_acc"] == 1.0, (t, n_perms)
    assert family[0].tolist() == list(range(9)) and len({tuple(p) for p in family.tolist()}) == 8
    x = torch.as_tensor(data.inputs).long()
    for p in range(8):  # each relabelling of the family alone
        run = M.prob_avg([oracle], x, [Chain(perm=p)], opts(perms=family))
        assert (run.preds == data.labels).all(), p
    assert res.row("tta")["chain_steps_per_puzzle"] == 8 * 2 * STEPS
    assert res.row("tta_perm")["chain_steps_per_puzzle"] == 8 * STEPS
    halting = Oracle(data, list(range(8)), seen, q=10.0)
    res = evaluate(halting, data, modes=("halt_first", "tta", "tta_perm"), views="dihedral8", n_digit_perms=2, taus=None,
                   seed=3, device="cpu")
    for method in ("halt_first", "tta_halt_first", "tta_perm_halt_first"):
        assert res.row(method)["puzzle_acc"] == 1.0
    assert res.row("halt_first")["chain_steps_per_puzzle"] == 16  # everyone halts at step 1
    assert res.row("tta_halt_first")["chain_steps_per_puzzle"] == res.row("tta_perm_halt_first")["chain_steps_per_puzzle"] == 8


def test_halt_first_answers_with_the_earliest_halter_and_breaks_ties_by_q(data):
    x = torch.as_tensor(data.inputs).long()
    # chain 0 never halts; chain 1 halts at step 3; chains 2 and 3 both at step 2, chain 3 more confident.
    script = torch.tensor([[-5.0, -5, -5], [-5, -5, 5], [-5, 2, 5], [-5, 4, 5]])
    model = Scripted(script)
    run = M.halt_first([model], x, chain_set([model]), opts(), tau=0.5)
    assert (run.preds == 3 + 2).all() and (run.halt_step == 2).all()
    assert run.chain_steps == 2 * 4 * len(x)


def test_halt_first_fallbacks_when_no_chain_halts(data):
    x = torch.as_tensor(data.inputs).long()
    # Nobody halts. Chains answer tokens 2, 3, 3, 4 (two agree); chain 3 has the largest final q.
    script = torch.tensor([[-5.0, -5, -3], [-5, -5, -4], [-5, -5, -4], [-5, -5, -1]])
    never = Scripted(script, answers=torch.tensor([2, 3, 3, 4]))
    answer = {}
    for fallback in ("chain0", "max_q", "prob_avg"):
        run = M.halt_first([never], x, chain_set([never]), opts(), tau=0.5, fallback=fallback)
        assert (run.halt_step == STEPS).all() and run.chain_steps == 4 * STEPS * len(x)
        assert (run.preds == run.preds[0, 0]).all()
        answer[fallback] = int(run.preds[0, 0])
    assert answer == {"chain0": 2, "max_q": 4, "prob_avg": 3}


def test_majority_vote_and_probability_average_can_disagree():
    from trm_core.evaluation.rules import majority_vote, prob_average

    logits = torch.zeros(1, 5, 81, 12)
    logits[0, :3, :, 3] = 0.5  # three chains lean weakly towards token 3
    logits[0, 3:, :, 4] = 9.0  # two chains are sure of token 4
    assert (majority_vote(logits) == 3).all() and (prob_average(logits) == 4).all()


def test_tau_curve_replays_explicit_runs_exactly(data):
    models = [tiny(k=2, seed=0, q_std=0.2), tiny(k=2, seed=1, q_std=0.2)]
    for fallback in ("chain0", "prob_avg", "max_q"):
        res = evaluate(models, data, modes=(), taus=(0.2, 0.5, 0.8), device="cpu", batch_rows=4, fallback=fallback)
        curve = {(p["method"], p["tau"]): p for p in res.tau_curve}
        assert 1 < curve[("halt", 0.8)]["mean_steps"] < STEPS  # tau 0.8 stops puzzles at different steps
        assert curve[("halt_first", 0.8)]["halted_share"] < 1  # and leaves some to the fallback
        for tau in (0.2, 0.5, 0.8):
            explicit = evaluate(models, data, modes=("halt", "halt_first"), tau=tau, taus=None, device="cpu",
                                batch_rows=4, fallback=fallback)
            for method in ("halt", "halt_first"):
                row, point = explicit.row(method), curve[(method, tau)]
                for key in ("puzzle_acc", "cell_acc", "cell_acc_blank", "chain_steps_per_puzzle", "f_calls_per_puzzle", "relative_cost"):
                    assert row[key] == pytest.approx(point[key], abs=1e-12), (fallback, method, tau, key)


def test_cost_counters_equal_the_chain_steps_executed(data):
    models = [tiny(k=2, seed=0), tiny(k=1, seed=1)]
    calls = [count_rows(m) for m in models]
    f_per = [m.cfg.h_cycles * (m.cfg.l_cycles + 1) for m in models]
    for mode, methods in (("full", ["full"]), ("halt", ["halt"]), ("halt_first", ["halt_first"]),
                          ("prob_avg", ["prob_avg"]), ("tta", ["tta", "tta_vote", "tta_halt_first"]),
                          ("tta_perm", ["tta_perm", "tta_perm_vote", "tta_perm_halt_first"])):
        for c in calls:
            c.clear()
        res = evaluate(models, data, modes=(mode,), views=[0, 1], tau=0.5, taus=None, device="cpu", batch_rows=5)
        ran = sum(sum(c) for c in calls)
        ran_f = sum(f * sum(c) for f, c in zip(f_per, calls))
        rows = [res.row(m) for m in methods]
        if mode.startswith("tta"):  # the family's two runs: averaging/vote (all steps) and halt-first
            assert rows[0]["chain_steps_per_puzzle"] == rows[1]["chain_steps_per_puzzle"] == 8 * STEPS
            assert (rows[0]["chain_steps_per_puzzle"] + rows[2]["chain_steps_per_puzzle"]) * N == ran
            assert (rows[0]["f_calls_per_puzzle"] + rows[2]["f_calls_per_puzzle"]) * N == ran_f
            assert rows[0]["relative_cost"] == 8.0
            continue
        assert rows[0]["chain_steps_per_puzzle"] * N == ran
        assert rows[0]["f_calls_per_puzzle"] * N == ran_f
        assert rows[0]["relative_cost"] == pytest.approx(ran / N / STEPS)


def test_mean_halt_step_of_full_is_the_step_halt_answers_at(data):
    model = tiny(k=1, seed=2)
    res = evaluate(model, data, modes=("full", "halt"), tau=0.5, taus=None, device="cpu", batch_rows=5)
    halt = res.row("halt")
    assert 1 < halt["mean_halt_step"] < STEPS
    assert res.row("full")["mean_halt_step"] == halt["mean_halt_step"] == halt["chain_steps_per_puzzle"]


def test_latent_init_rule_for_fresh_init_models(data):
    fixed = tiny(k=2)
    fresh = tiny(k=2)
    fresh.cfg = dataclasses.replace(fixed.cfg, z_l_init="fresh")
    common = dict(modes=("full", "halt_first"), taus=None, device="cpu", batch_rows=5)
    ref = evaluate(fixed, data, **common)
    as_ref = evaluate(fresh, data, **common)  # default l_init: L_init rows, as the reference evaluates
    noisy = [evaluate(fresh, data, z_l_init="fresh", seed=s, **common) for s in (0, 0, 1)]
    assert [r["cell_acc"] for r in as_ref.rows] == [r["cell_acc"] for r in ref.rows]
    assert noisy[0].rows[0]["cell_acc"] == noisy[1].rows[0]["cell_acc"]  # seeded
    assert noisy[0].rows[0]["cell_acc"] != ref.rows[0]["cell_acc"] != noisy[2].rows[0]["cell_acc"]
    ignored = evaluate(fixed, data, z_l_init="fresh", **common)  # fixed-init models always start from L_init
    assert [r["cell_acc"] for r in ignored.rows] == [r["cell_acc"] for r in ref.rows]


def test_pure_bf16_precision_runs_a_bf16_copy(data):
    model = tiny(k=1)
    res = evaluate(model, data, modes=("full",), precision="bf16", taus=None, device="cpu")
    assert next(model.parameters()).dtype == torch.float32  # the caller's module is untouched
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    same = evaluate(bf16, data, modes=("full",), precision="bf16", taus=None, device="cpu")
    assert res.row("full")["cell_acc"] == same.row("full")["cell_acc"]
    assert res.per_puzzle["full"].tolist() == same.per_puzzle["full"].tolist()


def test_results_export_as_table_json_csv_and_flat_metrics(data, tmp_path):
    res = evaluate(tiny(k=2), data, modes=("full", "tta"), taus=(0.5,), device="cpu")
    m = res.metrics()
    assert m["eval_final/full/relative_cost"] == 1.0 and "eval_final/tta_vote/puzzle_acc" in m
    assert all(isinstance(v, float) for v in m.values())
    assert "chain-steps/puzzle" in res.to_table().splitlines()[0]
    loaded = json.loads(res.to_json(tmp_path / "r.json"))
    assert [r["method"] for r in loaded["rows"]] == ["full", "tta", "tta_vote", "tta_halt_first"] and loaded["tau_curve"]
    assert res.to_csv().splitlines()[0].startswith("method,cell_acc,cell_acc_blank,puzzle_acc")
    assert res.per_puzzle["tta"].shape == (N,) and res.per_puzzle["tta"].dtype == bool
    assert {"oracle_acc", "q_calibration", "winners"} <= set(res.diagnostics)


def test_bad_names_say_the_nearest_valid_one(data):
    with pytest.raises(ConfigError, match="did you mean 'halt_first'"):
        evaluate(tiny(), data, modes=("halt_frist",), device="cpu")
    with pytest.raises(ConfigError, match="row of mode 'tta_perm'"):
        EvalConfig(modes=("tta_perm_vote",))
    with pytest.raises(ConfigError, match="did you mean 'rot4'"):
        evaluate(tiny(), data, modes=("full",), views="rot5", device="cpu")
    with pytest.raises(ConfigError, match="did you mean 'batch_rows'"):
        evaluate(tiny(), data, batch_rws=4)
    with pytest.raises(ConfigError, match="fallback"):
        EvalConfig(fallback="chain1")


def test_the_runner_refuses_a_mode_that_leaves_puzzles_unanswered(data):
    x = torch.as_tensor(data.inputs).long()
    never = lambda step, logits, q, final: (torch.zeros_like(final), logits[:, 0].argmax(-1))  # noqa: E731
    with pytest.raises(RuntimeError, match="unanswered"):
        run_chains([tiny()], [Chain()], x, never, opts(2, 4))
