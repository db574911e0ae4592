"""Is a configuration better than the TTA baseline, or only higher? Paired statistics on per-puzzle results.

Both sides are evaluated on the same held-out puzzles, so each puzzle gives a pair (trial right?,
baseline right?). Two questions get two answers:

- does the accuracy differ? McNemar's exact test: only the discordant pairs carry information; under
  the null each of them falls either way with probability 1/2, so the count b (trial right, baseline
  wrong) is Binomial(b + c, 1/2) (McNemar 1947; the exact form is the two-sided binomial test);
- by how much? The percentile bootstrap 95% interval of the accuracy delta, resampling puzzles.

Several seeds of one configuration pool their pairs (seed s against the baseline's seed s); the
bootstrap then resamples puzzles within each seed, so each seed keeps its weight.

Pure numpy/scipy: no MLflow, no torch. `sweeper.results.final_eval` writes the per_puzzle.npz files read here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

BOOTSTRAP_SAMPLES = 4000
"""Bootstrap resamples for the delta interval (the percentile ends move by < 0.5% of a puzzle at this count)."""
PRIMARY_MODE = "halt_first"
"""The mode that stands for a configuration: its K chains in lock-step, the first to halt answers. With
K=1 this is plain halting. It is what the method would run at inference, so it is what gets compared."""
BASELINE_MODE = "tta"
"""The baseline's mode: one chain on the 8 dihedral views, probabilities averaged."""


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """A configuration against the baseline on the puzzles both were evaluated on."""

    n: int
    """Puzzle pairs compared (summed over seeds when pooled)."""
    acc: float
    """Puzzle accuracy of the trial side on those puzzles."""
    base_acc: float
    """Puzzle accuracy of the baseline on those puzzles."""
    delta: float
    """acc - base_acc."""
    ci_low: float
    """Lower end of the bootstrap 95% interval of delta."""
    ci_high: float
    """Upper end of the bootstrap 95% interval of delta."""
    p_value: float
    """McNemar exact two-sided p-value (1.0 when no pair is discordant)."""
    wins: int
    """Puzzles the trial gets right and the baseline wrong."""
    losses: int
    """Puzzles the baseline gets right and the trial wrong."""
    cost_ratio: float
    """Trial cost per puzzle / baseline cost per puzzle (f-calls; nan if unknown)."""

    def values(self) -> dict[str, float]:
        """The comparison as plain numbers: puzzle_acc_delta, delta_ci_low/high, p_value, cost_ratio, pairs,
        wins, losses."""
        keys = {"puzzle_acc_delta": self.delta, "delta_ci_low": self.ci_low, "delta_ci_high": self.ci_high,
                "p_value": self.p_value, "cost_ratio": self.cost_ratio, "pairs": self.n,
                "wins": self.wins, "losses": self.losses}
        return {k: float(v) for k, v in keys.items()}

    def metrics(self, prefix: str = "vs_tta") -> dict[str, float]:
        """Flat metrics for a tracking back end, e.g. {'vs_tta/p_value': 0.03, ...}."""
        return {f"{prefix}/{k}": v for k, v in self.values().items()}

    def verdict(self, alpha: float = 0.05) -> str:
        """'better', 'worse' or 'no difference' at level alpha."""
        if self.p_value < alpha:
            return "better" if self.delta > 0 else "worse"
        return "no difference"


