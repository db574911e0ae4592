"""A stand-in for PyYAML's `safe_load`, for bare GPU machines that have only torch, numpy and numba.

trm_core.config imports `yaml` at module level and reads its presets with `yaml.safe_load`, so on such a
machine `import trm_core` fails before any benchmark can start. `install_if_missing()` registers this
module as `yaml` only when PyYAML cannot be imported. It reads the subset the presets use: block mappings
nested by indentation, flow mappings and sequences, comments, and plain scalars resolved as PyYAML (YAML
1.1) resolves them (null/~, true/false/yes/no/on/off, decimal integers, floats written with a dot; `1e-4`
stays a string, as in PyYAML). Anything else (quotes, anchors, block sequences, octal or hex numbers,
dates) raises YAMLError naming the line, so a preset that outgrows the subset fails loudly instead of
being misread. tests/benchmarks/test_yaml_standin.py compares it with PyYAML on every preset.

The lasting fix belongs in trm_core (import yaml lazily, or keep presets in a format the standard library
reads); until then the benchmarks for bare machines install this.
"""
from __future__ import annotations

import math
import re
import sys

STANDIN = True
"""Marks this module in sys.modules['yaml'] (benchmarks record which YAML reader they ran with)."""

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9_]*)")
_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?")
# Forms PyYAML resolves to something this reader does not build: other int bases, sexagesimal, dates.
_UNSUPPORTED = re.compile(r"[-+]?0[0-7_]+|[-+]?0[bx][0-9a-fA-F_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
                          r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*|<<|=")
_BOOL = {**dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"), True),
         **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"), False)}
_SPECIAL = {"~": None, "null": None, "Null": None, "NULL": None, "": None,
            ".inf": math.inf, "+.inf": math.inf, ".Inf": math.inf, "+.Inf": math.inf, ".INF": math.inf,
            "+.INF": math.inf, "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
            ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}


class YAMLError(Exception):
    """Text this reader cannot read (the name PyYAML's callers catch)."""


def install_if_missing() -> bool:
    """Register this module as `yaml` if PyYAML is not installed. Returns True if the stand-in is in use."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        sys.modules["yaml"] = sys.modules[__name__]
        return True
    return bool(getattr(sys.modules["yaml"], "STANDIN", False))


def safe_load(stream) -> object:
    """Parse `stream` (text or a file object) into dicts, lists and scalars, as yaml.safe_load would."""
    text = stream.read() if hasattr(stream, "read") else stream
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    lines = []
    for no, raw in enumerate(text.splitlines(), 1):
        body = _strip_comment(raw)
        if not body.strip() or body.strip() == "---":
            continue
        indent = len(body) - len(body.lstrip(" "))
        if body[indent] == "\t":
            raise YAMLError(f"line {no}: tab indentation")
        lines.append((no, indent, body.strip()))
    if not lines:
        return None
    no, indent, first = lines[0]
    if len(lines) == 1 and not _is_key_line(first):
        return _flow_document(first, no)
    value, used = _block(lines, 0, indent)
    if used != len(lines):
        raise YAMLError(f"line {lines[used][0]}: unexpected indentation")
    return value


def _strip_comment(line: str) -> str:
    body = line.rstrip()
    for i, ch in enumerate(line):
        if ch == "#" and (i == 0 or line[i - 1] in " \t"):
            body = line[:i].rstrip()
            break
    if "'" in body or '"' in body:  # a quoted '#' was cut above, so any quote left is refused here
        raise YAMLError(f"quoted text is not supported by the stand-in reader: {body.strip()!r}")
    return body


def _is_key_line(text: str) -> bool:
    key, sep, rest = text.partition(":")
    return bool(sep) and (not rest or rest[0] == " ") and not key.startswith(("{", "["))


def _block(lines: list, i: int, indent: int) -> tuple[dict, int]:
    """A block mapping whose keys sit at `indent`, from line i; returns (mapping, next line index)."""
    out: dict = {}
    while i < len(lines) and lines[i][1] == indent:
        no, _, text = lines[i]
        if text.startswith("- ") or text == "-":
            raise YAMLError(f"line {no}: block sequences are not supported by the stand-in reader")
        if not _is_key_line(text):
            raise YAMLError(f"line {no}: expected 'key: value', got {text!r}")
        key, _, rest = text.partition(":")
        key, rest = _scalar(key.strip(), no), rest.strip()
        i += 1
        if rest:
            out[key] = _flow_document(rest, no)
        elif i < len(lines) and lines[i][1] > indent:
            out[key], i = _block(lines, i, lines[i][1])
        else:
            out[key] = None
    return out, i


def _flow_document(text: str, no: int) -> object:
    if text[0] not in "{[":
        return _scalar(text, no)
    parser = _Flow(text, no)
    value = parser.value()
    parser.skip_space()
    if parser.pos != len(text):
        raise YAMLError(f"line {no}: unexpected text after a flow collection: {text[parser.pos:]!r}")
    return value


class _Flow:
    """Recursive descent over one line's flow collection: {k: v, ...} and [v, ...] of plain scalars."""

    def __init__(self, text: str, no: int):
        self.text, self.no, self.pos = text, no, 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def value(self) -> object:
        self.skip_space()
        ch = self.text[self.pos:self.pos + 1]
        if ch == "{":
            return self._collection("}", mapping=True)
        if ch == "[":
            return self._collection("]", mapping=False)
        return _scalar(self._plain(",]}"), self.no)

    def _plain(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start:self.pos].strip()

    def _collection(self, close: str, mapping: bool) -> object:
        self.pos += 1
        items: list = []
        out: dict = {}
        while True:
            self.skip_space()
            if self.text[self.pos:self.pos + 1] == close:
                self.pos += 1
                return out if mapping else items
            if mapping:
                key = _scalar(self._plain(":,}"), self.no)
                if self.text[self.pos:self.pos + 1] != ":":
                    raise YAMLError(f"line {self.no}: expected ':' after {key!r} in a flow mapping")
                self.pos += 1
                out[key] = self.value()
            else:
                items.append(self.value())
            self.skip_space()
            sep = self.text[self.pos:self.pos + 1]
            if sep == ",":
                self.pos += 1
            elif sep != close:
                raise YAMLError(f"line {self.no}: expected ',' or {close!r} in a flow collection")


def _scalar(text: str, no: int) -> object:
    """Resolve a plain scalar as PyYAML's YAML 1.1 resolver does, or refuse it."""
    if text in _SPECIAL:
        return _SPECIAL[text]
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        return int(text.replace("_", ""))
    if _FLOAT.fullmatch(text):
        return float(text.replace("_", ""))
    if _UNSUPPORTED.fullmatch(text) or text[0] in "&*!|>%@`{}[],?:#":
        raise YAMLError(f"line {no}: the stand-in reader cannot read {text!r}; install PyYAML")
    return text
