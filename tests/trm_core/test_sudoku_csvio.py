"""The CSV reader: exact reads of good files, one 'file:line: reason' for each kind of bad row."""
import itertools
from pathlib import Path

import numpy as np
import pytest

from trm_core.config import ConfigError
from trm_core.sudoku.csvio import HEADER, read_csv, write_csv
from trm_core.sudoku.generate import generate

REAL = Path("/work/shared/sudoku/puzzles_rated.csv")  # present on the dev machine only


@pytest.fixture(scope="module")
def pairs():
    return generate(5, "easy", seed=0)


def _rows(pairs):
    p, s, _ = pairs
    q = ["".join("." if d == 0 else str(d) for d in row) for row in p]
    a = ["".join(str(d) for d in row) for row in s]
    return q, a


def _write(tmp_path, lines):
    path = tmp_path / "p.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def test_reads_a_good_file_exactly_with_zero_blanks_crlf_and_empty_rating(tmp_path, pairs):
    q, a = _rows(pairs)
    lines = [f"src{i},{q[i].replace('.', '0') if i % 2 else q[i]},{a[i]},{i}" for i in range(5)]
    lines[4] = lines[4].rsplit(",", 1)[0] + ","
    path = tmp_path / "p.csv"
    path.write_bytes(("\r\n".join([HEADER, *lines]) + "\r\n").encode())
    data = read_csv(path)
    assert (data.puzzles == pairs[0]).all() and (data.solutions == pairs[1]).all()
    assert data.ratings[:4].tolist() == [0, 1, 2, 3] and np.isnan(data.ratings[4])
    assert [data.source_names[c] for c in data.sources] == [f"src{i}" for i in range(5)]


def test_write_then_read_roundtrips_including_gzip(tmp_path, pairs):
    p, s, r = pairs
    for name in ("x.csv", "x.csv.gz"):
        write_csv(tmp_path / name, p, s, r, "gen")
        back = read_csv(tmp_path / name)
        assert (back.puzzles == p).all() and (back.solutions == s).all() and (back.ratings == r).all()


def _bad_rows(q, a):
    first_given = next(i for i, ch in enumerate(q) if ch != ".")
    clash = q[:first_given] + str(int(q[first_given]) % 9 + 1) + q[first_given + 1:]
    swapped = a[1] + a[0] + a[2:]  # two cells of a row swapped: columns 1 and 2 now repeat digits
    blanked_q = "." * 81
    return {
        "expected 4 fields": f"s,{q},{a}",
        "question has 80 characters": f"s,{q[:80]},{a},1",
        "answer has 82 characters": f"s,{q},{a}9,1",
        "question has invalid character 'x'": f"s,x{q[1:]},{a},1",
        "answer has invalid character '0'": f"s,{q},0{a[1:]},1",
        "rating 'hard' is not a number": f"s,{q},{a},hard",
        "answer disagrees with the given": f"s,{clash},{a},1",
        "answer is not a valid Sudoku grid (column 1": f"s,{blanked_q},{swapped},1",
    }


@pytest.mark.parametrize("bad_line", [3, 4])
def test_each_kind_of_bad_row_is_reported_with_its_line(tmp_path, pairs, bad_line):
    q, a = _rows(pairs)
    good = f"s,{q[0]},{a[0]},1"
    for reason, row in _bad_rows(q[1], a[1]).items():
        lines = [good] * 4
        lines[bad_line - 2] = row
        path = _write(tmp_path, lines)
        with pytest.raises(ConfigError) as err:
            read_csv(path)
        msg = str(err.value)
        assert msg.startswith(f"{path}:{bad_line}: {reason}"), msg
        assert "\n" not in msg


def test_bad_header_and_header_only(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b,c,d\n")
    with pytest.raises(ConfigError, match=r"h.csv:1: expected header"):
        read_csv(path)
    path.write_text(HEADER + "\n")
    with pytest.raises(ConfigError, match="no puzzles"):
        read_csv(path)


@pytest.mark.skipif(not REAL.is_file(), reason="puzzles_rated.csv is on the dev machine only")
def test_reads_a_slice_of_the_real_file_unchanged(tmp_path):
    path = tmp_path / "real.csv"
    with REAL.open() as f:
        path.write_text("".join(itertools.islice(f, 3001)))
    data = read_csv(path)
    assert len(data) == 3000
    assert data.source_names == ["puzzles2_17_clue"] and (data.ratings >= 0).all()
