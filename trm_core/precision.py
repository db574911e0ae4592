"""The numeric regime of a run (TrainConfig.precision's values), one rule for training and evaluation:
evaluation runs under the precision the model was trained with.

    auto           bf16 autocast on CUDA, fp32 on CPU (bf16 on CPU is slow and changes results)
    fp32           no autocast
    bf16-autocast  bf16 autocast on any device
    bf16           pure-bf16 parameters (the reference's regime); no autocast, the weights are bf16

The trainer and the evaluation package both import it (neither imports the other for it).
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16-autocast", "bf16")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the training step ran under bf16 autocast, else None."""
    if precision == "bf16-autocast" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(dtype: torch.dtype | None, device: torch.device):
    """The autocast context for `dtype` (a no-op context when None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def with_weights_for(model: nn.Module, precision: str) -> nn.Module:
    """The model with bf16 weights for precision 'bf16' (a cast copy, so the caller's module is untouched;
    checkpoints are loaded into fp32 modules), else the model itself."""
    if precision != "bf16":
        return model
    params = list(model.parameters())
    if params and all(p.dtype == torch.bfloat16 for p in params):
        return model
    return copy.deepcopy(model).to(torch.bfloat16)
