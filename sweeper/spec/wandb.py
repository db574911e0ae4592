"""W&B compatibility: the keys of W&B's sweep schema (sweeps 0.3.0, sweeps/config/schema.json) that
mean something else, or nothing, here.

- Keys with no effect (program, command, project, ...) are accepted and each gives one note.
- Nested parameters (W&B's param_dict, `optim: {parameters: {muon_lr: ..}}`) become dotted keys.
- W&B's `scheduler: {engine: ..}` (a custom optimizer loaded from a Python file) is told apart from ours.
- `early_terminate: {type: hyperband, ..}` becomes a `wandb_hyperband` Scheduler with W&B's own bands.
"""
from __future__ import annotations

from typing import Any

from sweeper.spec.problems import Problem, short

IGNORED = {
    "program": "ignored, every trial runs the TRM trainer",
    "command": "ignored, every trial runs the TRM trainer with the sampled `parameters` as its settings",
    "project": "ignored, the MLflow experiment is named after the sweep (`name`)",
    "entity": "ignored, runs go to the MLflow store (`tracking.uri`), which has no entities",
    "controller": "ignored, `sweeper run` is the sweep's controller",
    "apiVersion": "ignored (W&B metadata)",
    "kind": "ignored (W&B metadata)",
    "job": "ignored, W&B Launch is not used: every trial runs the TRM trainer",
    "image_uri": "ignored, W&B Launch is not used: every trial runs the TRM trainer",
}
"""Top-level W&B keys accepted with no effect here, and the note each gives."""
MAX_BAND = 2**31
"""W&B lists 100 bands for min_iter; those past this many evaluations are dropped (no trial gets there)."""


def notes_for(data: dict[str, Any]) -> list[str]:
    """One note per W&B key of `data` that has no effect here."""
    return [f"{key}: {why}" for key, why in IGNORED.items() if key in data]


def split_scheduler(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """W&B's `scheduler: {engine: ...}` is not ours (`scheduler: {type: asha, ...}`): engine `wandb` is
    W&B's own search, which `method` already names, so it is dropped with a note; `optuna` and `ax` load
    Python from the `source` file, and a sweep file here runs no code, so they are refused."""
    sched = data.get("scheduler")
    if not isinstance(sched, dict) or "engine" not in sched:
        return data, []
    unknown = sorted(set(sched) - {"engine", "source", "optimizer", "search_space"})
    if unknown:
        raise Problem(f"scheduler.{unknown[0]}: unknown key of W&B's scheduler (engine, source, optimizer, search_space)")
    engine = sched["engine"]
    if engine != "wandb":
        raise Problem(f"scheduler.engine: {short(engine)} runs optimizer code from a file, which sweep files here never do; "
                      "set `method` (tpe, gp, cmaes, nsga2, qmc, random, grid) instead")
    rest = {k: v for k, v in data.items() if k != "scheduler"}
    return rest, ["scheduler: engine wandb ignored, `method` picks the search here"]


def flatten_parameters(raw: Any) -> dict[str, Any]:
    """W&B's nested parameters -> dotted keys: {optim: {parameters: {muon_lr: X}}} -> {'optim.muon_lr': X}."""
    if not isinstance(raw, dict):
        raise Problem(f"parameters: expected a mapping of parameter names, got {type(raw).__name__}")
    out: dict[str, Any] = {}

    def walk(group: dict, prefix: str) -> None:
        for key, value in group.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and "parameters" in value:
                extra = sorted(str(k) for k in value if k != "parameters")
                if extra:
                    raise Problem(f"parameters.{name}.{extra[0]}: a nested group (W&B's param_dict) holds only `parameters`")
                inner = value["parameters"]
                if not isinstance(inner, dict) or not inner:
                    raise Problem(f"parameters.{name}.parameters: expected a non-empty mapping of parameters")
                walk(inner, name + ".")
            elif name in out:
                raise Problem(f"parameters.{name}: given twice (as a dotted key and inside a nested group)")
            else:
                out[name] = value

    walk(raw, "")
    return out


def hyperband_bands(min_iter: int | None, max_iter: int | None, s: int | None, eta: float) -> tuple[int, ...]:
    """W&B's hyperband bands (sweeps/hyperband_stopping.py), in reports of the metric (here: evaluations).

    With max_iter (it wins over min_iter, as in W&B): max_iter / eta^k truncated, k = 1..s, stopping below 1,
    e.g. max_iter 27, eta 3, s 2 -> (3, 9). With min_iter: min_iter * eta^k truncated, k = 0..99, e.g.
    min_iter 3, eta 3 -> (3, 9, 27, 81, ...). The same float steps as W&B (repeated division or
    multiplication), so a truncation lands where W&B's does.
    """
    bands: list[int] = []
    if max_iter is not None:
        if s is None:
            raise Problem("early_terminate: max_iter needs s (how many bands below max_iter); W&B fails without it too")
        band: float = max_iter
        for _ in range(s):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
    elif min_iter is not None:
        band = min_iter
        for _ in range(100):
            if band > MAX_BAND:
                break
            bands.append(int(band))
            band *= eta
    else:
        raise Problem("early_terminate: give min_iter, or max_iter with s")
    if not bands:
        raise Problem(f"early_terminate: no band at or above 1 evaluation (max_iter {max_iter} / eta {eta:g}); "
                      "raise max_iter or lower eta")
    return tuple(sorted(set(bands)))
