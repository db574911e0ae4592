"""A sweep's results as records: one plain dict per trial and per baseline, in the shape of an MLflow run
row ({'name', 'status', 'tags', 'metrics'}). Built here from the sweep folder (what the driver and the final
evaluations wrote); a tracking back end logs exactly these tags and metrics, so `sweeper report` gives the
same table from the folder or from MLflow.

Metric and tag names (per trial):
    final/<mode>/<key>        the final evaluation (sweeper.results.final_eval.ROW_METRICS)
    vs/<rule>/<key>           against the same-seed baseline's TTA rule <rule> (e.g. vs/tta_vote/p_value)
    vs_config/<rule>/<key>    the configuration's seeds pooled
    vs_tta/*, vs_tta_config/* the same for the reference rule (the strongest TTA), named by sweeper.vs_tta_rule
with verdict tags sweeper.vs.<rule>, sweeper.vs_config.<rule>, sweeper.vs_tta and sweeper.vs_tta_config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper.results import final_eval, pairing
from sweeper.util.names import trial_name

TAG = "sweeper."


def trial_record(t: pairing.Finished, vs: dict[str, Any] | None, reference: str | None) -> dict[str, Any]:
    """The record of one finished trial (vs: its vs_tta.json; reference: the rule vs_tta/* stands for)."""
    tags = {"sweeper.role": "trial", "sweeper.state": "COMPLETE", "sweeper.trial_number": str(t.number),
            "sweeper.config": t.label, "sweeper.config_key": t.key, "sweeper.seed": str(t.seed),
            "sweeper.is_baseline": str(t.baseline).lower()}
    metrics = final_eval.final_metrics(t.results)
    if vs:
        tags["sweeper.vs_tta_baseline"] = trial_name(vs['baseline_trial'])
        metrics["vs_tta_config/seeds"] = float(vs["seeds"])
        for rule in vs["trial"]:
            for level, space in (("trial", "vs"), ("config", "vs_config")):
                res = dict(vs[level][rule])
                tags[f"sweeper.{space}.{rule}"] = verdict = res.pop("verdict")
                metrics.update({f"{space}/{rule}/{k}": v for k, v in res.items()})
                if rule == reference:
                    alias = "vs_tta" if level == "trial" else "vs_tta_config"
                    tags[f"sweeper.{alias}"] = verdict
                    metrics.update({f"{alias}/{k}": v for k, v in res.items()})
        if reference in vs["trial"]:
            tags["sweeper.vs_tta_rule"] = reference
    return {"name": trial_name(t.number), "status": "FINISHED", "tags": tags, "metrics": metrics}


def baseline_record(summary: dict[str, Any]) -> dict[str, Any]:
    """The record of the TTA baseline: per rule the mean over the baseline seeds (and its std)."""
    metrics: dict[str, float] = {"baseline/seeds": float(len(summary["trials"]))}
    for rule, stats in summary["rules"].items():
        for k, v in stats.items():
            metrics[f"baseline/{rule}/{k}" if k.endswith("_std") else f"final/{rule}/{k}"] = v
    tags = {"sweeper.role": "baseline", "sweeper.config": summary["config"], "sweeper.config_key": summary["config_key"],
            "sweeper.baseline_trials": ",".join(trial_name(n) for n in summary["trials"]),
            "sweeper.seeds": ",".join(str(s) for s in sorted(set(summary["seeds"]))),
            "sweeper.vs_tta_rule": summary["strongest"], "sweeper.data_label": summary.get("label", "")}
    return {"name": "baseline-tta", "status": "FINISHED", "tags": tags, "metrics": metrics}


def sweep_records(sweep_dir: Path, reference: str | None = None) -> list[dict[str, Any]]:
    """Records of every finished trial and of the baseline (reference: the TTA rule that vs_tta/* means;
    default the strongest)."""
    summary = pairing.summary(sweep_dir)
    ref = reference or (summary or {}).get("strongest")
    out = [trial_record(t, pairing.comparisons(t.work), ref) for t in pairing.finished_trials(sweep_dir)]
    if summary:
        out.append(baseline_record(summary))
    return out
