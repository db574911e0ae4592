"""Read and write Sudoku CSV files in the Sudoku-Extreme layout: `source,question,answer,rating`.

`question` and `answer` are 81-character row-major strings (`.` or `0` for a blank in the question).
Reading streams the file in chunks of lines and checks every row with numpy over the whole chunk, so a
3.8M-row file loads at several hundred thousand rows per second with memory bounded by the result. The
first bad row raises ConfigError('file:line: reason'). Files ending in .gz are read and written gzipped.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from trm_core.config import ConfigError
from trm_core.sudoku.solver import UNITS

HEADER = "source,question,answer,rating"
_CHUNK_BYTES = 1 << 22

# byte -> digit (0 blank, 1..9); 255 marks a character that is not allowed
_Q_LUT = np.full(256, 255, dtype=np.uint8)
_Q_LUT[ord(".")] = 0
_Q_LUT[ord("0"):ord("9") + 1] = np.arange(10)
_A_LUT = np.full(256, 255, dtype=np.uint8)
_A_LUT[ord("1"):ord("9") + 1] = np.arange(1, 10)


@dataclass
class CsvPuzzles:
    """Puzzles read from a CSV: digit grids (0 blank), ratings (nan where empty) and source codes."""

    puzzles: np.ndarray  # [N,81] uint8, 0 blank, 1..9
    solutions: np.ndarray  # [N,81] uint8, 1..9
    ratings: np.ndarray  # [N] float32
    sources: np.ndarray  # [N] int32 index into source_names
    source_names: list[str]

    def __len__(self) -> int:
        return len(self.puzzles)


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.suffix != ".gz":
        return open(path, mode)
    # mtime=0 keeps a written .gz byte-identical across runs
    return gzip.GzipFile(path, mode, mtime=0)


def _row_error(fields: list[bytes]) -> str:
    """The reason one row is bad (called only for a row the vectorised checks flagged)."""
    if len(fields) != 4:
        return f"expected 4 fields ({HEADER}), got {len(fields)}"
    src, q, a, r = fields
    for name, text, lut in (("question", q, _Q_LUT), ("answer", a, _A_LUT)):
        if len(text) != 81:
            return f"{name} has {len(text)} characters, expected 81"
        bad = np.flatnonzero(lut[np.frombuffer(text, np.uint8)] == 255)
        if len(bad):
            allowed = "'.', '0'-'9'" if name == "question" else "'1'-'9'"
            return f"{name} has invalid character {chr(text[bad[0]])!r} at position {bad[0] + 1} (allowed: {allowed})"
    try:
        _parse_rating(r)
    except ValueError:
        return f"rating {r.decode(errors='replace')!r} is not a number"
    qd, ad = _Q_LUT[np.frombuffer(q, np.uint8)], _A_LUT[np.frombuffer(a, np.uint8)]
    clash = np.flatnonzero((qd != 0) & (qd != ad))
    if len(clash):
        c = clash[0]
        return f"answer disagrees with the given {qd[c]} at row {c // 9 + 1}, column {c % 9 + 1}"
    unit = int(np.flatnonzero(~_units_complete(ad[None]))[0])
    kind = ("row", "column", "box")[unit // 9]
    return f"answer is not a valid Sudoku grid ({kind} {unit % 9 + 1} repeats a digit)"


def _parse_rating(text: bytes) -> float:
    text = text.strip()
    return float("nan") if not text else float(text)


def _units_complete(digits: np.ndarray) -> np.ndarray:
    """[N,81] digits 1..9 -> [N,27] bool: each unit holds nine different digits."""
    bits = np.left_shift(1, digits.astype(np.int32) - 1)
    return np.bitwise_or.reduce(bits[:, UNITS], axis=2) == 0x1FF


def _parse_chunk(lines: list[bytes]) -> tuple[np.ndarray, ...] | int:
    """Parse and check a chunk of non-empty lines; returns the arrays, or the index of the first bad row."""
    fields = [ln.split(b",") for ln in lines]
    n = len(fields)
    ok = np.fromiter((len(f) == 4 and len(f[1]) == 81 and len(f[2]) == 81 for f in fields), bool, n)
    if not ok.all():
        return int(np.argmin(ok))
    q = _Q_LUT[np.frombuffer(b"".join(f[1] for f in fields), np.uint8)].reshape(n, 81)
    a = _A_LUT[np.frombuffer(b"".join(f[2] for f in fields), np.uint8)].reshape(n, 81)
    good = (q != 255).all(1) & (a != 255).all(1)
    good &= ((q == 0) | (q == a)).all(1)
    good &= _units_complete(np.where(a == 255, 1, a)).all(1)
    try:
        ratings = np.array([f[3] for f in fields]).astype(np.float32)
    except ValueError:  # an empty or malformed rating: parse one by one to find it
        ratings = np.empty(n, np.float32)
        for i, f in enumerate(fields):
            try:
                ratings[i] = _parse_rating(f[3])
            except ValueError:
                good[i] = False
                break
    if not good.all():
        return int(np.argmin(good))
    return q, a, ratings, np.array([f[0] for f in fields])


def iter_csv(path: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield validated chunks (puzzles, solutions, ratings, source bytes) of a Sudoku CSV, in file order."""
    path = Path(path)
    with _open(path, "rb") as f:
        header = f.readline().decode("utf-8-sig", errors="replace").strip()
        if header != HEADER:
            raise ConfigError(f"{path}:1: expected header '{HEADER}', got '{header[:60]}'")
        first_line = 2
        while True:
            raw = f.readlines(_CHUNK_BYTES)
            if not raw:
                return
            stripped = [ln.rstrip(b"\r\n") for ln in raw]
            keep = [i for i, ln in enumerate(stripped) if ln.strip()]  # blank lines are skipped
            lines = [stripped[i] for i in keep]
            if lines:
                parsed = _parse_chunk(lines)
                if isinstance(parsed, int):
                    reason = _row_error(lines[parsed].split(b","))
                    raise ConfigError(f"{path}:{first_line + keep[parsed]}: {reason}")
                yield parsed
            first_line += len(raw)


