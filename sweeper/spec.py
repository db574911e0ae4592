"""Sweep files: YAML -> validated, frozen SweepSpec.

A sweep file is a superset of the W&B sweep schema plus project keys (base preset, seeds, profile,
resources, scheduler, ...). Every problem becomes one `UserError` line: `FILE: key.path: what is
wrong (did you mean 'x'?)`. The file is read with yaml.safe_load and nothing in it is evaluated;
resource formulas go through the small parser in sweeper/expr.py. Parameters (W&B dicts or Hydra
strings) are normalised to one `Param` form, so both spellings of a space compare equal.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sweeper import expr
from sweeper.errors import UserError
from trm_core.config import TrainConfig, from_dict, preset_dict, preset_names, set_dotted

KNOWN_METRICS = ("eval/puzzle_acc", "eval/cell_acc", "eval/mean_halt_step", "train/loss", "cost/chain_steps")
"""Metric keys the trainer reports (a typo here would make every trial look failed)."""
METHODS = ("grid", "random", "tpe", "gp", "cmaes", "nsga2", "qmc")
"""Search methods; W&B's `bayes` is read as tpe."""
EXPR_ALIASES = {"K": "model.k"}
"""Short names usable in resource expressions, besides every numeric trainer key."""

MAX_BYTES = 1_000_000
"""Sweep files larger than this are refused (they are hand-written; this bounds parse work)."""
MAX_GRID = 100_000
"""Grids with more configurations are refused: Optuna's GridSampler materialises every one."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WANDB_ONLY = ("program", "command", "project", "entity")


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


class _MetricRaw(_Raw):
    name: str
    """A metric the trainer reports, e.g. eval/puzzle_acc."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether larger (maximize) or smaller (minimize) is better."""


class _BaseRaw(_Raw):
    preset: str | None = None
    """Trainer preset every trial starts from (wins over `profile`)."""
    overrides: dict[str, Any] = {}
    """Dotted trainer keys applied on top of the preset for every trial."""


class _SchedulerRaw(_Raw):
    type: Literal["asha", "hyperband", "median", "none"] = "asha"
    """Ray Tune trial scheduler that stops weak trials early (none = run every trial to the end)."""
    grace_period: int = Field(1, ge=1)
    """Evaluations (reports) a trial gets before it can be stopped."""
    reduction_factor: float = Field(3.0, gt=1)
    """Keep 1/reduction_factor of the trials at each rung."""
    max_t: int | None = Field(None, ge=1)
    """Evaluations of a full trial (null: derived from steps / eval_every by the runner)."""
    brackets: int = Field(1, ge=1)
    """ASHA brackets (W&B's `s`)."""


class _EarlyTerminateRaw(_Raw):
    """W&B's early_terminate; it is converted to the equivalent ASHA scheduler."""

    type: Literal["hyperband"]
    min_iter: int | None = Field(None, ge=1)
    max_iter: int | None = Field(None, ge=1)
    s: int = Field(1, ge=1)
    eta: float = Field(3.0, gt=1)


class _ResourcesRaw(_Raw):
    gpu: Any = None
    """GPU fraction per trial: a number or an expression over parameters such as `0.125 * K`."""
    trials_per_gpu: int | None = Field(None, ge=1)
    """Alternative to `gpu`: this many trials share one GPU."""


class _TrackingRaw(_Raw):
    uri: str | None = None
    """MLflow tracking URI (null: the embedded store of the sweep directory)."""


class _SpecRaw(_Raw):
    name: str | None = None
    description: str = ""
    method: str = "grid"
    metric: _MetricRaw | None = None
    metrics: list[_MetricRaw] | None = None
    parameters: dict[str, Any] = {}
    early_terminate: _EarlyTerminateRaw | None = None
    run_cap: int | None = Field(None, ge=1)
    base: _BaseRaw = _BaseRaw()
    seeds: list[int] = [0]
    profile: str = "auto"
    resources: _ResourcesRaw = _ResourcesRaw()
    cpus: Any = 1
    concurrency: int | None = Field(None, ge=1)
    time_budget: Any = None
    max_failures: int | None = Field(None, ge=0)
    trial_retries: int = Field(0, ge=0)
    scheduler: _SchedulerRaw | None = None
    baseline: list[dict[str, Any]] | None = None
    tracking: _TrackingRaw = _TrackingRaw()
    sampler_seed: int = 0


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    """Metric key reported by the trainer."""
    goal: Literal["maximize", "minimize"]
    """Direction of improvement."""


