"""Read and write Sudoku CSV files in the Sudoku-Extreme layout: `source,question,answer,rating`.

`question` and `answer` are 81-character row-major strings (`.` or `0` for a blank in the question).
Reading streams the file in chunks of lines and checks every row with numpy over the whole chunk, so a
3.8M-row file loads at several hundred thousand rows per second with memory bounded by the result. The
first bad row raises ConfigError('file:line: reason'). Files ending in .gz are read and written gzipped.

Hostile files cost bounded memory: field widths are checked before any [rows, width] array is made (a
single 1 MB source field would otherwise ask for rows x 1 MB), and every readline has a length limit
(a gzip bomb without a newline is never read whole).
"""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from trm_core.errors import ConfigError
from trm_core.sudoku.solver import UNITS

HEADER = "source,question,answer,rating"
_CHUNK_BYTES = 1 << 22
MAX_SOURCE = 256
"""Longest source field in bytes (Sudoku-Extreme's are under 40)."""
MAX_RATING = 32
"""Longest rating field in bytes."""
MAX_LINE = MAX_SOURCE + 81 + 81 + MAX_RATING + 3 + 2
"""Longest valid row: the four fields, three commas and CR LF."""

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


def _row_error(line: bytes) -> str:
    """The reason one row is bad (called only for a row the vectorised checks flagged)."""
    commas = line.count(b",")  # counted, not split: a line of a million commas stays one bytes object
    if commas != 3:
        return f"expected 4 fields ({HEADER}), got {commas + 1}"
    src, q, a, r = line.split(b",")
    for name, text, most in (("source", src, MAX_SOURCE), ("rating", r, MAX_RATING)):
        if len(text) > most:
            return f"{name} has {len(text)} bytes, at most {most} allowed"
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


def _gather(b: np.ndarray, begin: np.ndarray, length: np.ndarray) -> np.ndarray:
    """[n, max(length)] bytes b[begin + k] for k < length, zero beyond (fields of varying width)."""
    width = max(int(length.max()), 1)
    k = np.arange(width)
    inside = k < length[:, None]
    return np.where(inside, b[np.minimum(begin[:, None] + k, len(b) - 1)], 0).astype(np.uint8)


def _ratings(b: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray | int:
    """Ratings as float32 (integers parsed with numpy, anything else row by row), or the index of a bad one."""
    length = end - begin
    digits = _gather(b, begin, length).astype(np.int64) - ord("0")
    inside = np.arange(digits.shape[1]) < length[:, None]
    if (length >= 1).all() and (length <= 9).all() and ((digits >= 0) & (digits <= 9) | ~inside).all():
        powers = np.where(inside, 10 ** np.clip(length[:, None] - 1 - np.arange(digits.shape[1]), 0, None), 0)
        return (digits * powers).sum(1).astype(np.float32)
    out = np.empty(len(begin), np.float32)
    for i in range(len(begin)):  # rare: decimals, exponents or empty ratings
        try:
            out[i] = _parse_rating(b[begin[i]:end[i]].tobytes())
        except ValueError:
            return i
    return out


def _parse_block(buf: bytes) -> tuple[tuple[np.ndarray, ...] | None, int, list[bytes]]:
    """Parse whole lines (each ending in newline) with numpy; returns (arrays, -1, []) or
    (None, index of the first bad line in buf, the lines). Empty lines are skipped."""
    b = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(b == ord("\n"))
    starts = np.concatenate(([0], nl[:-1] + 1))
    ends = nl - ((nl > starts) & (b[np.maximum(nl - 1, 0)] == ord("\r")))
    rows = np.flatnonzero(ends > starts)
    s, e = starts[rows], ends[rows]

    def fail(i: int):
        return None, int(rows[i]), [buf[a:z] for a, z in zip(starts, ends)]

    commas = np.append(np.flatnonzero(b == ord(",")), len(b) + 3)
    lo, hi = np.searchsorted(commas, s), np.searchsorted(commas, e)
    c0, c1, c2 = (commas[np.minimum(lo + k, len(commas) - 1)] for k in range(3))
    ok = (hi - lo == 3) & (c1 - c0 == 82) & (c2 - c1 == 82)
    ok &= (c0 - s <= MAX_SOURCE) & (e - c2 - 1 <= MAX_RATING)  # before _gather sizes arrays by them
    if not ok.all():
        return fail(int(np.argmin(ok)))
    cells = np.arange(81)
    q = _Q_LUT[b[(c0 + 1)[:, None] + cells]]
    a = _A_LUT[b[(c1 + 1)[:, None] + cells]]
    good = (q != 255).all(1) & (a != 255).all(1)
    good &= ((q == 0) | (q == a)).all(1)
    good &= _units_complete(np.where(a == 255, 1, a)).all(1)
    ratings = _ratings(b, c2 + 1, e)
    if isinstance(ratings, int):
        good[ratings:] = False  # report whichever comes first, this rating or an earlier bad row
    if not good.all():
        return fail(int(np.argmin(good)))
    src = _gather(b, s, c0 - s)
    return (q, a, ratings, src.view(f"S{src.shape[1]}").ravel()), -1, []


def iter_csv(path: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield validated chunks (puzzles, solutions, ratings, source bytes) of a Sudoku CSV, in file order.

    Every row of a chunk is checked before the chunk is yielded, so a caller that stops early (read_csv
    with a limit) has still seen one error for the first bad row of what it read."""
    path = Path(path)
    try:
        yield from _iter_csv(path)
    except gzip.BadGzipFile as e:  # named .gz but not gzip, or a CRC error
        raise ConfigError(f"{path}: not a gzip file or corrupt ({e})") from None
    except (EOFError, zlib.error) as e:  # a .gz cut short (an interrupted download or copy)
        raise ConfigError(f"{path}: truncated or corrupt gzip data ({e})") from None


def _iter_csv(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    with _open(path, "rb") as f:
        header = f.readline(MAX_LINE).decode("utf-8-sig", errors="replace").strip()
        if header != HEADER:
            raise ConfigError(f"{path}:1: expected header '{HEADER}', got '{header[:60]}'")
        first_line = 2
        while True:
            buf = f.read(_CHUNK_BYTES)
            if not buf:
                return
            if not buf.endswith(b"\n"):  # finish the last line, or add the newline a file may lack
                rest = f.readline(MAX_LINE + 1)
                if len(rest) > MAX_LINE and not rest.endswith(b"\n"):
                    line = first_line + buf.count(b"\n")
                    raise ConfigError(f"{path}:{line}: row is longer than any valid row ({MAX_LINE} bytes)")
                buf += rest
                buf += b"" if buf.endswith(b"\n") else b"\n"
            parsed, bad, lines = _parse_block(buf)
            if parsed is None:
                raise ConfigError(f"{path}:{first_line + bad}: {_row_error(lines[bad])}")
            if len(parsed[0]):
                yield parsed
            first_line += buf.count(b"\n")


def read_csv(path: str | Path, limit: int | None = None) -> CsvPuzzles:
    """Read and check a Sudoku CSV (its first `limit` rows in file order, or all of it);
    ConfigError('file:line: reason') at the first bad row."""
    names: dict[bytes, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    have = 0
    for q, a, r, src in iter_csv(path):
        if limit is not None:
            q, a, r, src = q[:limit - have], a[:limit - have], r[:limit - have], src[:limit - have]
        uniq, inv = np.unique(src, return_inverse=True)
        codes = np.array([names.setdefault(u, len(names)) for u in uniq], dtype=np.int32)
        parts.append((q, a, r, codes[inv]))
        have += len(q)
        if limit is not None and have >= limit:
            break
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
