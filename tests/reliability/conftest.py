"""The reliability suite (docs/RELIABILITY.md) reuses the end-to-end helpers of tests/sweeper."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweeper"))
