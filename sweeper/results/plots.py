"""Figures of a trial and of a sweep, written as PNG files (matplotlib, Agg backend: no display needed).

Trial: learning curves, halting-step histogram, accuracy vs cost (every mode, the tau curve, the TTA
point), and the tau curve. Sweep: accuracy vs cost of every configuration against the TTA baseline, and
Optuna's optimisation history, parameter importances and parallel coordinates through
`optuna.visualization.matplotlib`; each of those also gets a minimal self-contained HTML page (the PNG
embedded as data, plus a table), because Optuna's interactive HTML needs plotly, which we do not depend on.
"""
from __future__ import annotations

import base64
import html
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # trials and drivers run headless; never pick an interactive backend

from matplotlib.figure import Figure  # noqa: E402  (after the backend is fixed)
from matplotlib.ticker import ScalarFormatter  # noqa: E402

CURVE_GROUPS = (("train/loss", "train/lm_loss", "train/halt_loss"), ("eval/puzzle_acc", "eval/cell_acc", "train/puzzle_acc"))
"""Panels of the learning-curve figure: losses, then accuracies."""


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _log_x(ax) -> None:
    """Log cost axis with plain numbers (1, 2, 8) rather than powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())


def learning_curves(history: Mapping[str, Sequence[tuple[int, float]]], path: Path) -> Path:
    """Loss and accuracy against the training step; `history` maps metric -> [(step, value), ...]."""
    fig = Figure(figsize=(10, 4))
    for i, keys in enumerate(CURVE_GROUPS):
        ax = fig.add_subplot(1, 2, i + 1)
        for key in keys:
            points = sorted(history.get(key, ()))
            if points:
                ax.plot([s for s, _ in points], [v for _, v in points], marker="." if len(points) < 30 else None,
                        label=key)
        ax.set_xlabel("training step")
        ax.set_title("losses" if i == 0 else "accuracy")
        if ax.lines:
            ax.legend(fontsize=8)
    return _save(fig, path)


def halting_histogram(counts: Sequence[int], path: Path) -> Path:
    """Puzzles answered at each ACT step (the `halt` mode of the final evaluation)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.bar(range(1, len(counts) + 1), counts, color="tab:blue")
    ax.set_xlabel("ACT step at which the chain halted")
    ax.set_ylabel("puzzles")
    ax.set_title("halting steps (halt mode)")
    return _save(fig, path)


def accuracy_vs_cost(rows: Sequence[Mapping[str, Any]], tau_points: Sequence[Mapping[str, Any]], path: Path,
                     baseline: Mapping[str, float] | None = None) -> Path:
    """Puzzle accuracy against relative cost: one point per mode, the tau curve as lines, TTA as a star.

    `baseline` (optional) is the sweep's TTA baseline {'relative_cost', 'puzzle_acc'} on the same puzzles.
    """
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for method in sorted({p["method"] for p in tau_points}):
        pts = sorted((p["relative_cost"], p["puzzle_acc"]) for p in tau_points if p["method"] == method)
        ax.plot(*zip(*pts), linestyle="--", alpha=0.6, label=f"{method} over tau")
    for r in rows:
        star = r["method"] == "tta"
        ax.scatter(r["relative_cost"], r["puzzle_acc"], marker="*" if star else "o", s=160 if star else 40,
                   zorder=3, label=r["method"])
    if baseline:
        ax.scatter(baseline["relative_cost"], baseline["puzzle_acc"], marker="*", s=220, color="black",
                   zorder=4, label="baseline TTA")
    _log_x(ax)
    ax.set_xlabel("relative cost (chain-steps / those of one full chain)")
    ax.set_ylabel("puzzle accuracy")
    ax.legend(fontsize=8)
    return _save(fig, path)


def tau_curve(tau_points: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Puzzle accuracy and relative cost against the halting threshold tau, per halting mode."""
    fig = Figure(figsize=(10, 4))
    for i, key in enumerate(("puzzle_acc", "relative_cost")):
        ax = fig.add_subplot(1, 2, i + 1)
        for method in sorted({p["method"] for p in tau_points}):
            pts = sorted((p["tau"], p[key]) for p in tau_points if p["method"] == method)
            ax.plot(*zip(*pts), marker="o", label=method)
        ax.set_xlabel("tau")
        ax.set_ylabel(key.replace("_", " "))
        if ax.lines:
            ax.legend(fontsize=8)
    return _save(fig, path)


def sweep_accuracy_vs_cost(points: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Every configuration (mean over seeds, error bar: the 95% interval over seeds when `err` is finite)
    and the TTA rules: {'label', 'cost', 'acc', 'err', 'baseline'}.

    Points above the baseline stars and to their left are better and cheaper.
    """
    import math

    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    for p in points:
        err = p.get("err")
        yerr = err if err is not None and math.isfinite(err) else None
        if p.get("baseline"):
            ax.errorbar(p["cost"], p["acc"], yerr=yerr, fmt="*", markersize=14, color="black", capsize=3, zorder=4,
                        label=p["label"])
        else:
            ax.errorbar(p["cost"], p["acc"], yerr=yerr, fmt="o", markersize=6, capsize=3, zorder=3)
            ax.annotate(p["label"], (p["cost"], p["acc"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_ylim(-0.02, 1.02)  # accuracy: an interval over few seeds can reach past 0 or 1; the axis does not
    _log_x(ax)
    ax.set_xlabel("relative cost")
    ax.set_ylabel("puzzle accuracy")
    if any(p.get("baseline") for p in points):
        ax.legend(fontsize=8)
    return _save(fig, path)


def html_page(title: str, png: Path, table: Sequence[Mapping[str, Any]] = ()) -> str:
    """A self-contained HTML page: the PNG inlined as base64 and an optional table of rows."""
    data = base64.b64encode(Path(png).read_bytes()).decode()
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>",
             f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{data}' style='max-width:100%'>"]
    if table:
        cols = list(table[0])
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr>")
        for row in table:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in cols) + "</tr>")
        parts.append("</table>")
    return "\n".join(parts)


def optuna_figures(study, out_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """Optimisation history, parameter importances and parallel coordinates as PNG + HTML in `out_dir`.

    Returns (written files, {figure: why it was skipped}); a figure Optuna cannot draw (too few finished
    trials, a single parameter, several objectives) is skipped with its reason, not an error.
    """
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    table = [{"trial": t.number, **t.params, "value": t.values} for t in trials]
    multi = len(study.directions) > 1
    figures = {
        "optimization_history": lambda: ovm.plot_optimization_history(study, target=(lambda t: t.values[0]) if multi else None),
        "param_importances": lambda: ovm.plot_param_importances(study, target=(lambda t: t.values[0]) if multi else None),
        "parallel_coordinate": lambda: ovm.plot_parallel_coordinate(study, target=(lambda t: t.values[0]) if multi else None),
    }
    written, skipped = [], {}
    for name, draw in figures.items():
        if len(trials) < 2:
            skipped[name] = f"{len(trials)} completed trial(s); Optuna needs at least 2"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna flags its matplotlib backend as experimental
                ax = draw()
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            png = out_dir / f"{name}.png"
            fig.set_size_inches(9, 5)
            fig.savefig(png, dpi=110, bbox_inches="tight")
            plt.close(fig)
        except (ValueError, RuntimeError) as e:  # e.g. importances with one distinct value per parameter
            skipped[name] = f"{type(e).__name__}: {e}"
            continue
        page = out_dir / f"{name}.html"
        page.write_text(html_page(name.replace("_", " "), png, table))
        written += [png, page]
    return written, skipped
