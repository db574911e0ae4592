"""Sweep files: YAML -> validated, frozen SweepSpec (raw schema in schema.py, result in sweepspec.py).

Every problem becomes one `UserError` line: `FILE: key.path: what is wrong (did you mean 'x'?)`. The
file is read by yamlfile.py (safe, alias-free, bounded) and nothing in it is evaluated; resource
formulas go through the small parser in expr.py. Parameters (W&B dicts or Hydra strings) are
normalised to one `Param` form, so both spellings of a space compare equal. Keys that W&B's schema
allows but that do nothing here are accepted, each with a note (SweepSpec.notes).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sweeper.errors import UserError
from sweeper.spec import expr, wandb
from sweeper.spec.param import Param
from sweeper.spec.params import parse_param
from sweeper.spec.problems import Problem, nearest, short, validate_model
from sweeper.spec.schema import GOALS, MAX_GRID, METHODS, ResourcesRaw, SpecRaw, WarmStartRaw
from sweeper.spec.sweepspec import Metric, Scheduler, SweepSpec, WarmStart
from sweeper.spec.trainer_keys import check_key, config_for, expr_names, normalise_value, presets_to_check
from sweeper.spec.yamlfile import one_line, read_yaml

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Sweep names: they become folder and experiment names."""
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DURATION = 10 * 365 * 86400
_MAX_SHARE = 1e6
"""CPUs or GPUs one trial may ask for (a bound, so a 5,000-digit number is an error, not an overflow)."""
DEFAULT_RUN_CAP = 100
"""Trials of a non-grid sweep without run_cap (W&B has no cap: its sweeps run until stopped)."""


def load_spec(path: str | Path) -> SweepSpec:
    """Read, validate and normalise a sweep file; any problem raises UserError (one line)."""
    data = read_yaml(path)
    try:
        return build_spec(data, default_name=Path(path).stem)
    except Problem as p:
        raise UserError(one_line(f"{path}: {p}")) from None
    except RecursionError:  # a document nested past Python's stack, e.g. in a value pydantic walks
        raise UserError(f"{path}: nested too deeply") from None


def build_spec(data: Any, default_name: str = "sweep") -> SweepSpec:
    """Validate an already-parsed document; raises Problem('key.path: message')."""
    if data is None:
        raise Problem("the file is empty; a sweep needs at least `parameters` or `seeds`")
    if not isinstance(data, dict):
        raise Problem(f"expected a mapping of sweep keys at the top level, got {type(data).__name__}")
    data, notes = wandb.split_scheduler(data)
    notes = wandb.notes_for(data) + notes
    raw = validate_model(SpecRaw, {**data, "parameters": {}}, ())  # parameters: flattened below
    name = raw.name if raw.name is not None else default_name
    if not SAFE_NAME.fullmatch(name):
        raise Problem(f"name: {short(name)} must be 1-64 letters, digits, '-' or '_', starting with a letter or "
                      "digit (it becomes a directory name)")
    method = {"bayes": "tpe"}.get(raw.method, raw.method)
    if raw.method == "bayes":
        notes.append("method: bayes runs Optuna's TPE here (W&B's bayes is a Gaussian process: write `gp` for one)")
    if raw.method == "custom":
        raise Problem("method: custom means W&B's scheduler.engine runs your optimizer; name a method here "
                      f"({', '.join(METHODS)})")
    if method not in METHODS:
        raise Problem(f"method: {short(raw.method)} is not supported{nearest(raw.method, METHODS)}")
    metrics = _metrics(raw, notes)
    presets = presets_to_check(raw.base.preset, raw.profile)
    overrides = _overrides(raw.base.overrides, presets)
    grid = method == "grid"
    entries = wandb.flatten_parameters(data.get("parameters") or {})
    params = tuple(sorted((parse_param(str(k), v, overrides, presets, grid) for k, v in entries.items()),
                          key=lambda p: p.name))
    _check_method(method, params, metrics)
    run_cap = raw.run_cap
    if run_cap is None and method != "grid":  # W&B runs such a sweep until it is stopped
        run_cap = DEFAULT_RUN_CAP
        notes.append(f"run_cap: not given, so at most {DEFAULT_RUN_CAP} trials (W&B would run until stopped; "
                     "`sweeper stop NAME` ends a sweep early)")
    if len(set(raw.seeds)) != len(raw.seeds) or not raw.seeds:
        raise Problem(f"seeds: expected a non-empty list of distinct integers, got {short(raw.seeds)}")
    scheduler = _scheduler(raw, metrics)
    baseline = None
    if raw.baseline is not None:
        baseline = tuple(MappingProxyType(_overrides(b, presets, f"baseline[{i}]", overrides))
                         for i, b in enumerate(raw.baseline))
    if raw.tracking.uri is not None and not raw.tracking.uri.strip():
        raise Problem("tracking.uri: empty; omit it to use the embedded store")
    return SweepSpec(
        name=name, description=raw.description, method=method, metrics=metrics, parameters=params,
        run_cap=run_cap, base_preset=raw.base.preset, base_overrides=MappingProxyType(overrides),
        seeds=tuple(raw.seeds), profile=raw.profile, gpu=_gpu(raw.resources),
        cpus=_amount("cpus", raw.cpus, default=1.0), concurrency=raw.concurrency,
        time_budget=_duration(raw.time_budget), max_failures=raw.max_failures,
        trial_retries=raw.trial_retries, scheduler=scheduler, baseline=baseline,
        tracking_uri=raw.tracking.uri, sampler_seed=raw.sampler_seed, warm_start=_warm_start(raw, name),
        notes=tuple(notes))