def mcnemar_exact(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    n = wins + losses
    if n == 0:
        return 1.0
    # The binomial(n, 1/2) is symmetric, so the two-sided p is twice the smaller tail, capped at 1.
    from scipy import stats  # here: importing it takes ~1.3 s, and a sweep starts long before it compares

    return float(min(1.0, 2.0 * stats.binom.cdf(min(wins, losses), n, 0.5)))


def bootstrap_delta_ci(strata: Sequence[tuple[np.ndarray, np.ndarray]], samples: int = BOOTSTRAP_SAMPLES,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b) over pooled pairs, resampling within each stratum.

    The per-pair difference takes only the values -1, 0, +1, so resampling n pairs with replacement is
    exactly a multinomial draw of those three counts; this costs O(samples) instead of O(samples * n).
    """
    rng = np.random.default_rng(seed)
    total = sum(len(a) for a, _ in strata)
    if total == 0:
        return float("nan"), float("nan")
    diff_sum = np.zeros(samples)
    for a, b in strata:
        a, b = np.asarray(a, bool), np.asarray(b, bool)
        n = len(a)
        if n == 0:
            continue
        up, down = int(np.sum(a & ~b)), int(np.sum(~a & b))
        counts = rng.multinomial(n, [up / n, down / n, (n - up - down) / n], size=samples)
        diff_sum += counts[:, 0] - counts[:, 1]
    deltas = diff_sum / total
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return float(low), float(high)


def compare(pairs: Sequence[tuple[np.ndarray, np.ndarray]], cost: float = float("nan"),
            base_cost: float = float("nan"), seed: int = 0) -> Comparison:
    """Compare pooled (trial correct, baseline correct) boolean arrays, one pair of arrays per seed.

    cost and base_cost are per-puzzle costs in one unit (f-calls); their ratio is reported as is.
    """
    strata = [(np.asarray(a, bool), np.asarray(b, bool)) for a, b in pairs]
    for a, b in strata:
        if a.shape != b.shape:
            raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    a_all = np.concatenate([a for a, _ in strata]) if strata else np.zeros(0, bool)
    b_all = np.concatenate([b for _, b in strata]) if strata else np.zeros(0, bool)
    n = len(a_all)
    wins, losses = int(np.sum(a_all & ~b_all)), int(np.sum(~a_all & b_all))
    acc = float(a_all.mean()) if n else float("nan")
    base = float(b_all.mean()) if n else float("nan")
    low, high = bootstrap_delta_ci(strata, seed=seed)
    ratio = cost / base_cost if base_cost and np.isfinite(base_cost) and base_cost > 0 else float("nan")
    return Comparison(n=n, acc=acc, base_acc=base, delta=acc - base, ci_low=low, ci_high=high,
                      p_value=mcnemar_exact(wins, losses), wins=wins, losses=losses, cost_ratio=float(ratio))


# -- per-puzzle files -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PerPuzzle:
    """One trial's final evaluation: puzzle ids, correctness and cost per mode (see final_eval.save)."""

    ids: np.ndarray
    """[N] uint64 puzzle ids (a hash of the puzzle's input grid), so results pair by puzzle, not by row."""
    correct: dict[str, np.ndarray]
    """mode -> [N] bool."""
    cost: dict[str, float]
    """mode -> f-calls per puzzle."""

    @classmethod
    def load(cls, path: str | Path) -> "PerPuzzle":
        """Read a per_puzzle.npz (arrays `ids`, `correct/<mode>`, `cost/<mode>`)."""
        with np.load(path, allow_pickle=False) as z:
            correct = {k.split("/", 1)[1]: z[k].astype(bool) for k in z.files if k.startswith("correct/")}
            cost = {k.split("/", 1)[1]: float(z[k]) for k in z.files if k.startswith("cost/")}
            return cls(z["ids"].astype(np.uint64), correct, cost)


def paired(trial: PerPuzzle, base: PerPuzzle, mode: str = PRIMARY_MODE,
           base_mode: str = BASELINE_MODE) -> tuple[np.ndarray, np.ndarray]:
    """(trial correct, baseline correct) on the puzzles both evaluated, in the trial's order."""
    where = {int(i): k for k, i in enumerate(base.ids)}
    rows = [(k, where[int(i)]) for k, i in enumerate(trial.ids) if int(i) in where]
    if not rows:
        return np.zeros(0, bool), np.zeros(0, bool)
    t_idx, b_idx = map(np.asarray, zip(*rows))
    return trial.correct[mode][t_idx], base.correct[base_mode][b_idx]


def compare_files(trials: Sequence[PerPuzzle], bases: Sequence[PerPuzzle], mode: str = PRIMARY_MODE,
                  base_mode: str = BASELINE_MODE, seed: int = 0) -> Comparison:
    """Pool trials[i] against bases[i] (same seed where possible) into one Comparison."""
    pairs = [paired(t, b, mode, base_mode) for t, b in zip(trials, bases)]
    cost = float(np.mean([t.cost.get(mode, np.nan) for t in trials]))
    base_cost = float(np.mean([b.cost.get(base_mode, np.nan) for b in bases]))
    return compare(pairs, cost, base_cost, seed=seed)


def seed_summary(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample std) over seeds; std is 0 for a single seed and nan for none."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0
