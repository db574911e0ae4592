"""Sweep files: YAML -> validated, frozen SweepSpec (schema in schema.py).

Every problem becomes one `UserError` line: `FILE: key.path: what is wrong (did you mean 'x'?)`. The
file is read with yaml.safe_load and nothing in it is evaluated; resource formulas go through the small
parser in expr.py. Parameters (W&B dicts or Hydra strings) are normalised to one `Param` form, so both
spellings of a space compare equal.
"""
from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from sweeper.errors import UserError
from sweeper.spec import expr
from sweeper.spec.params import Param, parse_param
from sweeper.spec.problems import Problem, nearest, short, validate_model
from sweeper.spec.schema import (KNOWN_METRICS, MAX_BYTES, MAX_GRID, METHODS, Metric, MetricRaw, ResourcesRaw, Scheduler,
                                 SpecRaw, SweepSpec)
from sweeper.spec.trainer_keys import check_key, config_for, expr_names, normalise_value, presets_to_check

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WANDB_ONLY = ("program", "command", "project", "entity")


def load_spec(path: str | Path) -> SweepSpec:
    """Read, validate and normalise a sweep file; any problem raises UserError (one line)."""
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise UserError(f"{where}: no such file")
    if not path.is_file():
        raise UserError(f"{where}: not a file")
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise UserError(f"{where}: larger than {MAX_BYTES} bytes; a sweep file is hand-written YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        raise UserError(_one_line(f"{where}{line}: invalid YAML: {what}")) from None
    except yaml.YAMLError as e:
        raise UserError(_one_line(f"{where}: invalid YAML: {e}")) from None
    except RecursionError:
        raise UserError(f"{where}: invalid YAML: nested too deeply") from None
    try:
        return build_spec(data, default_name=path.stem)
    except Problem as p:
        raise UserError(_one_line(f"{where}: {p}")) from None


def build_spec(data: Any, default_name: str = "sweep") -> SweepSpec:
    """Validate an already-parsed document; raises Problem('key.path: message')."""
    if data is None:
        raise Problem("the file is empty; a sweep needs at least `parameters` or `seeds`")
    if not isinstance(data, dict):
        raise Problem(f"expected a mapping of sweep keys at the top level, got {type(data).__name__}")
    for key in _WANDB_ONLY:
        if key in data:
            raise Problem(f"{key}: W&B key not used here (every trial runs the TRM trainer); remove it")
    raw = validate_model(SpecRaw, data, ())
    name = raw.name if raw.name is not None else default_name
    if not _SAFE_NAME.fullmatch(name):
        raise Problem(f"name: {name!r} must be 1-64 letters, digits, '-' or '_', starting with a letter or "
                      "digit (it becomes a directory name)")
    method = {"bayes": "tpe"}.get(raw.method, raw.method)
    if method not in METHODS:
        raise Problem(f"method: {raw.method!r} is not supported{nearest(raw.method, METHODS)}")
    metrics = _metrics(raw)
    presets = presets_to_check(raw.base.preset, raw.profile)
    overrides = _overrides(raw.base.overrides, presets)
    params = tuple(sorted((parse_param(str(k), v, overrides, presets) for k, v in raw.parameters.items()),
                          key=lambda p: p.name))
    _check_method(method, params, metrics, raw.run_cap)
    if len(set(raw.seeds)) != len(raw.seeds) or not raw.seeds:
        raise Problem(f"seeds: expected a non-empty list of distinct integers, got {raw.seeds!r}")
    scheduler = _scheduler(raw, metrics)
    baseline = None
    if raw.baseline is not None:
        baseline = tuple(MappingProxyType(_overrides(b, presets, f"baseline[{i}]", overrides))
                         for i, b in enumerate(raw.baseline))
    if raw.tracking.uri is not None and not raw.tracking.uri.strip():
        raise Problem("tracking.uri: empty; omit it to use the embedded store")
    return SweepSpec(
        name=name, description=raw.description, method=method, metrics=metrics, parameters=params,
        run_cap=raw.run_cap, base_preset=raw.base.preset, base_overrides=MappingProxyType(overrides),
        seeds=tuple(raw.seeds), profile=raw.profile, gpu=_gpu(raw.resources),
        cpus=_amount("cpus", raw.cpus, default=1.0), concurrency=raw.concurrency,
        time_budget=_duration(raw.time_budget), max_failures=raw.max_failures,
        trial_retries=raw.trial_retries, scheduler=scheduler, baseline=baseline,
        tracking_uri=raw.tracking.uri, sampler_seed=raw.sampler_seed)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _metrics(raw: SpecRaw) -> tuple[Metric, ...]:
    if raw.metric is not None and raw.metrics is not None:
        raise Problem("metrics: give `metric` (one objective) or `metrics` (several), not both")
    items = raw.metrics if raw.metrics is not None else [raw.metric or MetricRaw(name="eval/puzzle_acc")]
    key = "metrics" if raw.metrics is not None else "metric"
    if not items:
        raise Problem("metrics: empty list; name at least one metric")
    for i, m in enumerate(items):
        if m.name not in KNOWN_METRICS:
            where = f"metrics[{i}].name" if key == "metrics" else "metric.name"
            raise Problem(f"{where}: unknown metric {m.name!r}{nearest(m.name, KNOWN_METRICS)}")
    if len({m.name for m in items}) != len(items):
        raise Problem("metrics: a metric is listed twice")
    return tuple(Metric(name=m.name, goal=m.goal) for m in items)


def _overrides(raw: dict[str, Any], presets: tuple[str, ...], where: str = "base.overrides",
               under: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {}
    for key, value in raw.items():
        check_key(key, f"{where}.{key}", "key")
        out[key] = normalise_value(key, value)
    for preset in presets:
        config_for(preset, {**(under or {}), **out}, where)
    return out


def _check_method(method: str, params: tuple[Param, ...], metrics: tuple[Metric, ...], run_cap: int | None) -> None:
    if method == "grid":
        size = 1
        for p in params:
            if p.kind == "constant":
                continue
            if not p.enumerable:
                raise Problem(f"parameters.{p.name}: method grid needs listed values, choice(), range() or "
                              f"int_uniform, not {p.distribution}")
            size *= len(p.grid_values())
            if size > MAX_GRID:
                raise Problem(f"parameters: the grid has more than {MAX_GRID} configurations; use random or tpe")
    elif run_cap is None:
        raise Problem(f"run_cap: required for method {method} (how many trials to run)")
    if method == "cmaes" and len(metrics) > 1:
        raise Problem("method: cmaes optimises one metric; use nsga2, tpe, gp or random for several")


def _scheduler(raw: SpecRaw, metrics: tuple[Metric, ...]) -> Scheduler | None:
    if raw.scheduler is not None and raw.early_terminate is not None:
        raise Problem("early_terminate: give `scheduler` or W&B's `early_terminate`, not both")
    if raw.early_terminate is not None:
        # W&B's hyperband early termination stops runs at brackets min_iter * eta^k as they report,
        # without waiting for a full rung: that is asynchronous successive halving (ASHA).
        et = raw.early_terminate
        sched = Scheduler(type="asha", grace_period=et.min_iter or 1, reduction_factor=et.eta,
                          max_t=et.max_iter, brackets=et.s)
    elif raw.scheduler is None or raw.scheduler.type == "none":
        return None
    else:
        s = raw.scheduler
        sched = Scheduler(type=s.type, grace_period=s.grace_period, reduction_factor=s.reduction_factor,
                          max_t=s.max_t, brackets=s.brackets)
    if len(metrics) > 1:
        raise Problem("scheduler: early stopping needs a single metric; drop it for multi-objective sweeps")
    if sched.max_t is not None and sched.max_t < sched.grace_period:
        raise Problem(f"scheduler.max_t: {sched.max_t} is below grace_period {sched.grace_period}")
    return sched


def _gpu(res: ResourcesRaw) -> float | str:
    if res.gpu is not None and res.trials_per_gpu is not None:
        raise Problem("resources: give `gpu` or `trials_per_gpu`, not both")
    if res.trials_per_gpu is not None:
        return 1.0 / res.trials_per_gpu
    return _amount("resources.gpu", res.gpu, default=1.0, allow_zero=True)


def _amount(where: str, value: Any, default: float, allow_zero: bool = False) -> float | str:
    """A per-trial number, or an expression over parameter names that is checked (not run) here."""
    if value is None:
        return default
    if isinstance(value, str):
        try:
            expr.parse(value, expr_names())
        except expr.ExprError as e:
            raise Problem(f"{where}: {e}") from None
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            value > 0 or (allow_zero and value == 0)) or value == float("inf"):
        raise Problem(f"{where}: expected a positive number or an expression such as '0.125 * K', got {short(value)}")
    return float(value)


def _duration(value: Any) -> float | None:
    """Seconds from a number or '90s' / '15m' / '2h' / '1h30m'."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf"):
        return float(value)
    if isinstance(value, str):
        text = value.replace(" ", "")
        if re.fullmatch(r"\d+(\.\d*)?", text) and float(text) > 0:
            return float(text)
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
            if seconds > 0:
                return seconds
    raise Problem(f"time_budget: expected seconds or a duration like '15m', '2h', '1h30m', got {short(value)}")
