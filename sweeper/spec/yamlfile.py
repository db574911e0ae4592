"""Reading a sweep file: bounded in size, time and memory, nothing executed, every failure one line.

A sweep file is hand-written YAML, so it is read with a SafeLoader (no Python tags) that also refuses
anchors and aliases: an alias is a reference, and a few hundred bytes of nested aliases expand to
gigabytes once anything walks or prints the document (the "billion laughs" file). Sweep files never need
them; a refusal names the line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sweeper.errors import UserError

MAX_BYTES = 1_000_000
"""Sweep files larger than this are refused (they are hand-written; this bounds parse work)."""


class _NoAliasLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses anchors (&a) and aliases (*a), merge keys (<<: *a) included."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed in sweep files; write the "
                "values out", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> Any:
    """The parsed document of a sweep file; any problem raises UserError('FILE[:LINE]: ...')."""
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise UserError(f"{where}: no such file")
    if not path.is_file():
        raise UserError(f"{where}: not a file")
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise UserError(f"{where}: larger than {MAX_BYTES} bytes; a sweep file is hand-written YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: not UTF-8 text (byte {e.start})") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        raise UserError(one_line(f"{where}{line}: invalid YAML: {what}")) from None
    except yaml.YAMLError as e:
        raise UserError(one_line(f"{where}: invalid YAML: {e}")) from None
    except RecursionError:
        raise UserError(f"{where}: invalid YAML: nested too deeply") from None
    except ValueError as e:  # the constructor's int() and date checks: a 5,000-digit integer, 2020-13-45
        what = "an integer has more than 4300 digits" if "digits" in str(e) else str(e)
        raise UserError(one_line(f"{where}: invalid YAML value: {what}")[:300]) from None


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())
