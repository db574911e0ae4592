"""The compact view of a running sweep: a rich Live table on a terminal, one line per event otherwise.

Rows are plain dicts (number, state, params, seed, evals, step, value, note) built by the runner's Tune
callback; this module only draws them, so it has no Ray in it and `sweeper status` reuses `table()`.
"""
from __future__ import annotations

from typing import Any, Iterable

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sweeper.util.names import trial_name

STATE_STYLE = {"RUNNING": "cyan", "PENDING": "dim", "PAUSED": "yellow", "COMPLETE": "green",
               "PRUNED": "magenta", "FAIL": "red", "ERROR": "red", "TERMINATED": "green", "WAITING": "dim"}
MAX_ROWS = 30
"""On a terminal, show the running and pending trials plus the newest finished ones up to this many."""


def fmt_params(params: dict[str, Any], width: int = 48) -> str:
    """'lr=0.01 k=4' with the last part of each dotted key; cut to `width` characters."""
    parts = []
    for key, value in sorted(params.items()):
        short = key.rsplit(".", 1)[-1]
        parts.append(f"{short}={value:.3g}" if isinstance(value, float) else f"{short}={value}")
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def table(rows: Iterable[dict[str, Any]], metric: str, title: str = "") -> Table:
    """The trial table (trial, state, seed, params, eval, step, metric, note)."""
    t = Table(title=title or None, title_justify="left", expand=False, pad_edge=False, box=None)
    for name, justify in (("trial", "right"), ("state", "left"), ("seed", "right"), ("params", "left"),
                          ("eval", "right"), ("step", "right"), (metric, "right"), ("note", "left")):
        t.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",
                     max_width=40 if name == "note" else None, min_width=len(name) if name != "note" else 10)
    for r in rows:
        state = str(r.get("state", "?"))
        # Every cell is a Text: user data (parameter values, failure notes quoting paths or exceptions) may
        # hold '[' and must print literally, never be parsed as rich markup.
        cells = [trial_name(r['number']), state, str(r.get("seed", "")), fmt_params(r.get("params", {})),
                 str(r.get("evals") or "-"), str(r.get("step") or "-"), fmt_value(r.get("value")), r.get("note") or ""]
        t.add_row(*(Text(c, style=STATE_STYLE.get(state, "") if i == 1 else "") for i, c in enumerate(cells)))
    return t


def pick_rows(rows: list[dict[str, Any]], limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Live and pending trials first, then the newest finished ones, at most `limit`, by number."""
    active = [r for r in rows if r.get("state") in ("RUNNING", "PENDING", "PAUSED")]
    done = [r for r in rows if r not in active]
    keep = active[:limit] + done[-max(0, limit - len(active)):] if limit > len(active) else active[:limit]
    return sorted(keep, key=lambda r: r["number"])


class LiveView:
    """Draws the rows; `update()` may be called often (rich throttles the refresh)."""

    def __init__(self, metric: str, console: Console | None = None, enabled: bool = True):
        self.metric = metric
        self.console = console or Console(stderr=True)
        self.fancy = enabled and self.console.is_terminal
        self._live: Live | None = None
        self._last_state: dict[int, str] = {}

    def __enter__(self) -> "LiveView":
        if self.fancy:
            self._live = Live(table([], self.metric), console=self.console, refresh_per_second=2,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, rows: list[dict[str, Any]], title: str) -> None:
        if self._live is not None:
            self._live.update(table(pick_rows(rows), self.metric, title))
            return
        for r in rows:  # plain output: one line when a trial changes state
            if self._last_state.get(r["number"]) != r.get("state"):
                self._last_state[r["number"]] = r.get("state")
                self.say(f"{trial_name(r['number'])} {r.get('state'):8s} seed={r.get('seed')} "
                         f"{fmt_params(r.get('params', {}), 80)}  {self.metric}={fmt_value(r.get('value'))}"
                         + (f"  ({r['note']})" if r.get("note") else ""))

    def say(self, line: str) -> None:
        """A message above the table (or a plain line)."""
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)
