"""The sweep's Optuna study: a journal file in the sweep directory, and the trial bookkeeping around it.

One Optuna trial is one Ray trial is one (configuration, seed). The journal is the source of truth for
what has run: after a crash it may be ahead of Ray's own experiment state, so `StudyBroker` reconciles
the two instead of trusting either alone:

- a RUNNING Optuna trial that no live Ray trial owns (asked just before a kill -9) is handed out again
  with the same number, so its Ray trial resumes from the checkpoints in trials/tNNNN; it is never
  asked anew, so nothing is suggested twice and nothing is lost;
- the seeds of a configuration are enqueued from the journal itself (`group` user attribute), so a
  crash between two seeds cannot drop or duplicate one;
- the count of trials is capped from the journal, so a Ray state that lost finished trials does not
  make the sweep run extra ones;
- a trial stopped early by the scheduler is told PRUNED (Ray's stock OptunaSearch tells it COMPLETE
  with its early score, which would mislead the sampler and the dashboard).

A torn last line (a short write on a full disk, a power cut mid-append) is cut off and kept aside at
the next driver start (`repair_journal`), before Optuna appends after it and makes the file unreadable.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweeper.errors import UserError
from sweeper.spec import SweepSpec
from sweeper.sweep import space
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.files import now

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
FOREIGN = "warm_start"
"""User attribute of a trial a warm start imported from another sweep (sweeper.sweep.warm_start)."""
optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_study(journal: Path, spec: SweepSpec, create: bool = True) -> optuna.Study:
    """The sweep's study in `journal` (created if missing and `create`).

    The sampler is reseeded with sampler_seed + the number of trials already in the study, so a
    resumed sweep does not replay the random draws of its first session. Not a grid: GridSampler's seed
    is the order of its grid, which it indexes by trial number, so a new seed in a later session would
    hand a new trial a grid point an earlier trial already has (and skip another).
    """
    storage = JournalStorage(JournalFileBackend(str(journal)))
    if not create:
        return optuna.load_study(study_name=spec.name, storage=storage)
    study = optuna.create_study(study_name=spec.name, storage=storage, load_if_exists=True,
                                directions=space.directions(spec),
                                sampler=optuna.samplers.RandomSampler(seed=spec.sampler_seed))
    seed = spec.sampler_seed if spec.method == "grid" else (spec.sampler_seed + len(study.get_trials(deepcopy=False))) % 2**32
    study.sampler = space.make_sampler(spec, seed=seed)
    return study


def load_trials(journal: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    """Every trial of sweep `name` (not those a warm start imported), read-only (safe while a driver
    appends to the journal)."""
    if not Path(journal).is_file():
        return []
    storage = JournalStorage(JournalFileBackend(str(journal)))
    try:
        return [t for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
                if not is_foreign(t)]
    except KeyError:
        return []
    except ValueError as e:  # json.JSONDecodeError: a torn record in the middle of the file
        raise UserError(f"{journal}: the Optuna journal is damaged ({e}); `sweeper resume {name}` repairs a torn "
                        "last record, anything else needs the file restored from a copy") from None


def repair_journal(journal: Path) -> Path | None:
    """Cut a torn last record off the journal (keeping it beside, as optuna.journal.torn-<time>); call under
    the driver lock before the study is opened. Returns the file the torn tail went to, or None."""
    journal = Path(journal)
    if not journal.is_file():
        return None
    with open(journal, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return None
        cut = data.rfind(b"\n") + 1
        aside = journal.with_name(f"{journal.name}.torn-{now().replace(':', '')}")
        aside.write_bytes(data[cut:])
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    return aside


class StudyBroker:
    """Hands out (number, params, seed, baseline) for new Ray trials and records how they ended."""

    def __init__(self, sweep: SweepDir, spec: SweepSpec, total: int, baselines: list[dict[str, Any]],
                 skip: frozenset[str] = frozenset()):
        self.sweep, self.spec, self.total = sweep, spec, total
        self.skip = skip
        """Configurations (warm_start.config_of) that ran in the warm-start sweep and are not run again."""
        self.journal = sweep.journal
        self.baselines = baselines
        """Per baseline: {'params': Optuna params, 'overrides': dotted keys applied on top}."""
        self.owned: set[int] = set()
        """Numbers of RUNNING trials that a Ray trial of this experiment runs."""
        self._study: optuna.Study | None = None

    def __getstate__(self) -> dict:  # Ray pickles the searcher; the study is reopened from the journal
        return {**self.__dict__, "_study": None}

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = open_study(self.journal, self.spec)
        return self._study

    def own(self) -> list[optuna.trial.FrozenTrial]:
        """This sweep's trials (without those a warm start imported)."""
        return [t for t in self.study.get_trials(deepcopy=False) if not is_foreign(t)]

    def finished_count(self) -> int:
        """Trials that ended (COMPLETE, PRUNED or FAIL)."""
        return sum(t.state in FINISHED_STATES for t in self.own())

    def histories(self) -> dict[int, list[float]]:
        """Trial number -> its reported values of the (first) metric, in report order, from the journal."""
        return {t.number: [v for _, v in sorted(t.intermediate_values.items())]
                for t in self.study.get_trials(deepcopy=False) if t.intermediate_values}

    def enqueue_baselines(self) -> None:
        """Enqueue each baseline (first seed) once; later seeds follow through the group logic."""
        present = {t.user_attrs.get("baseline") for t in self.own()}
        for i, b in enumerate(self.baselines):
            if i not in present:
                self.study.enqueue_trial(b["params"], user_attrs={"baseline": i, "seed": self.spec.seeds[0],
                                                                  "overrides": b["overrides"]})

    def all_handed_out(self, trials: list[optuna.trial.FrozenTrial] | None = None) -> bool:
        """Every trial of the sweep has been handed out (`trials`: own(), if read already): slots that free up
        from now on stay free."""
        trials = self.own() if trials is None else trials
        return sum(t.state != TrialState.WAITING for t in trials) >= self.total

    def next_trial(self) -> dict[str, Any] | None:
        """The next trial to run, or None when the sweep has all its trials."""
        while True:
            trials = self.own()
            orphan = next((t for t in trials if t.state == TrialState.RUNNING and t.number not in self.owned), None)
            if orphan is not None:
                return self._handout(self._live(orphan.number))
            if self.all_handed_out(trials):
                return None
            if not any(t.state == TrialState.WAITING for t in trials):
                self._enqueue_missing_seed(trials)
            handout = self._handout(self.study.ask(space.build_distributions(self.spec)))
            if not self.skip or config_of(self._live(handout["number"])) not in self.skip:
                return handout
            self.finish(handout["number"], "PRUNED", None, "ran already in the warm-start sweep (skip_existing)")

    def _enqueue_missing_seed(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        groups: dict[int, list[optuna.trial.FrozenTrial]] = {}
        for t in trials:
            if "group" in t.user_attrs:
                groups.setdefault(t.user_attrs["group"], []).append(t)
        for group, members in sorted(groups.items()):
            have = {m.user_attrs.get("seed") for m in members}
            missing = [s for s in self.spec.seeds if s not in have]
            if missing:
                first = min(members, key=lambda m: m.number)
                attrs = {"group": group, "seed": missing[0]}
                if "baseline" in first.user_attrs:
                    attrs["baseline"] = first.user_attrs["baseline"]
                self.study.enqueue_trial(first.params, user_attrs=attrs)
                return

    def _handout(self, trial: optuna.Trial) -> dict[str, Any]:
        attrs = trial.user_attrs
        if "group" not in attrs:  # a new configuration (or a baseline): it heads its group of seeds
            trial.set_user_attr("group", trial.number)
        seed = attrs.get("seed", self.spec.seeds[0])
        trial.set_user_attr("seed", seed)
        self.owned.add(trial.number)
        baseline = attrs.get("baseline")
        overrides = dict(self.baselines[baseline]["overrides"]) if baseline is not None else {}
        return {"number": trial.number, "params": dict(trial.params), "seed": seed,
                "baseline": baseline, "overrides": overrides}

    def _live(self, number: int) -> optuna.Trial:
        storage = self.study._storage  # noqa: SLF001 -- Study exposes no public storage accessor
        study_id = storage.get_study_id_from_name(self.spec.name)
        return optuna.Trial(self.study, storage.get_trial_id_from_study_id_trial_number(study_id, number))

    def report(self, number: int, value: float, step: int) -> None:
        """An intermediate value of a single-objective trial (repeats after a resume are ignored)."""
        if len(self.spec.metrics) > 1 or value is None or not math.isfinite(value):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step already reported" after a resume: expected
            self._live(number).report(float(value), int(step))

    def finish(self, number: int, state: str, result: Mapping[str, Any] | None, reason: str | None) -> str:
        """Tell Optuna how trial `number` ended; returns the state recorded (COMPLETE may become FAIL
        when the result lacks the metric)."""
        self.owned.discard(number)
        values = None
        if state == "COMPLETE":
            values = [(result or {}).get(m.name) for m in self.spec.metrics]
            if any(v is None or not math.isfinite(float(v)) for v in values):
                state, reason = "FAIL", f"final result has no finite {', '.join(m.name for m in self.spec.metrics)}"
        told = next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)
        if told.state in FINISHED_STATES:  # told before a crash, and Ray's state did not know yet
            return told.state.name
        trial = self._live(number)
        if reason:
            trial.set_user_attr("reason", reason[:500])
        values = values[0] if values and len(values) == 1 else values
        try:
            self.study.tell(number, values if state == "COMPLETE" else None, state=TrialState[state],
                            skip_if_finished=True)
        except (RuntimeError, KeyError) as e:
            # GridSampler.after_trial calls study.stop() once the grid is used up (allowed only inside
            # study.optimize), and looks up a 'grid_id' that enqueued trials (seeds, baselines) lack.
            # Optuna stores the trial's state before re-raising (in a finally), so the tell took effect.
            if "Study.stop" not in str(e) and "grid_id" not in str(e):
                raise
        return state


