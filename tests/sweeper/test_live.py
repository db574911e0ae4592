"""The trial table (live view and `sweeper status`) prints user text literally: rich markup in parameter values
and failure notes neither crashes it nor vanishes."""
from __future__ import annotations

from rich.console import Console

from sweeper.sweep.live import LiveView, table


def _render(rows) -> str:
    console = Console(width=250, record=True)
    console.print(table(rows, "eval/puzzle_acc"))
    return console.export_text()


def test_markup_in_params_and_notes_prints_literally():
    rows = [{"number": 1, "state": "FAIL", "params": {"data.path": "/x/[/]a.csv"}, "note": "[bold]no[/b] [/]"},
            {"number": 2, "state": "COMPLETE", "params": {"model.k": 2}, "note": "RuntimeError: [enforce fail]"}]
    out = _render(rows)
    assert "path=/x/[/]a.csv" in out and "[bold]no[/b] [/]" in out and "RuntimeError: [enforce fail]" in out


def test_the_plain_view_prints_notes_literally_too():
    console = Console(width=250, record=True, force_terminal=False)
    view = LiveView("eval/puzzle_acc", console)
    view.update([{"number": 3, "state": "FAIL", "params": {}, "note": "[/] boom"}], "title")
    assert "([/] boom)" in console.export_text()
