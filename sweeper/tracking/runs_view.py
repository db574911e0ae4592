"""What the MLflow UI shows first: an experiment marked as model training, and a saved runs view in it that lists
the sweep's trials with its parameters and the key metrics, so `sweeper ui` can print a URL that opens on them.

What MLflow 3.17 does (read in its UI bundle, mlflow/server/js/build/static/js; the docs do not describe it):
- The GenAI / Model training switch is the URL parameter `workflowType` (genai | machine_learning), else the
  browser's last choice, else genai: a fresh browser lands on a GenAI overview of traces. The experiment tag
  `mlflow.experimentKind` (custom_model_development = "Machine learning") is what the UI itself writes when a user
  picks the type; 3.17 no longer reads it to choose the view (its workflow switch is always on), so every URL
  printed here carries workflowType=machine_learning. The tag is set anyway: it is MLflow's name for the kind.
- A saved view is the experiment tag `mlflow.sharedViewState.<key>` holding {"name", "createdAt", "updatedAt",
  "state"}, where state is the JSON of the runs page: the search facets (searchFilter, orderByKey, ...) and the
  table state (selectedColumns, groupBy, ...). `?viewStateShareKey=<key>` opens it (any search facet in the same
  URL would win over it), and it is listed under "Views".
- Which rows are expanded is not part of a saved view, and a sweep's trials are children of its parent run, so
  they would stay folded under one collapsed row. The view filters the parent out; children whose parent is not
  in the result are top-level rows. The parent (its description holds the report table) is one click away, in
  every trial's "Parent run".
- A column is named `<params|metrics|tags|attributes>.` + the key in backquotes.
"""
from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping

KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
VIEW_KEY = "sweeper"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
KEY_METRICS = ("final/halt_first/puzzle_acc", "vs_tta/puzzle_acc_delta", "vs_tta/p_value",
               "final/halt_first/relative_cost", "eval/puzzle_acc", "final/tta/puzzle_acc", "vs_tta/delta_ci_low",
               "vs_tta/delta_ci_high", "vs_tta/cost_ratio", "final/halt_first/cell_acc", "final/halt_first/efficiency")
"""Shown for every sweep, in this order after the sweep's own metrics (a wide table scrolls, so the answer comes
first): the halt-first final evaluation (each configuration's representative), its difference from TTA, the
cost, in-training accuracy, TTA's own accuracy (the baseline row's), then the rest of the comparison."""
SWEEP_TAGS = ("sweeper.config", "sweeper.vs_tta")
"""The configuration's name and the verdict against TTA ('better', 'worse', 'no difference')."""
SINGLE_PARAMS = ("model.k", "steps", "seed")
SINGLE_METRICS = ("eval/puzzle_acc", "eval/cell_acc", "train/loss", "final/halt_first/puzzle_acc",
                  "final/halt_first/relative_cost", "final/tta/puzzle_acc", "final/full/puzzle_acc")
"""What a one-off `sweeper train --track` / `sweeper eval --track` run shows (train runs have eval/* and train/*,
eval runs final/*)."""


def column(group: str, key: str) -> str:
    """The UI's column name of `key` in `group` (params, metrics, tags or attributes)."""
    return f"{group}.`{key}`"


def runs_state(params: Iterable[str], metrics: Iterable[str], tags: Iterable[str] = (), search: str = "",
               order_by: str | None = None, ascending: bool = False) -> dict[str, Any]:
    """The runs page's state: these columns, `search` as the filter, sorted by metric `order_by` (else newest first)."""
    named = [("params", p) for p in dict.fromkeys(params)] + [("metrics", m) for m in dict.fromkeys(metrics)] + \
        [("tags", t) for t in dict.fromkeys(tags)]
    cols = [column(group, key) for group, key in named]
    # In this order (the UI would sort each group by name), each wide enough for its whole name.
    widths = {column(group, key): min(max(80, 7 * len(key) + 24), 240) for group, key in named}
    return {"searchFilter": search, "orderByKey": column("metrics", order_by) if order_by else "attributes.start_time",
            "orderByAsc": bool(order_by) and ascending, "startTime": "ALL", "lifecycleFilter": "Active",
            "modelVersionFilter": "All Runs", "datasetsFilter": [], "selectedColumns": cols, "columnOrder": cols,
            "columnWidths": widths}


def sweep_state(spec: Mapping[str, Any], sweep_id: str) -> dict[str, Any]:
    """The runs of this sweep (this sweep id: a sweep recreated under the same name has its own), parent left out:
    the swept parameters and the seed, the sweep's metrics then KEY_METRICS, best first by its first metric."""
    params = [p["name"] for p in spec.get("parameters") or []] + ["seed"]
    goals = [(m["name"], m.get("goal", "maximize")) for m in spec.get("metrics") or []]
    search = f"tags.`sweeper.sweep_id` = '{sweep_id}' AND tags.`sweeper.role` != 'sweep'"
    first, goal = goals[0] if goals else ("final/halt_first/puzzle_acc", "maximize")
    return runs_state(params, [m for m, _ in goals] + list(KEY_METRICS), SWEEP_TAGS, search, first, goal == "minimize")


def single_state() -> dict[str, Any]:
    """The runs of a `train`/`eval` experiment, newest first."""
    return runs_state(SINGLE_PARAMS, SINGLE_METRICS)


def install_view(tracker, state: Mapping[str, Any]) -> None:
    """Mark the tracker's experiment as model training and save `state` as its view VIEW_KEY."""
    now = int(time.time() * 1000)
    view = {"name": VIEW_KEY, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    client, exp = tracker.client, tracker.experiment_id
    client.set_experiment_tag(exp, KIND_TAG, KIND)
    client.set_experiment_tag(exp, VIEW_TAG, json.dumps(view))


def ensure_view(tracker) -> None:
    """Give an experiment without a saved view one: the one-off runs' view, or, for a sweep tracked before sweeps
    installed it, the sweep view (parameters from the trials' sweeper.params tags, the newest parent's sweep id)."""
    exp = tracker.client.get_experiment(tracker.experiment_id)
    if VIEW_TAG in exp.tags:
        return
    parents = tracker.find({"sweeper.role": "sweep"})
    if not parents:  # not a sweep: a train/eval experiment or someone else's
        install_view(tracker, single_state())
        return
    parent = parents[-1]
    sweep_id = parent.data.tags.get("sweeper.sweep_id", "")
    names: dict[str, None] = {}
    for run in tracker.find({"sweeper.role": "trial", "sweeper.sweep_id": sweep_id}):
        names.update(dict.fromkeys(_json(run.data.tags.get("sweeper.params"), {})))
    metrics = _json(parent.data.params.get("metrics"), [])  # the spec's metrics, logged as a parameter
    install_view(tracker, sweep_state({"parameters": [{"name": n} for n in names], "metrics": metrics}, sweep_id))


def _json(text: str | None, default):
    """Tags and params are cut at MLflow's limits, so a long one may not parse: then `default`."""
    try:
        value = json.loads(text or "null")
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def runs_url(base: str, experiment_id: str, view: bool = True) -> str:
    """The experiment's runs page in the model-training view (and its saved view)."""
    url = f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return url + (f"&viewStateShareKey={VIEW_KEY}" if view else "")


def home_url(base: str) -> str:
    """The experiments list in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments?workflowType=machine_learning"
