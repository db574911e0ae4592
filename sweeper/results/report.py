"""The paper-style table of a sweep (`sweeper report`), built from records (sweeper.results.records: from
the sweep folder or from MLflow runs).

One row per configuration (its seeds pooled): puzzle accuracy mean over seeds with its 95% interval
(Student t over the seed means), cell accuracy, mean halting step, relative cost and efficiency of the
configuration's own inference (compare.PRIMARY_MODE: halt-first over its K chains), and its difference
from the reference TTA rule on the same puzzles, with the bootstrap 95% interval, McNemar p-value and
verdict; best first. Each TTA rule of the baseline is a row too; the reference rule (default: the
strongest, i.e. highest baseline accuracy) is marked.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from scipy import stats

from sweeper.results import compare
from sweeper.util.names import trial_name

COLUMNS = (("configuration", "configuration"), ("seeds", "seeds"), ("puzzle acc [95% CI]", "puzzle_acc"),
           ("cell acc", "cell_acc"), ("halt step", "halt_step"), ("rel. cost", "relative_cost"),
           ("efficiency", "efficiency"), ("Δ vs TTA [95% CI]", "delta"), ("p", "p_value"), ("vs TTA", "verdict"))
"""(header, key) of the rendered table."""
RAW_KEYS = ("configuration", "role", "rule", "seeds", "trials", "puzzle_acc_mean", "puzzle_acc_std", "ci_half_width",
            "cell_acc", "halt_step", "relative_cost", "efficiency", "cost_ratio", "delta", "ci_low", "ci_high",
            "p_value", "verdict")
"""Columns of the CSV (numbers unformatted)."""


def reference_rule(runs: Sequence[dict[str, Any]], rule: str | None = None) -> str | None:
    """The TTA rule the table compares with: `rule` if given, else the baseline's strongest."""
    if rule:
        return rule
    base = [r for r in runs if r["tags"].get("sweeper.role") == "baseline"]
    return base[0]["tags"].get("sweeper.vs_tta_rule") if base else None


def build_table(runs: Sequence[dict[str, Any]], rule: str | None = None) -> list[dict[str, Any]]:
    """Rows (dicts with RAW_KEYS) for the completed trials of a sweep plus one per TTA rule; best first."""
    ref = reference_rule(runs, rule)
    prefix = f"vs_config/{ref}" if ref else "vs_tta_config"
    groups: dict[str, list[dict]] = {}
    for r in runs:
        tags = r["tags"]
        if tags.get("sweeper.role") == "trial" and tags.get("sweeper.state") == "COMPLETE" \
                and f"final/{compare.PRIMARY_MODE}/puzzle_acc" in r["metrics"]:
            groups.setdefault(tags.get("sweeper.config_key", r["name"]), []).append(r)
    rows = [_config_row(sorted(m, key=_number), prefix, ref) for m in groups.values()]
    rows += [_rule_row(r, k, ref) for r in runs if r["tags"].get("sweeper.role") == "baseline"
             for k in sorted({m.split("/")[1] for m in r["metrics"] if m.startswith("final/tta")})]
    return sorted(rows, key=lambda row: -row["puzzle_acc_mean"] if math.isfinite(row["puzzle_acc_mean"]) else math.inf)


def _number(run: dict) -> int:
    return int(run["tags"].get("sweeper.trial_number", 0))


def _final(run: dict, key: str, mode: str = compare.PRIMARY_MODE) -> float:
    return run["metrics"].get(f"final/{mode}/{key}", math.nan)


def _config_row(members: list[dict], prefix: str, ref: str | None) -> dict[str, Any]:
    accs = [_final(r, "puzzle_acc") for r in members]
    mean, std = compare.seed_summary(accs)
    # The pooled comparison over the most seeds (it is updated as seeds finish).
    pooled = max(members, key=lambda r: r["metrics"].get("vs_tta_config/seeds", 0))
    cmp = {k: pooled["metrics"].get(f"{prefix}/{k}", math.nan)
           for k in ("puzzle_acc_delta", "delta_ci_low", "delta_ci_high", "p_value", "cost_ratio")}
    tags = members[0]["tags"]
    is_base = tags.get("sweeper.is_baseline") == "true"
    return {"configuration": tags.get("sweeper.config", "?") + (" (baseline config)" if is_base else ""),
            "role": "trial", "rule": "", "seeds": len(members), "trials": ",".join(trial_name(_number(r)) for r in members),
            "puzzle_acc_mean": mean, "puzzle_acc_std": std, "ci_half_width": seed_half_width(accs),
            "cell_acc": _mean([_final(r, "cell_acc") for r in members]),
            "halt_step": _mean([_final(r, "chain_steps_per_puzzle", "halt") for r in members]),
            "relative_cost": _mean([_final(r, "relative_cost") for r in members]),
            "efficiency": _mean([_final(r, "efficiency") for r in members]),
            "cost_ratio": cmp["cost_ratio"], "delta": cmp["puzzle_acc_delta"], "ci_low": cmp["delta_ci_low"],
            "ci_high": cmp["delta_ci_high"], "p_value": cmp["p_value"],
            "verdict": pooled["tags"].get(f"sweeper.{prefix.replace('/', '.')}", "")}