def baseline_points(spec: SweepSpec, base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The baselines as Optuna params plus overrides.

    `base` is the flattened base TrainConfig (preset + overrides), which fills swept keys a baseline leaves
    out (the default baseline is the base config itself). A baseline value is recorded as the latent that
    gives it (Param.latent_of: the value itself for most distributions, a probability for W&B's normal,
    beta, ...); a value the space cannot give (a categorical without the base value, say) is recorded as a
    stand-in latent and run through `overrides`, applied on top of the params.
    """
    dists, grid = space.build_distributions(spec), spec.method == "grid"
    out = []
    for entry in spec.baseline if spec.baseline is not None else ({},):
        params, overrides = {}, dict(entry)
        for p in spec.swept:
            value = entry.get(p.name, base.get(p.name))
            latent = p.latent_of(value, grid)
            if latent is not None:
                params[p.name] = latent
            else:  # Optuna needs every param (GridSampler refuses gaps): record a stand-in, run `value`
                params[p.name] = _stand_in(dists[p.name])
                overrides[p.name] = value
        out.append({"params": params, "overrides": overrides})
    return out


def _stand_in(dist: optuna.distributions.BaseDistribution) -> Any:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return dist.choices[0]
    return dist.low


def describe(trials: list[optuna.trial.FrozenTrial], spec_metrics: list[str], directions: list[str]) -> dict:
    """Counts by state and the best trial(s), for `sweeper status` and the end-of-sweep summary."""
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    best = []
    if len(directions) == 1 and done:
        sign = 1 if directions[0] == "maximize" else -1
        best = sorted(done, key=lambda t: sign * t.values[0], reverse=True)
    return {"counts": counts, "best": [_row(t, spec_metrics) for t in best], "n": len(trials)}


def _row(t: optuna.trial.FrozenTrial, metrics: list[str]) -> dict[str, Any]:
    values = t.values or ([t.intermediate_values[max(t.intermediate_values)]] if t.intermediate_values else [])
    return {"number": t.number, "state": t.state.name, "params": dict(t.params),
            "overrides": dict(t.user_attrs.get("overrides") or {}), "seed": t.user_attrs.get("seed"),
            "values": dict(zip(metrics, values)), "reason": t.user_attrs.get("reason")}


def rows(trials: list[optuna.trial.FrozenTrial], metrics: list[str]) -> list[dict[str, Any]]:
    """One plain dict per trial (number, state, params, seed, values, reason)."""
    return [_row(t, metrics) for t in trials]


def is_foreign(trial: Any) -> bool:
    """True for a trial a warm start imported (it informs the sampler, it is not this sweep's)."""
    return FOREIGN in trial.user_attrs


def config_of(trial: Any) -> str:
    """What makes two trials the same run: their params (with overrides) and seed."""
    attrs = trial.user_attrs
    return json.dumps([trial.params, attrs.get("overrides") or {}, attrs.get("seed")], sort_keys=True, default=str)