def read_csv(path: str | Path) -> CsvPuzzles:
    """Read and check a whole Sudoku CSV; ConfigError('file:line: reason') at the first bad row."""
    names: dict[bytes, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    for q, a, r, src in iter_csv(path):
        uniq, inv = np.unique(src, return_inverse=True)
        codes = np.array([names.setdefault(u, len(names)) for u in uniq], dtype=np.int32)
        parts.append((q, a, r, codes[inv]))
    if not parts:
        raise ConfigError(f"{path}: no puzzles (only a header)")
    cols = [np.concatenate(c) for c in zip(*parts)]
    return CsvPuzzles(*cols, source_names=[k.decode(errors="replace") for k in names])


def write_csv(path: str | Path, puzzles: np.ndarray, solutions: np.ndarray, ratings: np.ndarray, sources: list[str] | str) -> None:
    """Write digit grids in the same CSV layout (`.` for blanks; integral ratings written without '.0')."""
    path = Path(path)
    n = len(puzzles)
    srcs = [sources] * n if isinstance(sources, str) else list(sources)
    qtxt = np.where(puzzles == 0, ord("."), puzzles + ord("0")).astype(np.uint8)
    atxt = (solutions + ord("0")).astype(np.uint8)
    with _open(path, "wb") as f:
        f.write((HEADER + "\n").encode())
        for i in range(n):
            r = float(ratings[i])
            rtxt = "" if np.isnan(r) else (str(int(r)) if r == int(r) else repr(r))
            f.write(b"%s,%s,%s,%s\n" % (srcs[i].encode(), qtxt[i].tobytes(), atxt[i].tobytes(), rtxt.encode()))