def _rule_row(run: dict, rule: str, ref: str | None) -> dict[str, Any]:
    m, n = run["metrics"], int(run["metrics"].get("baseline/seeds", 0))
    std = m.get(f"baseline/{rule}/puzzle_acc_std", math.nan)
    t = stats.t.ppf(0.975, n - 1) if n > 1 else math.nan
    return {"configuration": f"TTA {rule}: {run['tags'].get('sweeper.config', '?')}", "role": "baseline",
            "rule": rule, "seeds": n, "trials": run["tags"].get("sweeper.baseline_trials", ""),
            "puzzle_acc_mean": m.get(f"final/{rule}/puzzle_acc", math.nan), "puzzle_acc_std": std,
            "ci_half_width": t * std / math.sqrt(n) if n > 1 else math.nan,
            "cell_acc": m.get(f"final/{rule}/cell_acc", math.nan), "halt_step": math.nan,
            "relative_cost": m.get(f"final/{rule}/relative_cost", math.nan),
            "efficiency": m.get(f"final/{rule}/efficiency", math.nan), "cost_ratio": math.nan, "delta": math.nan,
            "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan,
            "verdict": "reference" if rule == ref else ""}


def seed_half_width(values: Sequence[float], level: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean over seeds (nan for fewer than two seeds)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if len(vals) < 2:
        return math.nan
    _, std = compare.seed_summary(vals)
    return float(stats.t.ppf(0.5 + level / 2, len(vals) - 1) * std / math.sqrt(len(vals)))


def _mean(values: Sequence[float]) -> float:
    return compare.seed_summary(values)[0]


def _pct(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{100 * v:.1f}%"


def _cells(row: dict[str, Any]) -> dict[str, str]:
    """Display strings of one row (COLUMNS keys)."""
    delta = "–"
    if math.isfinite(row["delta"]) and row["role"] == "trial":
        delta = f"{100 * row['delta']:+.1f} pp"
        if math.isfinite(row["ci_low"]):
            delta += f" [{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]"
    acc = _pct(row["puzzle_acc_mean"])
    if math.isfinite(row["ci_half_width"]):
        acc += f" ± {100 * row['ci_half_width']:.1f}"
    fmt = lambda v, spec: "–" if not math.isfinite(v) else format(v, spec)  # noqa: E731
    return {"configuration": row["configuration"], "seeds": str(row["seeds"]), "puzzle_acc": acc,
            "cell_acc": _pct(row["cell_acc"]), "halt_step": fmt(row["halt_step"], ".2f"),
            "relative_cost": fmt(row["relative_cost"], ".2f"), "efficiency": fmt(row["efficiency"], ".3f"),
            "delta": delta, "p_value": _p(row["p_value"]), "verdict": row["verdict"] or "–"}


def _p(v: float) -> str:
    """A p-value; one below the smallest double is computed as 0, which would read as 'impossible'."""
    if not math.isfinite(v):
        return "–"
    return "< 1e-300" if v < 1e-300 else format(v, ".3g")


def render(rows: Sequence[dict[str, Any]], fmt: str = "table") -> str:
    """The table as fixed-width text ('table'), 'markdown', or 'csv' (raw numbers, RAW_KEYS)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(RAW_KEYS), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    head = [h for h, _ in COLUMNS]
    body = [[_cells(r)[k] for _, k in COLUMNS] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]) + "\n"
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)]) + "\n"


def render_trials(runs: Sequence[dict[str, Any]]) -> str:
    """One CSV line per trial run: number, state, configuration, seed, final and vs_tta metrics."""
    keys = [f"final/{compare.PRIMARY_MODE}/puzzle_acc", f"final/{compare.PRIMARY_MODE}/relative_cost",
            "vs_tta/puzzle_acc_delta", "vs_tta/delta_ci_low", "vs_tta/delta_ci_high", "vs_tta/p_value",
            "vs_tta/cost_ratio"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "status", "state", "configuration", "seed", "vs_tta_rule", *keys])
    for r in sorted((r for r in runs if r["tags"].get("sweeper.role") == "trial"), key=_number):
        t = r["tags"]
        w.writerow([t.get("sweeper.trial_number"), r["status"], t.get("sweeper.state", ""), t.get("sweeper.config", ""),
                    t.get("sweeper.seed", ""), t.get("sweeper.vs_tta_rule", ""), *(r["metrics"].get(k, "") for k in keys)])
    return buf.getvalue()


def write_report(runs: Sequence[dict[str, Any]], out: Path, rule: str | None = None) -> list[Path]:
    """comparison.csv/.md, trials.csv and accuracy_vs_cost.png of a sweep into `out`; returns the files."""
    from sweeper.results import plots
    from sweeper.util.files import write_text

    out.mkdir(parents=True, exist_ok=True)
    table = build_table(runs, rule)
    files = {"comparison.csv": render(table, "csv"), "comparison.md": render(table, "markdown"),
             "trials.csv": render_trials(runs)}
    for name, text in files.items():
        write_text(out / name, text)
    points = [{"label": r["configuration"], "cost": r["relative_cost"], "acc": r["puzzle_acc_mean"],
               "err": r["ci_half_width"], "baseline": r["role"] == "baseline"} for r in table
              if math.isfinite(r["relative_cost"]) and r["relative_cost"] > 0 and math.isfinite(r["puzzle_acc_mean"])]
    plots.sweep_accuracy_vs_cost(points, out / "accuracy_vs_cost.png")
    return [out / n for n in files] + [out / "accuracy_vs_cost.png"]
