"""Run the reliability suite and write docs/RELIABILITY.md: each fault, how it is injected, what is
checked, and the result of this run (from pytest's --junitxml).

    python scripts/reliability_table.py                      # run the suite (a few minutes), write the doc
    python scripts/reliability_table.py --from-junit J.xml   # only render a run that already happened
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "RELIABILITY.md"
KILL = "tests/reliability/test_driver_kill.py::test_kill_9_of_the_driver_then_resume_loses_and_repeats_nothing"
TRIAL = "tests/reliability/test_trial_faults.py::"
HOSTILE = "tests/reliability/test_hostile_input.py::"
AFTER_RESUME = ("after `sweeper resume`: every trial COMPLETE once in Optuna, TERMINATED once in Ray's state, one "
                "FINISHED MLflow run each under one parent, none RUNNING; no step evaluated twice; no torn "
                "checkpoint folder; no process of the killed driver alive")

# (fault, how it is injected, what is checked, test node ids or prefixes)
ROWS = [
    ("driver kill -9 at trial start-up", "`SWEEPER_FAULT=trial_start:t0001:1:kill_driver`: the worker SIGKILLs "
     "the driver recorded in state.json", AFTER_RESUME, [f"{KILL}[trial_startup]"]),
    ("driver kill -9 mid-training", "`train_log:t0000:3:kill_driver` (step 9; a checkpoint exists at 6)",
     AFTER_RESUME, [f"{KILL}[mid_training]"]),
    ("driver kill -9 during a checkpoint write", "`checkpoint_write:t0000:2:kill_all`: driver and worker "
     "killed after state.pt is written, before the rename (a power cut)", AFTER_RESUME,
     [f"{KILL}[checkpoint_write]"]),
    ("driver kill -9 during MLflow logging", "`mlflow_log:t0000:3:kill_all`: before a metrics batch",
     AFTER_RESUME, [f"{KILL}[mlflow_logging]"]),
    ("driver kill -9 just after a trial finishes", "`trial_finished:*:1:kill_driver`: Optuna and MLflow know, "
     "Ray's experiment state does not yet", AFTER_RESUME, [f"{KILL}[trial_finished]"]),
    ("trial worker kill -9", "`train_log:t0000:3:kill_worker`, `trial_retries: 2`",
     "the same sweep run retries it from its step-6 checkpoint and finishes (exit 0); Optuna, Ray, MLflow as above",
     [f"{TRIAL}test_killed_worker_retries_from_its_checkpoint_and_a_torn_checkpoint_is_caught"]),
    ("checkpoint torn / corrupt", "`train_log:t0000:3:truncate_ckpt` cuts the newest state.pt in half, kills "
     "the worker; trainer level: garbage written over state.pt",
     "sweep: checksum mismatch logged to the trial's attempts.jsonl (`checkpoint_corrupt`) and its worker log, "
     "resume from an intact copy of step 12; trainer: the previous good checkpoint is used",
     [f"{TRIAL}test_killed_worker_retries_from_its_checkpoint_and_a_torn_checkpoint_is_caught",
      "tests/trm_core/test_trainer.py::test_resume_skips_a_corrupt_newest_checkpoint"]),
    ("loss goes NaN/inf; too many failures", "baseline configuration with lr 1e30 and no clipping, "
     "`max_failures: 1`, two seeds",
     "each trial FAIL with `diverged: loss became nan by step 3` (Optuna and MLflow), no checkpoint of NaN "
     "weights; the sweep goes on after the first, stops resumably after the second and says why; "
     "trainer: TrainingDiverged before any checkpoint",
     [f"{TRIAL}test_a_diverging_trial_fails_with_its_reason_and_too_many_failures_stop_the_sweep",
      "tests/trm_core/test_trainer.py::test_diverging_loss_raises"]),
    ("CUDA OOM in one packed trial", "`train_log:t0001:1:oom` raises torch.OutOfMemoryError; two trials share "
     "one logical Ray GPU (0.5 each)", "that trial FAIL with `CUDA out of memory with a 0.5 GPU share ...`; the "
     "other ran alongside and COMPLETE; sweep finished", [f"{TRIAL}test_cuda_oom_in_one_packed_trial_fails_it_alone"]),
    ("disk full / read-only", "`checkpoint_write:t0000:2:enospc` raises OSError(ENOSPC) inside "
     "checkpoint.save; a command's write raising ENOSPC",
     "one `sweep ... stopped: ... no space left on device ...; then sweeper resume` line, no traceback; the "
     "step-6 checkpoint intact, no temporary folder, the trial not FAIL; resume finishes every trial; other "
     "commands: one `error:` line, exit 2",
     [f"{TRIAL}test_a_full_disk_stops_the_sweep_cleanly_and_resume_finishes_it",
      f"{HOSTILE}test_a_full_disk_in_any_command_is_one_line"]),
    ("two `sweeper run` of one name", "a second process holds the driver lock",
     "refused with `already running by pid ... on host`", 
     ["tests/sweeper/test_sweepdir.py::test_second_driver_is_refused_with_who_holds_the_lock"]),
    ("malformed sweep files", "hypothesis: arbitrary YAML documents, near-miss specs, random text",
     "`sweeper validate`: summary or one `error:` line + exit 2; `sweeper run`: one line, exit 2, no "
     "sweeps/<name> folder; load_spec: only UserError",
     [f"{HOSTILE}test_validate_answers_any_sweep_file_with_a_summary_or_one_error_line",
      f"{HOSTILE}test_run_of_a_bad_sweep_file_starts_nothing", "tests/sweeper/test_spec_fuzz.py::"]),
    ("valid file that cannot start", "file-store tracking URI; `device: cuda` without a GPU",
     "one line, exit 2, no sweep folder left (a corrected file is a new sweep, not 'a different spec')",
     [f"{HOSTILE}test_run_of_a_valid_file_that_cannot_start_leaves_no_sweep_behind"]),
    ("YAML code tags", "`!!python/object/apply:os.mkdir`, `!!python/name:os.system`, `!!python/object:...`",
     "one `invalid YAML` line, exit 2, nothing executed", [f"{HOSTILE}test_yaml_python_tags_are_refused_and_never_run"]),
    ("code in resource formulas", "`__import__('os')`, attribute access, lambdas, ...",
     "refused by the expression parser; nothing evaluated", ["tests/sweeper/test_expr.py::"]),
    ("names escaping the sweeps root", "`../up`, `/abs`, a planted symlink", "refused",
     ["tests/sweeper/test_sweepdir.py::test_names_that_could_escape_or_are_not_plain_are_refused",
      "tests/sweeper/test_sweepdir.py::test_a_symlink_under_the_root_cannot_redirect_a_sweep"]),
    ("malformed CSVs", "hypothesis: bytes replaced, inserted, deleted, truncated, lines duplicated, header "
     "dropped, plain text named .gz; fixed cases: not gzip, truncated gzip, empty, header only",
     "`sweeper data build --csv` and `sweeper eval --data CSV`: a result or one `error: FILE:LINE: ...` line, "
     "exit 2; a failed build leaves no dataset folder",
     [f"{HOSTILE}test_data_build_answers_any_csv_with_a_dataset_or_one_error_line",
      f"{HOSTILE}test_eval_answers_any_csv_with_a_table_or_one_error_line",
      f"{HOSTILE}test_known_broken_csvs_name_the_problem"]),
    ("network exposure", "inspection of `sweeper ui` and of the local `ray.init`",
     "ui binds 127.0.0.1 by default; the sweep's Ray starts no dashboard",
     ["tests/reliability/test_network_exposure.py::"]),
]


GAPS = [
    "- The local Ray that `sweeper run` starts listens on every interface (GCS, raylet, workers; Ray turns",
    "  `_node_ip_address=\"127.0.0.1\"` into the machine's address) with token authentication off. No",
    "  dashboard runs, but on a shared network another host could reach the GCS. Until that is fixed",
    "  (token auth for the local Ray), run sweeps on a trusted network or behind a firewall.",
    "- A real full disk also stops the driver's own writes (state.json, live.json, the Optuna journal); only",
    "  the trial side and single commands are tested, through a fault point, since tests cannot fill a disk.",
    "- A NaN or an OOM is retried `trial_retries` times like a crash, although it will fail again.",
]


def referenced_paths() -> list[str]:
    """What to run: the reliability folder and the existing tests the table points at."""
    paths = {"tests/reliability"}
    for *_, tests in ROWS:
        for t in tests:
            if not t.startswith("tests/reliability/"):
                paths.add(t.rstrip(":").removesuffix("::"))
    return sorted(paths)


def run_suite(junit: Path) -> float:
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *referenced_paths()]
    subprocess.run(cmd, cwd=REPO)
    return time.monotonic() - t0


def results(junit: Path) -> dict[str, tuple[str, float]]:
    """node id -> (passed | failed | skipped, seconds)."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        file = case.get("classname", "").replace(".", "/") + ".py"
        node = f"{file}::{case.get('name')}"
        kids = {child.tag for child in case}
        status = "failed" if kids & {"failure", "error"} else "skipped" if "skipped" in kids else "passed"
        out[node] = (status, float(case.get("time", 0)))
    return out


