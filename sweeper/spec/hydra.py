"""Hydra's sweep syntax for one parameter: choice(..), range(..), interval(..), tag(log, interval(..)),
int(interval(..)), or a plain string (a constant). Parsed by hand: nothing is evaluated.
"""
from __future__ import annotations

import math
import re
from typing import Any

from sweeper.spec.forms import choices, num_range, number
from sweeper.spec.param import Param
from sweeper.spec.problems import Problem, nearest, short

_HYDRA = ("choice", "range", "interval", "tag", "int")


def parse_hydra(name: str, text: str, where: str) -> Param:
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", text, re.S)
    if not m and re.match(r"\s*[A-Za-z_]\w*\s*\(", text):
        raise Problem(f"{where}: malformed sweep function {short(text.strip())} (in a {{...}} mapping, quote it: "
                      "commas split YAML flow mappings)")
    if not m:  # a plain string is a constant, e.g. `model.swiglu: standard`
        return choices(name, [text], where, constant=True)
    func, args = m.group(1), _split(m.group(2), where)
    if func == "choice":
        return choices(name, [_scalar(a) for a in args], where)
    if func == "interval":
        return num_range(name, "float", *_interval(text, where), where)
    if func == "tag":
        if [a.strip() for a in args[:-1]] != ["log"]:
            raise Problem(f"{where}: only tag(log, interval(a, b)) is understood, got {short(text)}")
        return num_range(name, "float", *_interval(args[-1], where), where, log=True)
    if func == "int" and len(args) == 1:
        return num_range(name, "int", *_interval(args[0], where), where, step=1)
    if func == "range" and 1 <= len(args) <= 3:
        nums = [number(where, _scalar(a)) for a in args]
        start, stop, step = ([0] + nums + [1])[:3] if len(nums) == 1 else (nums + [1])[:3]
        if step <= 0:
            raise Problem(f"{where}: range() needs a positive step, got {short(text)}")
        count = (stop - start) / step
        if not math.isfinite(count):
            raise Problem(f"{where}: range() has too many values to count, got {short(text)}")
        # Hydra's range follows Python's: the stop value is excluded.
        last = start + (math.ceil(round(count, 9)) - 1) * step
        integral = all(isinstance(x, int) for x in (start, stop, step))
        return num_range(name, "int" if integral else "float", start, last, where, step=step)
    raise Problem(f"{where}: unknown or malformed sweep function {func}(){nearest(func, _HYDRA)}")


def _interval(text: str, where: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*interval\s*\((.*)\)\s*", text, re.S)
    args = _split(m.group(1), where) if m else []
    if len(args) != 2:
        raise Problem(f"{where}: expected interval(low, high), got {short(text.strip())}")
    return number(where, _scalar(args[0])), number(where, _scalar(args[1]))


def _split(inner: str, where: str) -> list[str]:
    """Split Hydra arguments on top-level commas (respecting parentheses and quotes)."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        if depth < 0:
            break
    parts.append(cur)
    if depth != 0 or quote or any(not p.strip() for p in parts):
        raise Problem(f"{where}: malformed arguments {short(inner.strip())}")
    return [p.strip() for p in parts]


def _scalar(token: str) -> Any:
    """A Hydra argument: quoted string, integer, float, true/false/null, else the bare string."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    for cast in (int, float):
        try:
            return cast(token)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(token.lower(), token)
