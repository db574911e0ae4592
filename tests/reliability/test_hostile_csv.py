"""CSVs built to blow up the reader: one very wide field among thousands of valid rows, a line of commas,
a long last line without a newline, and gzip bombs without any newline (in the header or in a row).
Each must end in one `error:` line naming FILE:LINE, within a second of CPU and in bounded memory
(the old reader asked for [rows, widest field] bytes: 14.9 GiB for a 1.4 MB file)."""
from __future__ import annotations

import gzip
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

import trm_core.sudoku.build  # noqa: F401  (imported here so numba's start-up is not timed)
from sweeper.cli import app

SUBSET = Path(__file__).resolve().parents[2] / "trm_core" / "sudoku" / "data" / "puzzles_subset.csv.gz"
HEADER = b"source,question,answer,rating\n"
WIDE = 1_000_000
MEMORY_LIMIT = 48 << 20  # a few times the reader's 4 MiB chunk; far below rows x widest field


@pytest.fixture(scope="module")
def rows() -> list[bytes]:
    """2,001 valid rows of the shipped file (without the header)."""
    with gzip.open(SUBSET, "rb") as f:
        f.readline()
        return [f.readline() for _ in range(2001)]


def _gzip_without_newline(path: Path, head: bytes, megabytes: int) -> None:
    """`head` then `megabytes` MiB of 'a' and no newline, gzipped (a few hundred KiB on disk)."""
    block = b"a" * (1 << 20)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(head)
        for _ in range(megabytes):
            f.write(block)


def _valid_fields(row: bytes) -> list[bytes]:
    return row.rstrip(b"\n").split(b",")


def make(case: str, rows: list[bytes], folder: Path) -> tuple[Path, int, str]:
    """(file, line number of the bad row, fragment of the expected message) for one hostile case."""
    src, q, a, r = _valid_fields(rows[0])
    bad_line = len(rows) + 2  # header is line 1, the valid rows 2..2002, the hostile row after them
    if case == "wide_source":
        bad, fragment = b"x" * WIDE + b"," + q + b"," + a + b"," + r, f"source has {WIDE} bytes"
    elif case == "wide_rating":
        bad, fragment = src + b"," + q + b"," + a + b"," + b"1" * WIDE, f"rating has {WIDE} bytes"
    elif case == "wide_question":
        bad, fragment = src + b"," + q * (WIDE // 81) + b"," + a + b"," + r, "question has 999945 characters"
    elif case == "commas":
        bad, fragment = b"," * WIDE, f"expected 4 fields (source,question,answer,rating), got {WIDE + 1}"
    elif case == "long_last_line":
        bad, fragment = b"a" * (5 * WIDE), "longer than any valid row"
    if case in ("gzip_bomb_row", "gzip_bomb_header"):
        path = folder / f"{case}.csv.gz"
        if case == "gzip_bomb_row":
            _gzip_without_newline(path, HEADER + b"".join(rows[:12]), 64)
            return path, 14, "longer than any valid row"
        _gzip_without_newline(path, b"", 64)
        return path, 1, "expected header"
    path = folder / f"{case}.csv"
    tail = b"" if case == "long_last_line" else b"\n"
    path.write_bytes(HEADER + b"".join(rows) + bad + tail)
    return path, bad_line, fragment


CASES = ["wide_source", "wide_rating", "wide_question", "commas", "long_last_line", "gzip_bomb_row",
         "gzip_bomb_header"]


@pytest.mark.fault(fault="malformed CSVs")
@pytest.mark.parametrize("case", CASES)
def test_hostile_csv_is_one_error_line_fast_and_in_bounded_memory(tmp_path, rows, case):
    path, line, fragment = make(case, rows, tmp_path)
    args = ["data", "build", "--csv", str(path), "--subsample", "2", "--aug", "1", "--test", "1",
            "--out", str(tmp_path / "ds")]

    cpu = time.process_time()  # CPU time: other jobs on the machine do not count against the limit
    result = CliRunner().invoke(app, args)
    cpu = time.process_time() - cpu
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert f"{path}:{line}:" in lines[0] and fragment in lines[0], lines[0]
    assert cpu < 1.0, f"{cpu:.2f} s of CPU"
    assert not (tmp_path / "ds").exists()

    tracemalloc.start()  # numpy reports its buffers to tracemalloc, so this sees the arrays too
    try:
        CliRunner().invoke(app, args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"peak {peak / 2**20:.1f} MiB"
