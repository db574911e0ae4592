"""How many GPUs this process can see, without importing torch where there can be none.

The sweep driver needs torch for nothing else, and importing it costs seconds at every `sweeper run`.
torch finds a GPU only through a device file: an NVIDIA GPU's /dev/nvidiaN, WSL2's /dev/dxg or ROCm's
/dev/kfd. Where none exists the count is 0 without torch; elsewhere torch counts (CUDA_VISIBLE_DEVICES
and the driver's state are its to judge).
"""
from __future__ import annotations

from pathlib import Path

DEVICE_FILES = ("nvidia[0-9]*", "dxg", "kfd")


def gpu_count(dev: Path = Path("/dev")) -> int:
    """CUDA (or ROCm) devices visible to this process; 0 without one."""
    if not any(any(dev.glob(pattern)) for pattern in DEVICE_FILES):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0

