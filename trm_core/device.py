"""Which device a run uses: the one helper every part of trm_core (and sweeper) asks."""
from __future__ import annotations

import torch


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` (or None): CUDA when available, else the CPU; anything else as torch reads it (cpu, cuda, cuda:1)."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