def verdict(patterns: list[str], res: dict[str, tuple[str, float]]) -> str:
    hits = [v for node, v in res.items() for p in patterns if node == p or (p.endswith("::") and node.startswith(p))
            or (not p.endswith("]") and node.startswith(p + "["))]
    if not hits:
        return "not run"
    statuses = {s for s, _ in hits}
    word = "FAILED" if "failed" in statuses else "skipped" if statuses == {"skipped"} else "passed"
    return f"{word} ({len(hits)} test{'s' if len(hits) > 1 else ''}, {sum(t for _, t in hits):.0f} s)"


def render(res: dict[str, tuple[str, float]], wall: float | None) -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability: faults and hostile input",
        "",
        "A sweep runs for hours to days. These tests inject each fault into a real smoke sweep (real Ray,",
        "Optuna, MLflow and trainer) and check that every finished result survives, that `sweeper resume`",
        "finishes the rest exactly once, and that bad input gets one clear line (exit code 2), never a",
        "traceback. They run in CI with the rest of `pytest` (marked `slow`).",
        "",
        "Faults are injected at named moments by `sweeper/faults.py`, which does nothing unless",
        "`SWEEPER_FAULT=POINT:TRIAL:HIT:ACTION` is set (its docstring lists the points and actions); each",
        "fault fires once per sweep and leaves a marker in `sweeps/<name>/faults/`, so a test knows it fired.",
        "",
        "Regenerate this file: `python scripts/reliability_table.py` (runs the suite with `--junitxml`).",
        "",
        "| fault | injected by | checked | last run |",
        "|---|---|---|---|",
    ]
    for fault, how, checked, tests in ROWS:
        lines.append(f"| {fault} | {how} | {checked} | {verdict(tests, res)} |")
    failed = sum(s == "failed" for s, _ in res.values())
    total = f", wall time {wall / 60:.1f} min" if wall else f", {sum(t for _, t in res.values()) / 60:.1f} min of tests"
    lines += ["", f"Last run: {when}, commit {sha}, {os.cpu_count()} CPUs, {len(res)} tests, {failed} failed{total}.",
              "", "## Known gaps", "", *GAPS, ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-junit", type=Path, help="render this junit XML instead of running the suite")
    ap.add_argument("--out", type=Path, default=DOC)
    args = ap.parse_args()
    wall = None
    junit = args.from_junit
    if junit is None:
        junit = Path(tempfile.mkdtemp()) / "reliability.xml"
        wall = run_suite(junit)
    res = results(junit)
    args.out.write_text(render(res, wall))
    print(f"wrote {args.out}")
    return 1 if any(s == "failed" for s, _ in res.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
