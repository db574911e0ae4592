"""The driver side of MLflow tracking: a SweepHooks implementation that owns the run lifecycle.

    sweep_started  parent run (created once, reattached on resume) with the spec as params and provenance
                   tags; the baseline run; children left RUNNING by a killed driver end KILLED (a resumed
                   trial reopens its own run); comparisons a crash left undone are made
    trial_started  the trial's child run exists and is RUNNING
    trial_ended    COMPLETE/PRUNED -> FINISHED, FAIL -> FAILED, with sweeper.state and sweeper.end_reason;
                   a completed trial is compared with the baseline
    sweep_ended    children still RUNNING -> KILLED; sweep artifacts (comparison tables, Optuna figures,
                   accuracy vs cost); the parent ends FINISHED ('finished'), KILLED ('stopped') or FAILED

Comparison design: every trial's final evaluation includes tta (sweeper.final_eval), so the baseline is
simply the TTA result of the trials whose configuration is a baseline configuration (`baseline:` in the
spec; the base config when it is null or empty). A trial is compared as soon as both it and a baseline
trial have finished, whichever finishes last (both call `_compare`): against the baseline trial of the
same seed when there is one (else the lowest seed), paired puzzle by puzzle. Each configuration's seeds
are also pooled (vs_tta_config/*). What was compared is stamped in the trial dir, so a resume neither
repeats nor skips a comparison.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from sweeper import compare, final_eval
from sweeper.hooks import NullHooks, SweepInfo, TrialInfo
from sweeper.tracking import (END_STATUS, TAG_PARENT, TAG_REASON, TAG_ROLE, TAG_STATE, TAG_SWEEP, Store, Tracker,
                              flat_params)
from sweeper.baselines import baseline_keys, config_key, config_label
from sweeper.tracking_sink import RUN_ID_FILE, ensure_trial_run

SWEEP_STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}
STAMP_FILE = "mlflow_vs_tta.json"


class MlflowHooks(NullHooks):
    """See the module docstring. Tracking errors are reported (warning + mlflow/errors.log), never allowed
    to end a sweep that may have hours of training left, unless `strict` (tests)."""

    def __init__(self, spec, sweep_dir: Path, store: Store, strict: bool = False):
        self.spec, self.sweep_dir, self.store, self.strict = spec, Path(sweep_dir), store, strict
        self.folder = self.sweep_dir / "mlflow"
        self._tracker: Tracker | None = None
        self.parent: str | None = None
        self.baseline_run: str | None = None
        self.base_keys: set[str] = set()
        self.errors: list[str] = []
        self._per_puzzle: dict[int, compare.PerPuzzle] = {}

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = Tracker(self.store, self.spec.name)
        return self._tracker

    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # reported below; see the class docstring for why it does not propagate
            if self.strict:
                raise
            line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}: {type(e).__name__}: {e}"
            self.errors.append(line)
            warnings.warn(f"MLflow tracking: {line}", stacklevel=2)
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / "errors.log", "a") as f:
                f.write(line + "\n")

    # -- SweepHooks -------------------------------------------------------------------------------

    def sweep_started(self, sweep: SweepInfo, resumed: bool) -> None:
        self._guard("sweep_started", self._started, sweep, resumed)

    def trial_started(self, trial: TrialInfo) -> None:
        self._guard(f"trial {trial.number} started", ensure_trial_run, self.tracker, self.sweep_dir, trial.work_dir,
                    trial.number, trial.seed, trial.trial_id)

    def trial_ended(self, trial: TrialInfo, state: str, reason: str | None) -> None:
        self._guard(f"trial {trial.number} ended", self._ended, trial, state, reason)

    def sweep_ended(self, sweep: SweepInfo, status: str, reason: str | None) -> None:
        self._guard("sweep_ended", self._sweep_ended, sweep, status, reason)

    # -- lifecycle --------------------------------------------------------------------------------

    def _started(self, sweep: SweepInfo, resumed: bool) -> None:
        t, name = self.tracker, self.spec.name
        self.parent = t.ensure_run(self.folder / "parent_run_id", {TAG_SWEEP: name, TAG_ROLE: "sweep"}, {}, name)
        t.log_new_params(self.parent, flat_params(sweep.spec))
        t.log(self.parent, tags={**provenance(self.spec, sweep), "sweeper.status": "running",
                                 "mlflow.note.content": self.spec.description or f"sweep {name}"})
        if (self.sweep_dir / "spec.yaml").is_file():
            t.artifacts(self.parent, [self.sweep_dir / "spec.yaml"])
        self.baseline_run = t.ensure_run(self.folder / "baseline_run_id", {TAG_SWEEP: name, TAG_ROLE: "baseline"},
                                         {TAG_PARENT: self.parent}, "baseline-tta")
        self.base_keys = baseline_keys(self.spec, sweep.preset)
        # No trial of this session runs yet, so a RUNNING child was left by a killed driver.
        why = "the sweep's driver ended while the trial ran; resuming the sweep continues this run"
        self._end_running("KILLED", why)
        self._compare()

    def _ended(self, trial: TrialInfo, state: str, reason: str | None) -> None:
        run = ensure_trial_run(self.tracker, self.sweep_dir, trial.work_dir, trial.number, trial.seed, trial.trial_id)
        if state == "COMPLETE":
            self._compare()
        elif self.baseline_run and self._is_baseline(Path(trial.work_dir)):
            # A baseline trial that did not train to the end gives no TTA baseline; say so where users look.
            self.tracker.log(self.baseline_run, tags={"sweeper.baseline_problem": (
                f"t{trial.number:04d} {state}: {reason or 'no reason given'}; the comparison with TTA needs a "
                "baseline trial that trains to the end (a scheduler may stop it)")[:5000]})
        tags = {TAG_STATE: state, **({TAG_REASON: reason[:5000]} if reason else {})}
        self.tracker.end(run, END_STATUS.get(state, "FAILED"), tags)

    def _sweep_ended(self, sweep: SweepInfo, status: str, reason: str | None) -> None:
        self._compare()
        self._end_running("KILLED", f"the sweep {status}" + (f": {reason}" if reason else ""))
        self._sweep_artifacts()
        end = SWEEP_STATUS.get(status, "FAILED")
        tags = {"sweeper.status": status, **({TAG_REASON: reason[:5000]} if reason else {})}
        if self.baseline_run:
            if any(t["key"] in self.base_keys for t in self._finished_trials()):
                self.tracker.end(self.baseline_run, end, tags)
            else:
                problem = self.tracker.tags(self.baseline_run).get("sweeper.baseline_problem")
                why = problem or "no trial of the baseline configuration ran to the end"
                self.tracker.log(self.parent, tags={"sweeper.vs_tta": f"unavailable: {why}"[:5000]})
                self.tracker.end(self.baseline_run, "FAILED" if status == "finished" else end, {TAG_REASON: why})
        self.tracker.end(self.parent, end, tags)

    def _end_running(self, status: str, reason: str) -> None:
        for run in self.tracker.find({TAG_SWEEP: self.spec.name, TAG_ROLE: "trial"}, status="RUNNING"):
            self.tracker.end(run.info.run_id, status, {TAG_REASON: reason, TAG_STATE: "INTERRUPTED"})

    # -- comparisons with the baseline ------------------------------------------------------------

    def _is_baseline(self, work: Path) -> bool:
        config_file = work / "config.yaml"
        return config_file.is_file() and config_key(yaml.safe_load(config_file.read_text())) in self.base_keys

    def _finished_trials(self) -> list[dict[str, Any]]:
        out = []
        for work in sorted((self.sweep_dir / "trials").glob("t*")):
            if not (final_eval.is_done(work) and (work / RUN_ID_FILE).is_file() and (work / "config.yaml").is_file()):
                continue
            config = yaml.safe_load((work / "config.yaml").read_text())
            number = int(work.name[1:])
            if number not in self._per_puzzle:
                self._per_puzzle[number] = compare.PerPuzzle.load(final_eval.final_dir(work) / final_eval.PER_PUZZLE)
            out.append({"number": number, "work": work, "seed": int(config.get("seed", 0)), "key": config_key(config),
                        "config": config, "run": (work / RUN_ID_FILE).read_text().strip(),
                        "per": self._per_puzzle[number], "steps": int(config["steps"])})
        return out

    def _compare(self) -> None:
        trials = self._finished_trials()
        bases = [t for t in trials if t["key"] in self.base_keys]
        if not bases:
            return
        by_seed: dict[int, dict] = {}
        for b in bases:  # lowest trial number per seed
            by_seed.setdefault(b["seed"], b)
        base_of = lambda t: by_seed.get(t["seed"]) or by_seed[min(by_seed)]  # noqa: E731
        groups: dict[str, list[dict]] = {}
        for t in trials:
            groups.setdefault(t["key"], []).append(t)
        for key, members in groups.items():
            stamp = [[m["number"], base_of(m)["number"]] for m in members]
            for m in members:
                self._compare_one(m, base_of(m), stamp, members, key in self.base_keys, base_of)
        self._log_baseline(bases, by_seed)

    def _compare_one(self, t: dict, base: dict, group_stamp: list, members: list, is_base: bool, base_of) -> None:
        path = t["work"] / STAMP_FILE
        done = json.loads(path.read_text()) if path.is_file() else {}
        tags = {"sweeper.vs_tta_baseline": f"t{base['number']:04d}", "sweeper.is_baseline": str(is_base).lower()}
        if done.get("trial") != base["number"]:
            res = compare.compare_files([t["per"]], [base["per"]], seed=t["number"])
            self.tracker.log(t["run"], res.metrics("vs_tta"), t["steps"], tags={**tags, "sweeper.vs_tta": res.verdict()})
        if done.get("group") != group_stamp:
            res = compare.compare_files([m["per"] for m in members], [base_of(m)["per"] for m in members], seed=0)
            metrics = {**res.metrics("vs_tta_config"), "vs_tta_config/seeds": len(members)}
            self.tracker.log(t["run"], metrics, len(members), tags={**tags, "sweeper.vs_tta_config": res.verdict()})
        path.write_text(json.dumps({"trial": base["number"], "group": group_stamp}))

    def _log_baseline(self, bases: list[dict], by_seed: dict[int, dict]) -> None:
        if not self.baseline_run:
            return
        chosen = [by_seed[s] for s in sorted(by_seed)]
        rows = [{r["method"]: r for r in final_eval.load_results(b["work"])["rows"]} for b in chosen]
        metrics: dict[str, float] = {"baseline/seeds": float(len(chosen))}
        for mode in ("tta", "tta_vote"):
            for k in final_eval.ROW_METRICS:
                mean, std = compare.seed_summary([r[mode][k] for r in rows if mode in r])
                metrics[f"final/{mode}/{k}"] = mean
                metrics[f"baseline/{mode}/{k}_std"] = std
        first = chosen[0]
        self.tracker.log_new_params(self.baseline_run, flat_params({k: v for k, v in first["config"].items() if k != "seed"}))
        self.tracker.log(self.baseline_run, metrics, step=len(chosen), tags={
            "sweeper.config": config_label(first["config"], tuple(p.name for p in self.spec.swept)),
            "sweeper.config_key": first["key"], "sweeper.baseline_trials": ",".join(f"t{b['number']:04d}" for b in chosen),
            "sweeper.seeds": ",".join(str(s) for s in sorted(by_seed))})

    def _sweep_artifacts(self) -> None:
        from sweeper import results_table as report, study
        from sweeper.tracking import run_rows

        out = self.folder / "report"
        out.mkdir(parents=True, exist_ok=True)
        table = report.build_table(run_rows(self.tracker))
        (out / "comparison.csv").write_text(report.render(table, "csv"))
        (out / "comparison.md").write_text(report.render(table, "markdown"))
        (out / "trials.csv").write_text(report.render_trials(run_rows(self.tracker)))
        report.plot_table(table, out / "accuracy_vs_cost.png")
        files = [out / "comparison.csv", out / "comparison.md", out / "trials.csv", out / "accuracy_vs_cost.png"]
        if self.sweep_dir.joinpath("optuna.journal").is_file():
            from sweeper import plots

            figures, skipped = plots.optuna_figures(study.open_study(self.sweep_dir / "optuna.journal", self.spec, create=False),
                                                    out / "optuna")
            files += figures
            if skipped:
                self.tracker.log(self.parent, tags={f"sweeper.optuna_skipped.{k}": v[:500] for k, v in skipped.items()})
        self.tracker.artifacts(self.parent, [f for f in files if f.is_file()], "report")


def provenance(spec, sweep: SweepInfo) -> dict[str, str]:
    """Git SHA and dirty flag, library versions, device, sampler, seeds and spec hash."""
    from importlib.metadata import PackageNotFoundError, version

    tags = {"sweeper.sweep": spec.name, "sweeper.spec_hash": sweep.spec_hash, "sweeper.preset": sweep.preset,
            "sweeper.sampler": spec.method, "sweeper.sampler_seed": str(spec.sampler_seed),
            "sweeper.seeds": ",".join(map(str, spec.seeds)), "sweeper.total_trials": str(sweep.total_trials)}
    for lib in ("torch", "ray", "optuna", "mlflow", "numpy"):
        try:
            tags[f"sweeper.version.{lib}"] = version(lib)
        except PackageNotFoundError:
            tags[f"sweeper.version.{lib}"] = "not installed"
    tags.update(_git())
    tags["sweeper.device"] = _device()
    return tags


def _git() -> dict[str, str]:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"mlflow.source.git.commit": "unknown", "sweeper.git_dirty": "unknown"}
    if sha.returncode != 0:
        return {"mlflow.source.git.commit": "unknown", "sweeper.git_dirty": "unknown"}
    return {"mlflow.source.git.commit": sha.stdout.strip(), "sweeper.git_dirty": str(bool(dirty.stdout.strip())).lower()}


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda x{torch.cuda.device_count()} ({torch.cuda.get_device_name(0)})"
    return f"cpu x{os.cpu_count()}"
