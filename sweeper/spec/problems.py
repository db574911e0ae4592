"""Spec problems: the `Problem` exception, nearest-name hints, and strict pydantic models whose first
validation error becomes one `key.path: message` line.

Shared by the sweep-file schema (sweeper/spec.py), the parameter forms (sweeper/params.py) and the
trainer-key checks (sweeper/trainer_keys.py); load_spec prefixes each Problem with the file name.
"""
from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sweeper.util.names import nearest  # noqa: F401 (the spec layer's hint, re-exported)


class Problem(Exception):
    """A spec problem; str() is 'key.path: message' and load_spec prefixes the file name."""


class Raw(BaseModel):
    """Base of the YAML-boundary models: unknown keys are errors, no type coercion, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


def short(value: Any) -> str:
    """repr() cut to 60 characters, for quoting a bad value in a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_model(model: type[BaseModel], data: Any, loc: tuple) -> Any:
    """pydantic validation whose first error becomes a Problem('key.path: message')."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Problem(_pydantic_line(model, e.errors(include_url=False)[0], loc)) from None
    except RecursionError:
        raise Problem(f"{_path(loc) or 'document'}: nested too deeply") from None


def _pydantic_line(model: type[BaseModel], err: dict, prefix: tuple) -> str:
    loc = prefix + tuple(err["loc"])
    where = _path(loc) or "document"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key{nearest(str(loc[-1]), _fields_at(model, err['loc'][:-1]))}"
    if kind == "missing":
        return f"{where}: required key missing"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        hint = nearest(str(err["input"]), options)
        return f"{where}: {short(err['input'])} is not one of {', '.join(options)}{hint}"
    msg = err["msg"]
    return f"{where}: {msg[:1].lower() + msg[1:]}, got {short(err.get('input'))}"


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the pydantic model found at `loc` (for nearest-name hints)."""
    def unwrap(tp: Any) -> Any:  # list[X] | None -> X, when X is a model
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        found = [unwrap(a) for a in typing.get_args(tp)]
        return next((f for f in found if f is not None), None)

    tp = model
    for part in loc:
        if tp is not None and part in tp.model_fields:
            tp = unwrap(tp.model_fields[part].annotation)
    return list(tp.model_fields) if tp is not None else []


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f".{part}"
    return out.lstrip(".")