def _metrics(raw: SpecRaw, notes: list[str]) -> tuple[Metric, ...]:
    if raw.metric is not None and raw.metrics is not None:
        raise Problem("metrics: give `metric` (one objective) or `metrics` (several), not both")
    items = raw.metrics if raw.metrics is not None else [raw.metric or None]
    key = "metrics" if raw.metrics is not None else "metric"
    if not items:
        raise Problem("metrics: empty list; name at least one metric")
    out = []
    for i, m in enumerate(items):
        where = f"metrics[{i}]" if key == "metrics" else "metric"
        if m is None:  # no metric key at all: puzzle accuracy, maximised
            out.append(Metric(name="eval/puzzle_acc", goal="maximize"))
            continue
        if m.name not in GOALS:
            raise Problem(f"{where}.name: unknown metric {short(m.name)}{nearest(m.name, GOALS)}")
        goal = m.goal or GOALS[m.name]
        if m.goal is None and goal != "minimize":
            notes.append(f"{where}.goal: not given, so {goal} {m.name} (W&B's default, minimize, would seek its worst)")
        if m.target is not None and not math.isfinite(m.target):
            raise Problem(f"{where}.target: expected a finite number, got {m.target}")
        for extra in ("impute", "impute_while_running"):
            if getattr(m, extra) is not None:
                notes.append(f"{where}.{extra}: ignored, failed and running trials are left out of the search model")
        out.append(Metric(name=m.name, goal=goal, target=m.target))
    if len({m.name for m in out}) != len(out):
        raise Problem("metrics: a metric is listed twice")
    return tuple(out)


def _overrides(raw: dict[str, Any], presets: tuple[str, ...], where: str = "base.overrides",
               under: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {}
    for key, value in raw.items():
        check_key(key, f"{where}.{key}", "key")
        out[key] = normalise_value(key, value)
    for preset in presets:
        config_for(preset, {**(under or {}), **out}, where)
    return out


def _check_method(method: str, params: tuple[Param, ...], metrics: tuple[Metric, ...]) -> None:
    if method == "grid":
        size = 1
        for p in params:  # counted, never listed: a range of 10**12 values costs nothing to refuse
            if p.kind != "constant":
                size *= p.grid_size()
            if size > MAX_GRID:
                raise Problem(f"parameters: the grid has more than {MAX_GRID} configurations; use random or tpe")
    if method == "cmaes" and len(metrics) > 1:
        raise Problem("method: cmaes optimises one metric; use nsga2, tpe, gp or random for several")


def _scheduler(raw: SpecRaw, metrics: tuple[Metric, ...]) -> Scheduler | None:
    if raw.scheduler is not None and raw.early_terminate is not None:
        raise Problem("early_terminate: give `scheduler` or W&B's `early_terminate`, not both")
    if raw.early_terminate is not None:
        # W&B's rule, not ASHA: ASHA decides once per rung on an interpolated percentile of the trials that
        # reached it, and max_t would end trials at max_iter; W&B re-checks every report against an order
        # statistic and lets trials run on. See Scheduler.rungs and sweeper/sweep/wandb_hyperband.py.
        et = raw.early_terminate
        rungs = wandb.hyperband_bands(et.min_iter, et.max_iter, et.s, et.eta)
        sched = Scheduler(type="wandb_hyperband", grace_period=rungs[0], reduction_factor=et.eta, max_t=None,
                          brackets=1, rungs=rungs, strict=et.strict)
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


def _warm_start(raw: SpecRaw, name: str) -> WarmStart | None:
    if raw.warm_start is None:
        return None
    if isinstance(raw.warm_start, str):
        ws, where = WarmStartRaw(sweep=raw.warm_start), "warm_start"
    elif isinstance(raw.warm_start, dict):
        ws, where = validate_model(WarmStartRaw, raw.warm_start, ("warm_start",)), "warm_start.sweep"
    else:
        raise Problem(f"warm_start: expected a sweep name or {{sweep: NAME, skip_existing: true}}, got {short(raw.warm_start)}")
    if not SAFE_NAME.fullmatch(ws.sweep):
        raise Problem(f"{where}: {short(ws.sweep)} is not a sweep name (1-64 letters, digits, '-' or '_')")
    if ws.sweep == name:
        raise Problem(f"{where}: a sweep cannot warm-start from itself ('{name}'); `sweeper resume` continues it")
    return WarmStart(sweep=ws.sweep, skip_existing=ws.skip_existing)


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
            value > 0 or (allow_zero and value == 0)) or value > _MAX_SHARE:
        raise Problem(f"{where}: expected a positive number or an expression such as '0.125 * K' (numbers up to "
                      f"{_MAX_SHARE:g}), got {short(value)}")
    return float(value)


def _duration(value: Any) -> float | None:
    """Seconds from a number or '90s' / '15m' / '2h' / '1h30m' (more than ten years is a typo, not a budget)."""
    if value is None:
        return None
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= _MAX_DURATION:
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        text = value.replace(" ", "")
        parts = _DURATION.findall(text)
        if re.fullmatch(r"\d+(\.\d*)?", text):
            seconds = float(text)
        elif parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds is not None and 0 < seconds <= _MAX_DURATION:
        return seconds
    raise Problem(f"time_budget: expected seconds or a duration like '15m', '2h', '1h30m', got {short(value)}")
