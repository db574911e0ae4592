"""The puzzles shipped in the package (data/puzzles_subset.csv.gz, see data/PROVENANCE.md) and the label
every score on them carries. Light on purpose (no numpy, no numba): trm_core.data imports it for labels."""
from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path

SHIPPED_CSV = "puzzles_subset.csv.gz"
SHIPPED_LABEL = "shipped puzzles, not Sudoku-Extreme"
"""Sudoku-Extreme's test set holds permuted copies of the same collections (PROVENANCE.md), so a score
on these puzzles must never read as a Sudoku-Extreme score."""


def shipped_csv() -> contextlib.AbstractContextManager[Path]:
    """A context giving a filesystem path of the shipped puzzle CSV."""
    return resources.as_file(resources.files("trm_core.sudoku") / "data" / SHIPPED_CSV)
