"""CLI helpers around the trainer config: `--set key=value` parsing and the key table of `sweeper presets`."""
from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any

from sweeper.errors import UserError


def parse_sets(items: list[str]) -> dict[str, Any]:
    """['a.b=1', 'c=x'] -> {'a.b': 1, 'c': 'x'} (YAML scalar rules); a missing '=' names the item."""
    from trm_core.config import parse_value

    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set {item[:60]!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def field_docs(cls: type) -> dict[str, str]:
    """{field name: its docstring} read from the class source (the string literal under each field)."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(getattr(b, "value", None), ast.Constant):
            docs[a.target.id] = " ".join(str(b.value.value).split())
    return docs


def describe(cls: type | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, docstring) for every field of the trainer config (or of `cls`)."""
    if cls is None:
        from trm_core.config import TrainConfig

        cls = TrainConfig
    docs, default, rows = field_docs(cls), cls(), []
    for f in dataclasses.fields(cls):
        val = getattr(default, f.name)
        if dataclasses.is_dataclass(val):
            rows += describe(type(val), f"{prefix}{f.name}.")
        else:
            rows.append((f"{prefix}{f.name}", repr(val), docs.get(f.name, "")))
    return rows


def preset_summary(name: str) -> str:
    """The first sentence of the preset file's leading comment (each preset starts by saying what it is)."""
    from trm_core.config import PRESET_DIR

    lines = []
    for line in (PRESET_DIR / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def preset_changes(name: str) -> tuple[str | None, dict[str, tuple[Any, Any]]]:
    """(parent, {dotted key: (parent's value, this preset's value)}) over the fully resolved configs."""
    from trm_core.config import flatten, preset_parent, resolve, to_dict

    parent = preset_parent(name)
    if parent is None:
        return None, {}
    mine, theirs = flatten(to_dict(resolve(name))), flatten(to_dict(resolve(parent)))
    return parent, {k: (theirs[k], v) for k, v in mine.items() if theirs[k] != v}