@dataclass(frozen=True, kw_only=True)
class Scheduler:
    type: Literal["asha", "hyperband", "median"]
    """Ray Tune scheduler kind."""
    grace_period: int
    """Evaluations before a trial may be stopped."""
    reduction_factor: float
    """Fraction 1/reduction_factor survives each rung."""
    max_t: int | None
    """Evaluations of a full trial (null: the runner derives it)."""
    brackets: int
    """ASHA brackets."""


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated sweep; build it with `load_spec`. Fields mirror the file after normalisation."""

    name: str
    """Safe directory name of the sweep."""
    description: str
    """Free text."""
    method: str
    """One of METHODS (bayes is stored as tpe)."""
    metrics: tuple[Metric, ...]
    """One metric, or several for multi-objective search."""
    parameters: tuple[Param, ...]
    """Swept and constant parameters, sorted by name."""
    run_cap: int | None
    """At most this many trials (configurations x seeds)."""
    base_preset: str | None
    """Explicit base preset (wins over profile)."""
    base_overrides: Mapping[str, Any]
    """Dotted overrides applied to every trial."""
    seeds: tuple[int, ...]
    """Each configuration runs once per seed."""
    profile: str
    """auto or a preset name."""
    gpu: float | str
    """GPU share per trial: a number or an expression (see sweeper.expr)."""
    cpus: float | str
    """CPUs per trial: a number or an expression."""
    concurrency: int | None
    """Trials at once (null: as many as resources allow)."""
    time_budget: float | None
    """Seconds for the whole sweep (null: no limit)."""
    max_failures: int | None
    """Stop the sweep after this many failed trials (null: never)."""
    trial_retries: int
    """Retries of a failed trial."""
    scheduler: Scheduler | None
    """Early stopping (null: every trial runs to the end)."""
    baseline: tuple[Mapping[str, Any], ...] | None
    """Configurations evaluated first (null: the base config)."""
    tracking_uri: str | None
    """MLflow URI (null: embedded store)."""
    sampler_seed: int
    """Seed of the Optuna sampler."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict of the normalised spec."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["metrics"] = [dataclasses.asdict(m) for m in self.metrics]
        out["parameters"] = [p.to_dict() for p in self.parameters]
        out["base_overrides"] = dict(self.base_overrides)
        out["scheduler"] = dataclasses.asdict(self.scheduler) if self.scheduler else None
        out["baseline"] = None if self.baseline is None else [dict(b) for b in self.baseline]
        out["seeds"] = list(self.seeds)
        return out

    @property
    def spec_hash(self) -> str:
        """Stable 16-hex-digit hash of what the spec runs: key order, spelling and description do not matter."""
        blob = json.dumps({**self.to_dict(), "description": None}, sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def swept(self) -> tuple[Param, ...]:
        """Parameters that vary (constants excluded)."""
        return tuple(p for p in self.parameters if p.kind != "constant")


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
    raw = validate_model(_SpecRaw, data, ())
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


def validate_model(model: type[BaseModel], data: Any, loc: tuple) -> Any:
    """pydantic validation whose first error becomes a Problem('key.path: message')."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Problem(_pydantic_line(model, e.errors(include_url=False)[0], loc)) from None
    except RecursionError:
        raise Problem(f"{_path(loc) or 'document'}: nested too deeply") from None


def _pydantic_line(model: type[BaseModel], err: dict, prefix: tuple) -> str:
    loc = prefix + tuple(err["loc"])
    where = _path(loc) or "document"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key{nearest(str(loc[-1]), _fields_at(model, err['loc'][:-1]))}"
    if kind == "missing":
        return f"{where}: required key missing"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        hint = nearest(str(err["input"]), options)
        return f"{where}: {_short(err['input'])} is not one of {', '.join(options)}{hint}"
    msg = err["msg"]
    return f"{where}: {msg[:1].lower() + msg[1:]}, got {_short(err.get('input'))}"


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the pydantic model found at `loc` (for nearest-name hints)."""
    def unwrap(tp: Any) -> Any:  # list[X] | None -> X, when X is a model
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        found = [unwrap(a) for a in typing.get_args(tp)]
        return next((f for f in found if f is not None), None)

    tp = model
    for part in loc:
        if tp is not None and part in tp.model_fields:
            tp = unwrap(tp.model_fields[part].annotation)
    return list(tp.model_fields) if tp is not None else []


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f".{part}"
    return out.lstrip(".")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _metrics(raw: _SpecRaw) -> tuple[Metric, ...]:
    if raw.metric is not None and raw.metrics is not None:
        raise Problem("metrics: give `metric` (one objective) or `metrics` (several), not both")
    items = raw.metrics if raw.metrics is not None else [raw.metric or _MetricRaw(name="eval/puzzle_acc")]
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


def _scheduler(raw: _SpecRaw, metrics: tuple[Metric, ...]) -> Scheduler | None:
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


def _gpu(res: _ResourcesRaw) -> float | str:
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
        raise Problem(f"{where}: expected a positive number or an expression such as '0.125 * K', got {_short(value)}")
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
    raise Problem(f"time_budget: expected seconds or a duration like '15m', '2h', '1h30m', got {_short(value)}")


# ---------------------------------------------------------------------------------------------------
# trainer keys: names are checked against TrainConfig, values by resolving a real config

AUTO_PRESETS = {True: "paper", False: "cpu-sweep"}
"""profile: auto picks the paper preset on a GPU and the CPU sweep preset otherwise."""


class Problem(Exception):
    """A spec problem; str() is 'key.path: message' and load_spec prefixes the file name."""


def nearest(word: str, options: Any) -> str:
    """' (did you mean 'x'?)' for the closest option, or the list of options when few and none is close."""
    options, word = sorted(str(o) for o in options), str(word)
    # A prefix ('grace' for 'grace_period') beats difflib's ratio, which can prefer 'brackets'.
    close = [o for o in options if word and o.startswith(word)][:1]
    close = close or difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    if not close and len(options) <= 10:
        return f" (valid: {', '.join(options)})" if options else ""
    close = close or difflib.get_close_matches(word, options, n=1, cutoff=0.0)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.cache
def _leaves() -> dict[str, Any]:
    """Every dotted value key of TrainConfig -> its type (Optional unwrapped)."""
    out: dict[str, Any] = {}

    def walk(cls: type, prefix: str) -> None:
        for key, tp in typing.get_type_hints(cls).items():
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(inner) == 1:
                tp = inner[0]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{key}.")
            else:
                out[prefix + key] = tp
    walk(TrainConfig, "")
    return out


def field_kind(key: str) -> str:
    """'int', 'float', 'bool' or 'other' for a dotted trainer key."""
    tp = _leaves().get(key)
    return {int: "int", float: "float", bool: "bool"}.get(tp, "other")


@functools.cache
def expr_names() -> frozenset[str]:
    """Names a resource expression may use: numeric trainer keys and EXPR_ALIASES."""
    return frozenset([k for k in _leaves() if field_kind(k) in ("int", "float")] + list(EXPR_ALIASES))


def check_key(key: str, where: str, what: str) -> None:
    """Raise Problem unless `key` names a value of TrainConfig (seed is the `seeds` key's job)."""
    if key == "seed":
        raise Problem(f"{where}: seeds come from the top-level `seeds` key (each configuration runs once per seed)")
    if key not in _leaves():
        sections = {k.split(".")[0] for k in _leaves() if "." in k}
        if key in sections:
            example = next(k for k in _leaves() if k.startswith(key + "."))
            raise Problem(f"{where}: '{key}' is a section; name one of its values, e.g. '{example}'")
        raise Problem(f"{where}: unknown {what}{nearest(key, _leaves())}")


def normalise_value(key: str, value: Any) -> Any:
    """Give numbers the field's type, so `4`, `4.0` and `'4'` spell one configuration and hash alike."""
    kind = field_kind(key)
    if kind in ("int", "float") and isinstance(value, str):
        # PyYAML follows YAML 1.1, which reads 1e-4 (no dot) as a string; numbers are meant.
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@functools.cache
def _preset(name: str) -> dict:
    return preset_dict(name)


def presets_to_check(base_preset: str | None, profile: str) -> tuple[str, ...]:
    """The presets a trial may start from: base.preset if given, else the profile's (both, for auto)."""
    names = preset_names()
    if profile != "auto" and profile not in names:
        raise Problem(f"profile: unknown profile {profile!r}{nearest(profile, ['auto', *names])}")
    if base_preset is not None:
        if base_preset not in names:
            raise Problem(f"base.preset: unknown preset {base_preset!r}{nearest(base_preset, names)}")
        return (base_preset,)
    return tuple(AUTO_PRESETS.values()) if profile == "auto" else (profile,)


def config_for(preset: str, overrides: Mapping[str, Any], where: str) -> TrainConfig:
    """Resolve preset + overrides like trm_core.config.resolve, turning its errors into a Problem."""
    d = copy.deepcopy(_preset(preset))
    try:
        for key, value in overrides.items():
            set_dotted(d, key, value)
        return from_dict(TrainConfig, d)
    except (ValueError, OverflowError) as e:  # ConfigError; int(nan) / int(inf) in trm_core raise these
        msg = re.sub(r"^[\w.]+: ", "", str(e))
        raise Problem(f"{where}: {msg} (with preset '{preset}')") from None


# ---------------------------------------------------------------------------------------------------
# parameters: W&B dicts and Hydra strings, both normalised to Param

DISTRIBUTIONS = ("uniform", "int_uniform", "log_uniform_values", "q_uniform", "categorical", "constant")
"""W&B distributions understood here; others are refused by name rather than approximated."""
UNSUPPORTED = ("normal", "q_normal", "log_normal", "q_log_normal", "log_uniform", "q_log_uniform",
               "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "beta", "q_beta")
_HYDRA = ("choice", "range", "interval", "tag", "int")
_SCALARS = (str, int, float, bool, type(None))


class _ParamRaw(_Raw):
    values: list[Any] | None = None
    """The choices (categorical)."""
    value: Any = None
    """A fixed value (constant)."""
    distribution: str | None = None
    """One of DISTRIBUTIONS (inferred from the other keys when absent, as W&B does)."""
    min: Any = None
    """Lower bound (inclusive)."""
    max: Any = None
    """Upper bound (inclusive)."""
    q: Any = None
    """Step of q_uniform / int_uniform."""


@dataclass(frozen=True, kw_only=True)
class Param:
    """One parameter of the space in a single normal form, however the file spelled it."""

    name: str
    """Dotted trainer key."""
    kind: Literal["constant", "values", "float", "int"]
    """constant and values list `values`; float and int are ranges [low, high]."""
    values: tuple = ()
    """The choices (the single value for a constant)."""
    low: float | int | None = None
    """Range start (inclusive)."""
    high: float | int | None = None
    """Range end (inclusive; moved down onto the step grid)."""
    log: bool = False
    """Sample the float range uniformly in log space."""
    step: float | int | None = None
    """Grid step of a range (ints always have one)."""

    @property
    def distribution(self) -> str:
        """The W&B name of this distribution."""
        if self.kind in ("constant", "values"):
            return "constant" if self.kind == "constant" else "categorical"
        if self.kind == "int":
            return "int_uniform"
        return "log_uniform_values" if self.log else ("q_uniform" if self.step else "uniform")

    @property
    def enumerable(self) -> bool:
        """Whether the values can be listed (a grid can use it)."""
        return self.kind != "float" or self.step is not None

    def grid_values(self) -> list:
        """Every value, in order (only for enumerable parameters)."""
        if self.kind in ("constant", "values"):
            return list(self.values)
        n = round((self.high - self.low) / self.step) + 1
        if self.kind == "int":
            return list(range(self.low, self.high + 1, self.step))
        return [round(self.low + i * self.step, 12) for i in range(n)]

    def describe(self) -> str:
        """Short human text of the values or range."""
        if self.kind in ("constant", "values"):
            return ", ".join(str(v) for v in self.values)
        step = f" step {self.step}" if self.step not in (None, 1) else ""
        return f"[{self.low}, {self.high}]{step}{' (log)' if self.log else ''}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the spec hash)."""
        return {**dataclasses.asdict(self), "values": list(self.values)}


def parse_param(name: str, raw: Any, overrides: Mapping[str, Any], presets: tuple[str, ...]) -> Param:
    """One `parameters` entry (W&B dict, Hydra string or plain scalar) -> Param, checked against the trainer."""
    where = f"parameters.{name}"
    check_key(name, where, "parameter")
    if isinstance(raw, str):
        param = _hydra(name, raw, where)
    elif isinstance(raw, dict):
        param = _wandb(name, validate_model(_ParamRaw, raw, ("parameters", name)), where)
    elif isinstance(raw, list):
        raise Problem(f"{where}: a bare list is ambiguous; write {{values: [...]}} or 'choice(...)'")
    else:
        param = _choices(name, [raw], where, constant=True)
    kind = field_kind(name)
    if param.kind in ("int", "float") and kind not in ("int", "float"):
        raise Problem(f"{where}: {name} is not a number; list its `values`")
    if param.kind == "float" and kind == "int":
        raise Problem(f"{where}: {name} is an integer; use int_uniform, int(interval(..)), range() or values")
    for value in (param.values if param.kind in ("constant", "values") else (param.low, param.high)):
        for preset in presets:
            config_for(preset, {**overrides, name: value}, where)
    return param


def _wandb(name: str, p: _ParamRaw, where: str) -> Param:
    given, dist = p.model_fields_set, p.distribution
    if dist is not None and dist not in DISTRIBUTIONS:
        if dist in UNSUPPORTED:
            raise Problem(f"{where}.distribution: {dist!r} is not supported and is not approximated "
                          f"(supported: {', '.join(DISTRIBUTIONS)})")
        raise Problem(f"{where}.distribution: unknown distribution {dist!r}{nearest(dist, DISTRIBUTIONS)}")
    if "value" in given or "values" in given:
        key, extra = ("value", "constant") if "value" in given else ("values", "categorical")
        clash = sorted(given - {key, "distribution"}) + ([] if dist in (None, extra) else ["distribution"])
        if clash:
            raise Problem(f"{where}: `{key}` sets the choices; drop {', '.join(clash)}")
        if key == "value":
            return _choices(name, [p.value], where, constant=True)
        return _choices(name, p.values or [], where)
    if dist in ("categorical", "constant"):
        raise Problem(f"{where}: distribution {dist} needs `{'values' if dist == 'categorical' else 'value'}`")
    if p.min is None or p.max is None:
        raise Problem(f"{where}: give `values`, `value`, or both `min` and `max`")
    low, high = _num(f"{where}.min", p.min), _num(f"{where}.max", p.max)
    if dist is None:  # W&B's inference: integer bounds mean int_uniform
        dist = "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform"
    if p.q is not None and dist not in ("q_uniform", "int_uniform"):
        raise Problem(f"{where}.q: only q_uniform and int_uniform take a step")
    if dist == "int_uniform":
        return _range(name, "int", low, high, where, step=1 if p.q is None else _num(f"{where}.q", p.q))
    if dist == "q_uniform":
        return _range(name, "float", low, high, where, step=1.0 if p.q is None else _num(f"{where}.q", p.q))
    return _range(name, "float", low, high, where, log=dist == "log_uniform_values")


def _choices(name: str, values: list, where: str, constant: bool = False) -> Param:
    if not values:
        raise Problem(f"{where}.values: empty; list at least one value")
    out: list = []
    for i, v in enumerate(values):
        if not isinstance(v, _SCALARS):
            raise Problem(f"{where}.values[{i}]: expected a number, string, boolean or null, got {type(v).__name__}")
        v = normalise_value(name, v)
        if any(v == o and type(v) is type(o) for o in out):
            raise Problem(f"{where}.values: {v!r} is listed twice")
        out.append(v)
    return Param(name=name, kind="constant" if constant else "values", values=tuple(out))


def _num(where: str, value: Any) -> int | float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Problem(f"{where}: expected a finite number, got {value!r}"[:200])
    return value


def _range(name: str, kind: str, low: Any, high: Any, where: str, log: bool = False, step: Any = None) -> Param:
    if kind == "int":
        if not all(float(x).is_integer() for x in (low, high, step)):
            raise Problem(f"{where}: integer ranges need integer bounds and step, got {low}, {high}, step {step}")
        low, high, step = int(low), int(high), int(step)
    else:
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    if step is not None and step <= 0:
        raise Problem(f"{where}: the step must be positive, got {step}")
    if step is not None:  # Optuna keeps values on low + k*step; say the true top of the range
        if kind == "int":
            high = low + ((high - low) // step) * step
        else:
            high = round(low + math.floor((high - low) / step + 1e-9) * step, 12)
    if not low < high:
        raise Problem(f"{where}: empty or single-value range [{low}, {high}]; use a constant `value`")
    if log and low <= 0:
        raise Problem(f"{where}: log ranges need min > 0, got {low}")
    return Param(name=name, kind=kind, low=low, high=high, log=log, step=step)


def _hydra(name: str, text: str, where: str) -> Param:
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", text, re.S)
    if not m and re.match(r"\s*[A-Za-z_]\w*\s*\(", text):
        raise Problem(f"{where}: malformed sweep function {text.strip()!r} (in a {{...}} mapping, quote it: "
                      "commas split YAML flow mappings)"[:300])
    if not m:  # a plain string is a constant, e.g. `model.swiglu: standard`
        return _choices(name, [text], where, constant=True)
    func, args = m.group(1), _split(m.group(2), where)
    if func == "choice":
        return _choices(name, [_scalar(a) for a in args], where)
    if func == "interval":
        return _range(name, "float", *_interval(text, where), where)
    if func == "tag":
        if [a.strip() for a in args[:-1]] != ["log"]:
            raise Problem(f"{where}: only tag(log, interval(a, b)) is understood, got {text!r}")
        return _range(name, "float", *_interval(args[-1], where), where, log=True)
    if func == "int" and len(args) == 1:
        return _range(name, "int", *_interval(args[0], where), where, step=1)
    if func == "range" and 1 <= len(args) <= 3:
        nums = [_num(where, _scalar(a)) for a in args]
        start, stop, step = ([0] + nums + [1])[:3] if len(nums) == 1 else (nums + [1])[:3]
        if not isinstance(step, (int, float)) or step <= 0:
            raise Problem(f"{where}: range() needs a positive step, got {text!r}")
        # Hydra's range follows Python's: the stop value is excluded.
        last = start + (math.ceil(round((stop - start) / step, 9)) - 1) * step
        integral = all(isinstance(x, int) for x in (start, stop, step))
        return _range(name, "int" if integral else "float", start, last, where, step=step)
    raise Problem(f"{where}: unknown or malformed sweep function {func}(){nearest(func, _HYDRA)}")


def _interval(text: str, where: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*interval\s*\((.*)\)\s*", text, re.S)
    args = _split(m.group(1), where) if m else []
    if len(args) != 2:
        raise Problem(f"{where}: expected interval(low, high), got {text.strip()!r}")
    return _num(where, _scalar(args[0])), _num(where, _scalar(args[1]))


def _split(inner: str, where: str) -> list[str]:
    """Split Hydra arguments on top-level commas (respecting parentheses and quotes)."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        if depth < 0:
            break
    parts.append(cur)
    if depth != 0 or quote or any(not p.strip() for p in parts):
        raise Problem(f"{where}: malformed arguments {inner.strip()!r}"[:200])
    return [p.strip() for p in parts]


def _scalar(token: str) -> Any:
    """A Hydra argument: quoted string, integer, float, true/false/null, else the bare string."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    for cast in (int, float):
        try:
            return cast(token)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(token.lower(), token)
