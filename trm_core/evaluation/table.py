"""EvalResults: the rows of an evaluation and their views (text table, JSON, CSV, flat metric dicts)."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROW_KEYS = ("method", "cell_acc", "cell_acc_blank", "puzzle_acc", "chain_steps_per_puzzle", "f_calls_per_puzzle",
            "relative_cost", "efficiency", "wall_s", "puzzles_per_s", "mean_halt_step")
TABLE_COLUMNS = (("method", "method"), ("cell acc", "cell_acc"), ("puzzle acc", "puzzle_acc"),
                 ("chain-steps/puzzle", "chain_steps_per_puzzle"), ("relative cost", "relative_cost"),
                 ("efficiency", "efficiency"))


@dataclass
class EvalResults:
    """What `evaluate` returns. Rows are plain dicts so that sinks, JSON and CSV take them unchanged."""

    rows: list[dict] = field(default_factory=list)
    """One dict per method with the ROW_KEYS. mean_halt_step: mean over puzzles of the first ACT step at which
    any of the method's chains had sigmoid(q) > tau (max steps if never); for `full` that is what
    eval/mean_halt_step reports, for halt / halt_first the step they answered at."""
    per_puzzle: dict[str, np.ndarray] = field(default_factory=dict)
    """method -> [N] bool puzzle correctness (for paired tests such as McNemar vs TTA)."""
    tau_curve: list[dict] = field(default_factory=list)
    """Accuracy vs cost points over a grid of tau, replayed from one recorded pass."""
    diagnostics: dict = field(default_factory=dict)
    """Oracle accuracy, failure overlaps, halting histogram / difficulty correlation, calibration, winners."""
    meta: dict = field(default_factory=dict)
    """Puzzles, chain sets, tau, max steps, device."""

    def row(self, method: str) -> dict:
        for r in self.rows:
            if r["method"] == method:
                return r
        raise KeyError(method)

    def metrics(self, prefix: str = "eval_final") -> dict[str, float]:
        """Flat namespaced metrics: {'eval_final/full/puzzle_acc': 0.85, 'eval_final/tta/relative_cost': 8.0, ...}."""
        out = {}
        for r in self.rows:
            for k in ROW_KEYS[1:]:
                out[f"{prefix}/{r['method']}/{k}"] = float(r[k])
        return out

    def to_table(self) -> str:
        """A fixed-width text table (method | cell acc | puzzle acc | chain-steps/puzzle | relative cost | efficiency)."""
        head = [h for h, _ in TABLE_COLUMNS]
        body = [[_fmt(r[k], k) for _, k in TABLE_COLUMNS] for r in self.rows]
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        def line(cells):
            return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        sep = "-+-".join("-" * w for w in widths)
        return "\n".join([line(head), sep, *map(line, body)])

    def to_json(self, path: str | Path | None = None) -> str:
        """Everything but the per-puzzle arrays (those go to CSV) as JSON; written to `path` if given."""
        text = json.dumps({"rows": self.rows, "tau_curve": self.tau_curve, "diagnostics": self.diagnostics,
                           "meta": self.meta}, indent=2, default=_jsonable)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """The rows as CSV; written to `path` if given."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(ROW_KEYS), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        if path is not None:
            Path(path).write_text(buf.getvalue())
        return buf.getvalue()

    def per_puzzle_csv(self, path: str | Path | None = None) -> str:
        """One row per puzzle, one 0/1 column per method (what a McNemar test needs)."""
        methods = list(self.per_puzzle)
        n = len(next(iter(self.per_puzzle.values()))) if methods else 0
        lines = ["puzzle," + ",".join(methods)]
        lines += [f"{i}," + ",".join(str(int(self.per_puzzle[m][i])) for m in methods) for i in range(n)]
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text


def _fmt(v, key: str) -> str:
    if isinstance(v, str):
        return v
    if key in ("cell_acc", "puzzle_acc", "cell_acc_blank"):
        return f"{100 * v:.2f}%"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return f"{v:.3f}" if key in ("relative_cost", "efficiency") else f"{v:.2f}"


def _jsonable(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    return str(o)
