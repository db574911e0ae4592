"""Measurement helpers shared by the benchmark scripts: FLOP counts, the dense-matmul rate, timed training,
the environment record and JSON output.

trm_core is imported inside the functions, so a script can install benchmarks/yaml_standin.py first.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import torch

FLOPS_FORMULA = (
    "matmul FLOPs of one training ACT step of one chain = n_blocks * 6 * S * D * (h_tok + h_ch) per call of f "
    "(a SwiGLU costs 6*c_in*h per row: up c_in->2h, down h->c_in; token mixing has D rows of c_in=S, channel "
    "mixing S rows of c_in=D), times (L_cycles + 1) calls of f per H-cycle, times (H_cycles - 1) forward-only "
    "cycles + 3 for the last cycle (forward + backward = 3 forwards). Head, embedding, norms, elementwise ops "
    "and the optimiser step are not counted, so MFU slightly understates the work done."
)


def flops_per_chain_step(cfg) -> float:
    """Matmul FLOPs of one training chain-step (see FLOPS_FORMULA)."""
    from trm_core.model import swiglu_hidden

    m = cfg.model
    h_tok = swiglu_hidden(m.seq_len, m.expansion, m.multiple_of)
    h_ch = swiglu_hidden(m.hidden, m.expansion, m.multiple_of)
    per_f = m.n_blocks * 6 * m.seq_len * m.hidden * (h_tok + h_ch)
    return per_f * (m.l_cycles + 1) * ((m.h_cycles - 1) + 3)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 1.0) -> float:
    """FLOP/s of a square n x n matmul in `dtype`, best of two runs of about `seconds`/2 each.

    On CUDA the runs are timed with CUDA events (device time, no host overhead); on CPU with the wall clock.
    """
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)

    def timed(iters: int) -> float:
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                torch.matmul(a, b, out=c)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.matmul(a, b, out=c)
        return time.perf_counter() - t0

    timed(3)
    sync(device)
    iters = max(3, int(seconds / 2 / max(timed(3) / 3, 1e-9)))
    return 2 * n**3 * iters / min(timed(iters), timed(iters))


def peak_mem_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def timed_train(cfg, window_s: float, warmup: int = 3, eval_puzzles: int = 32,
                on_ready: Callable[[], None] | None = None, on_done: Callable[[dict], None] | None = None) -> dict:
    """Train `cfg` with trm_core.trainer.train and time the steps after the first `warmup` ones.

    The warm-up steps (cuBLAS heuristics, torch.compile) are excluded: after step `warmup` the device is
    synchronised, `on_ready()` is called (a barrier for packed processes) and the clock starts; once
    `window_s` has passed the device is synchronised again, `on_done(result)` is called and the run stops
    through train()'s should_stop. train() then runs its final evaluation on `eval_puzzles` puzzles,
    outside the window (a caller that only wants the timing can leave from on_done). Peak memory is that
    of the timed steps. Returns the result: chain-steps/s, ms/step, TFLOP/s, peak GiB, steps, seconds,
    warmup_s (start to first timed step: data, model, compile) and the final eval/puzzle_acc.
    """
    from trm_core.trainer import pick_device, train

    device = pick_device(cfg.device)
    big = 10**9  # the window, not the step count, ends the run; never log mid-window (logging syncs)
    cfg = dataclasses.replace(cfg, steps=big, log_every=big, eval_every=big, eval_puzzles=eval_puzzles)
    flops, rows = flops_per_chain_step(cfg), cfg.batch_size * cfg.model.k
    state: dict = {"step": 0, "t_start": time.perf_counter(), "t0": None}

    def should_stop() -> bool:  # train() calls this once after every step
        state["step"] += 1
        if state["step"] == warmup:
            sync(device)
            if on_ready is not None:
                on_ready()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            state["t0"] = time.perf_counter()
            return False
        if state["t0"] is None or time.perf_counter() - state["t0"] < window_s:
            return False
        sync(device)
        seconds, steps = time.perf_counter() - state["t0"], state["step"] - warmup
        rate = steps * rows / seconds
        state["result"] = {"chain_steps_per_s": rate, "ms_per_step": 1000 * seconds / steps,
                           "tflops": flops * rate / 1e12, "peak_mem_gib": peak_mem_gib(device), "steps": steps,
                           "seconds": seconds, "warmup_s": state["t0"] - state["t_start"]}
        if on_done is not None:
            on_done(state["result"])
        return True

    final = train(cfg, None, None, should_stop)
    return {**state["result"], "eval_puzzle_acc": final.get("eval/puzzle_acc")}


def env_info() -> dict:
    """Versions, device, GPU, TF32 settings and which YAML reader is in use."""
    cuda = torch.cuda.is_available()
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "numpy": _version("numpy"), "numba": _version("numba"), "cpu_count": os.cpu_count(),
            "yaml": "stand-in (PyYAML not installed)" if getattr(sys.modules.get("yaml"), "STANDIN", False)
            else f"PyYAML {_version('PyYAML')}", "device": "cuda" if cuda else "cpu"}
    info["tf32"] = {"float32_matmul_precision": _read(torch.get_float32_matmul_precision),
                    "cuda.matmul.allow_tf32": _read(lambda: torch.backends.cuda.matmul.allow_tf32),
                    "cudnn.allow_tf32": _read(lambda: torch.backends.cudnn.allow_tf32),
                    "cuda.matmul.fp32_precision": _read(lambda: torch.backends.cuda.matmul.fp32_precision)}
    if cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu_name=props.name, gpu_total_gib=props.total_memory / 2**30, gpu_count=torch.cuda.device_count(),
                    capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version())
    return info


def _read(get: Callable[[], object]) -> object:
    """A setting, or why it could not be read (torch >= 2.9 moves TF32 control to fp32_precision and warns
    about, or may refuse, the old allow_tf32 flags; torch < 2.9 has no fp32_precision)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return get()
        except Exception as e:
            return f"unreadable: {type(e).__name__}: {e}"[:200]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def imported_modules() -> list[str]:
    """Top-level names of the non-standard-library modules this process has imported."""
    return sorted({name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names))


def cpu_seconds() -> dict:
    """CPU seconds (user + system) of this process and of the child processes it has waited for."""
    own, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"self": own.ru_utime + own.ru_stime, "children": kids.ru_utime + kids.ru_stime}


def _clean(value):
    """NaN/inf -> None, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: dict) -> None:
    """Write atomically (a killed run leaves the previous complete file, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_clean(data), indent=2))
    os.replace(tmp, path)
