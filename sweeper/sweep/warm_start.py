"""Warm start: the finished trials of an earlier sweep seed a new sweep's Optuna study, so TPE, GP or CMA-ES
start informed (Optuna's add_trials; W&B's prior runs). With `skip_existing`, a configuration (params and
seed) that already ran there is not run again: the new sweep records it PRUNED with that reason.

The two sweeps must sample the same parameters with the same distributions (a latent of W&B's normal means
nothing to a uniform) and optimise the same metrics; other sweeps give one clear line. Trials whose values
fall outside this sweep's ranges are left out and counted. Imported trials carry the user attribute
`warm_start` (the source sweep and its trial number) and are never counted as this sweep's own.
"""
from __future__ import annotations

import optuna

from sweeper.errors import UserError
from sweeper.spec import SweepSpec, load_spec
from sweeper.sweep import space
from sweeper.sweep.study import FOREIGN, is_foreign, load_trials
from sweeper.sweep.sweepdir import SweepDir
from sweeper.util.names import trial_name


def prior_trials(spec: SweepSpec, source: SweepDir) -> tuple[list[optuna.trial.FrozenTrial], int]:
    """(the source sweep's finished trials as trials of this sweep's space, how many were left out)."""
    if not source.exists():
        raise UserError(f"warm_start: no sweep named '{source.name}' under {source.root}")
    other = load_spec(source.spec_yaml)
    _check_compatible(spec, other, source.name)
    dists = space.build_distributions(spec)
    out, skipped = [], 0
    for t in load_trials(source.journal, other.name):
        if t.state != optuna.trial.TrialState.COMPLETE or not t.values:
            continue
        if not all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in t.params.items()):  # noqa: SLF001
            skipped += 1
            continue
        out.append(optuna.trial.create_trial(
            params=dict(t.params), distributions=dists, values=list(t.values),
            user_attrs={FOREIGN: f"{source.name}/{trial_name(t.number)}", "seed": t.user_attrs.get("seed"),
                        "overrides": t.user_attrs.get("overrides") or {}}))
    return out, skipped


def _check_compatible(spec: SweepSpec, other: SweepSpec, name: str) -> None:
    mine, theirs = {p.name: p for p in spec.swept}, {p.name: p for p in other.swept}
    if set(mine) != set(theirs):
        raise UserError(f"warm_start: sweep '{name}' samples {sorted(theirs) or 'nothing'}, this one "
                        f"{sorted(mine) or 'nothing'}; a warm start needs the same swept parameters")
    for key, p in mine.items():
        if p.distribution != theirs[key].distribution:
            raise UserError(f"warm_start: sweep '{name}' samples {key} as {theirs[key].distribution}, this one as "
                            f"{p.distribution}; a warm start needs the same distributions")
    if [(m.name, m.goal) for m in spec.metrics] != [(m.name, m.goal) for m in other.metrics]:
        raise UserError(f"warm_start: sweep '{name}' optimises {[(m.name, m.goal) for m in other.metrics]}, this one "
                        f"{[(m.name, m.goal) for m in spec.metrics]}")


def seed_study(study: optuna.Study, spec: SweepSpec, source: SweepDir) -> tuple[int, int]:
    """Add the source's finished trials to `study` once (a resumed sweep has them already).
    Returns (trials added, trials left out)."""
    if any(is_foreign(t) for t in study.get_trials(deepcopy=False)):
        return 0, 0
    trials, skipped = prior_trials(spec, source)
    study.add_trials(trials)
    return len(trials), skipped
