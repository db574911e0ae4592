"""Who is compared with whom: finished trials, their baseline trials, and the vs-TTA comparisons, as pure
functions over the sweep folder (no Ray, Optuna or MLflow). The driver calls `update` whenever a trial
completes; tracking back ends only read what it wrote.

Every trial's final evaluation includes the TTA family (trm_core.evaluation), so the baseline is the TTA
result of the trials whose configuration is a baseline configuration (`baseline` in trial.json). A trial is
compared against the baseline trial of the same seed when there is one (else the lowest seed), paired
puzzle by puzzle, once per TTA rule; each configuration's seeds are also pooled. The rule with the highest
mean baseline accuracy is the default reference ("the strongest TTA"). Writes:

    trials/tNNNN/final/vs_tta.json   per rule: trial-level and configuration-level comparisons, verdicts
    report/baseline.json            per TTA rule: mean and std over the baseline seeds; the strongest rule

A comparison is recomputed only when the trials it pools change (its `stamp`), so a resume neither repeats
nor skips one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.results import compare, final_eval
from sweeper.util.files import read_json, write_json

VS_FILE = "vs_tta.json"
BASELINE_FILE = "baseline.json"


@dataclass(frozen=True)
class Finished:
    """A trial that trained to its last step and has a final evaluation."""

    number: int
    seed: int
    key: str
    """Configuration key (equal for the seeds of one configuration)."""
    label: str
    baseline: bool
    steps: int
    work: Path
    results: dict[str, Any]
    per: compare.PerPuzzle


def finished_trials(sweep_dir: Path) -> list[Finished]:
    """The sweep's trials with a complete final evaluation, by number."""
    out = []
    for work in sorted((Path(sweep_dir) / "trials").glob("t*")):
        plan = (read_json(work / "trial.json") or {}).get("plan")
        results = final_eval.load_results(work)
        if not plan or not results:
            continue
        per = compare.PerPuzzle.load(final_eval.final_dir(work) / final_eval.PER_PUZZLE)
        out.append(Finished(number=plan["number"], seed=plan["seed"], key=plan["config_key"], label=plan["label"],
                            baseline=plan["baseline"], steps=int(plan["config"]["steps"]), work=work,
                            results=results, per=per))
    return out


def tta_rules(results: dict[str, Any]) -> list[str]:
    """The TTA rows of a final evaluation (methods named tta*), in their order."""
    return [r["method"] for r in results["rows"] if r["method"].startswith("tta")]


def baseline_of(trials: list[Finished]) -> dict[int, Finished]:
    """seed -> the baseline trial of that seed (the lowest number when several)."""
    by_seed: dict[int, Finished] = {}
    for t in trials:
        if t.baseline:
            by_seed.setdefault(t.seed, t)
    return by_seed


def update(sweep_dir: Path) -> dict[str, Any] | None:
    """Make every comparison that the finished trials allow (see the module docstring); returns the
    baseline summary, or None while no baseline trial has finished."""
    trials = finished_trials(sweep_dir)
    by_seed = baseline_of(trials)
    if not by_seed:
        return None
    summary = baseline_summary([by_seed[s] for s in sorted(by_seed)])
    report = Path(sweep_dir) / "report"
    report.mkdir(parents=True, exist_ok=True)
    if read_json(report / BASELINE_FILE) != summary:
        write_json(report / BASELINE_FILE, summary)
    base = lambda t: by_seed.get(t.seed) or by_seed[min(by_seed)]  # noqa: E731
    groups: dict[str, list[Finished]] = {}
    for t in trials:
        groups.setdefault(t.key, []).append(t)
    for members in groups.values():
        stamp = [[m.number, base(m).number] for m in members]
        for m in members:
            _compare_one(m, base(m), members, base, stamp, summary)
    return summary


def baseline_summary(bases: list[Finished]) -> dict[str, Any]:
    """Per TTA rule and row metric: mean and std over the baseline seeds; the strongest rule."""
    rules: dict[str, dict[str, float]] = {}
    for rule in tta_rules(bases[0].results):
        rows = [next(r for r in b.results["rows"] if r["method"] == rule) for b in bases if rule in tta_rules(b.results)]
        stats = {}
        for k in final_eval.ROW_METRICS:
            mean, std = compare.seed_summary([r[k] for r in rows if k in r])
            stats[k], stats[f"{k}_std"] = mean, std
        rules[rule] = stats
    strongest = max(rules, key=lambda r: rules[r]["puzzle_acc"])
    first = bases[0]
    return {"trials": [b.number for b in bases], "seeds": [b.seed for b in bases], "config": first.label,
            "config_key": first.key, "rules": rules, "strongest": strongest, "label": data_label(first.results)}


def data_label(results: dict[str, Any]) -> str:
    """What the puzzles were (e.g. 'shipped puzzles, not Sudoku-Extreme'), as the evaluation recorded it."""
    return str((results.get("meta") or {}).get("data_label") or "")


def _compare_one(t: Finished, base: Finished, members: list[Finished], base_of, stamp: list, summary: dict) -> None:
    path = final_eval.final_dir(t.work) / VS_FILE
    done = read_json(path) or {}
    if done.get("stamp") == stamp and done.get("rules") == list(summary["rules"]):
        return
    trial, config = {}, {}
    for rule in summary["rules"]:
        if rule not in base.per.correct:
            continue
        res = compare.compare_files([t.per], [base.per], base_mode=rule, seed=t.number)
        trial[rule] = {**res.values(), "verdict": res.verdict()}
        pooled = compare.compare_files([m.per for m in members], [base_of(m).per for m in members],
                                       base_mode=rule, seed=0)
        config[rule] = {**pooled.values(), "verdict": pooled.verdict()}
    write_json(path, {"stamp": stamp, "rules": list(summary["rules"]), "baseline_trial": base.number,
                      "seeds": len(members), "trial": trial, "config": config})


def comparisons(work: Path) -> dict[str, Any] | None:
    """A trial's vs_tta.json, or None."""
    return read_json(final_eval.final_dir(work) / VS_FILE)


def summary(sweep_dir: Path) -> dict[str, Any] | None:
    """The sweep's report/baseline.json, or None."""
    return read_json(Path(sweep_dir) / "report" / BASELINE_FILE)
