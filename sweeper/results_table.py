"""The paper-style table of a sweep, built from its MLflow runs (plain dicts from tracking.run_rows).

One row per configuration (its seeds pooled): puzzle accuracy mean ± std over seeds, cell accuracy,
relative cost and efficiency of the configuration's own inference (compare.PRIMARY_MODE), and its
difference from the TTA baseline on the same puzzles with the bootstrap 95% interval, McNemar p-value
and verdict; best first. The TTA baseline itself is a row. No MLflow import here: the driver uses this
for the sweep's artifacts and `sweeper report` for the terminal.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from sweeper import compare

COLUMNS = (("configuration", "configuration"), ("seeds", "seeds"), ("puzzle acc", "puzzle_acc"),
           ("cell acc", "cell_acc"), ("rel. cost", "relative_cost"), ("efficiency", "efficiency"),
           ("Δ vs TTA [95% CI]", "delta"), ("p", "p_value"), ("vs TTA", "verdict"))
"""(header, key) of the rendered table."""
RAW_KEYS = ("configuration", "role", "seeds", "trials", "puzzle_acc_mean", "puzzle_acc_std", "cell_acc",
            "relative_cost", "efficiency", "cost_ratio", "delta", "ci_low", "ci_high", "p_value", "verdict")
"""Columns of the CSV (numbers unformatted)."""


def _final(run: dict, key: str, mode: str = compare.PRIMARY_MODE) -> float:
    return run["metrics"].get(f"final/{mode}/{key}", math.nan)


def build_table(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (dicts with RAW_KEYS) for the completed trials of a sweep plus the baseline run; best first."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        tags = r["tags"]
        if tags.get("sweeper.role") == "trial" and tags.get("sweeper.state") == "COMPLETE" \
                and f"final/{compare.PRIMARY_MODE}/puzzle_acc" in r["metrics"]:
            groups.setdefault(tags.get("sweeper.config_key", r["run_id"]), []).append(r)
    rows = []
    for members in groups.values():
        members.sort(key=lambda r: int(r["tags"].get("sweeper.trial_number", 0)))
        mean, std = compare.seed_summary([_final(r, "puzzle_acc") for r in members])
        # The pooled comparison over the most seeds (it is updated as seeds finish).
        pooled = max(members, key=lambda r: r["metrics"].get("vs_tta_config/seeds", 0))["metrics"]
        cmp = {k: pooled.get(f"vs_tta_config/{k}", math.nan)
               for k in ("puzzle_acc_delta", "delta_ci_low", "delta_ci_high", "p_value", "cost_ratio")}
        label = members[0]["tags"].get("sweeper.config", "?")
        is_base = members[0]["tags"].get("sweeper.is_baseline") == "true"
        rows.append({"configuration": label + (" (baseline config)" if is_base else ""), "role": "trial",
                     "seeds": len(members), "trials": ",".join(f"t{int(r['tags'].get('sweeper.trial_number', 0)):04d}" for r in members),
                     "puzzle_acc_mean": mean, "puzzle_acc_std": std,
                     "cell_acc": _mean([_final(r, "cell_acc") for r in members]),
                     "relative_cost": _mean([_final(r, "relative_cost") for r in members]),
                     "efficiency": _mean([_final(r, "efficiency") for r in members]),
                     "cost_ratio": cmp["cost_ratio"], "delta": cmp["puzzle_acc_delta"], "ci_low": cmp["delta_ci_low"],
                     "ci_high": cmp["delta_ci_high"], "p_value": cmp["p_value"],
                     "verdict": members[0]["tags"].get("sweeper.vs_tta_config", "")})
    for r in runs:
        if r["tags"].get("sweeper.role") == "baseline" and "final/tta/puzzle_acc" in r["metrics"]:
            m = r["metrics"]
            rows.append({"configuration": f"TTA baseline: {r['tags'].get('sweeper.config', '?')}", "role": "baseline",
                         "seeds": int(m.get("baseline/seeds", 0)), "trials": r["tags"].get("sweeper.baseline_trials", ""),
                         "puzzle_acc_mean": m["final/tta/puzzle_acc"], "puzzle_acc_std": m.get("baseline/tta/puzzle_acc_std", math.nan),
                         "cell_acc": m.get("final/tta/cell_acc", math.nan), "relative_cost": m.get("final/tta/relative_cost", math.nan),
                         "efficiency": m.get("final/tta/efficiency", math.nan), "cost_ratio": 1.0, "delta": 0.0,
                         "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "verdict": "reference"})
    return sorted(rows, key=lambda row: -row["puzzle_acc_mean"] if math.isfinite(row["puzzle_acc_mean"]) else math.inf)


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
    if row["seeds"] > 1 and math.isfinite(row["puzzle_acc_std"]):
        acc += f" ± {100 * row['puzzle_acc_std']:.1f}"
    fmt = lambda v, spec: "–" if not math.isfinite(v) else format(v, spec)  # noqa: E731
    return {"configuration": row["configuration"], "seeds": str(row["seeds"]), "puzzle_acc": acc,
            "cell_acc": _pct(row["cell_acc"]), "relative_cost": fmt(row["relative_cost"], ".2f"),
            "efficiency": fmt(row["efficiency"], ".3f"), "delta": delta,
            "p_value": fmt(row["p_value"], ".3g"), "verdict": row["verdict"] or "–"}


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
            "final/tta/puzzle_acc", "vs_tta/puzzle_acc_delta", "vs_tta/delta_ci_low", "vs_tta/delta_ci_high",
            "vs_tta/p_value", "vs_tta/cost_ratio"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "run_id", "status", "state", "configuration", "seed", *keys])
    trials = [r for r in runs if r["tags"].get("sweeper.role") == "trial"]
    for r in sorted(trials, key=lambda r: int(r["tags"].get("sweeper.trial_number", 0))):
        t = r["tags"]
        w.writerow([t.get("sweeper.trial_number"), r["run_id"], r["status"], t.get("sweeper.state", ""),
                    t.get("sweeper.config", ""), t.get("sweeper.seed", ""), *(r["metrics"].get(k, "") for k in keys)])
    return buf.getvalue()


def plot_table(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Accuracy vs relative cost of every configuration, with the TTA baseline as a star."""
    from sweeper import plots

    points = [{"label": r["configuration"], "cost": r["relative_cost"], "acc": r["puzzle_acc_mean"],
               "baseline": r["role"] == "baseline"} for r in rows
              if math.isfinite(r["relative_cost"]) and r["relative_cost"] > 0 and math.isfinite(r["puzzle_acc_mean"])]
    return plots.sweep_accuracy_vs_cost(points, path)
