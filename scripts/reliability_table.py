"""Write docs/RELIABILITY.md from the tests and a pytest run, or check the committed file against a run.

A row is one fault (or hostile input): what it is, whether it really happens in the test or is simulated,
how the test injects it, what the test checks, and how the tests fared. Rows come from the tests: a
`@pytest.mark.fault(fault=..., kind=..., injected=..., checked=..., also=[...])` marker on a test function or
on one `pytest.param` of it (the param's keys override the function's; `also` adds node ids of other tests
that count for the row). Tests written without the marker (in other packages' test files) are listed in
UNMARKED below, with their text written here. Known gaps are the reasons of the marked tests' strict xfails
(each fails once its gap is fixed, so the list cannot go stale silently) plus OPEN below.

    python scripts/reliability_table.py                       # run the tests of the table (minutes), write the doc
    python scripts/reliability_table.py --from-junit J.xml    # write the doc from a run that already happened
    python scripts/reliability_table.py --check J.xml         # one line per row whose committed verdict differs
                                                              #   from that run; exit 1 if any (CI, after pytest)

Both take several XML files too (merged; a later run's result of a test replaces an earlier one).

A verdict is compared without its seconds; a test skipped in the run (no tmpfs without root, say) disagrees
with a committed 'passed', on purpose: the table must say what was run where it was made.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "RELIABILITY.md"
MARKED = ["tests/reliability/test_*.py"]
"""Test files whose tests carry `fault` markers (tests/reliability/conftest.py registers the marker)."""


@dataclass
class Row:
    fault: str
    """What goes wrong (unique: rows are matched by it)."""
    kind: str
    """real | real (process kill) | simulated | inspection: does the fault really happen in the test?"""
    injected: str
    """How the test brings the fault about."""
    checked: str
    """What the test asserts afterwards."""
    tests: list[str] = field(default_factory=list)
    """Node ids; 'file::test' covers every parameter of it, 'file::' the whole file."""


UNMARKED = [
    Row("`sweeper ui` ended by SIGTERM, SIGHUP or Ctrl-C (finding 13)", "real",
        "a real `sweeper ui` serving a store; the signal sent to it (SIGINT to its process group, as a terminal does)",
        "exit 128+N; the MLflow server and its workers are gone and the port no longer answers",
        ["tests/sweeper/test_ui.py::test_sigterm_and_sighup_stop_the_server_and_its_workers",
         "tests/sweeper/test_ui.py::test_ui_serves_the_store_and_a_sweep_tracked_over_http"]),
    Row("checkpoint that runs code (finding 1)", "real",
        "a state.pt whose pickle calls os.system, with a matching state.sha256; `sweeper eval` and `train --resume` on it",
        "refused with one `error:` line naming the global, exit 2; nothing executed; no fallback to an older checkpoint",
        ["tests/trm_core/test_checkpoint_safety.py::", "tests/sweeper/test_cli_checkpoint_safety.py::"]),
    Row("`data build --out` over a folder it did not write (finding 2)", "real",
        "`--out` naming a folder of user files, `.`, `..`, an ancestor of the working directory",
        "refused with one line, exit 2, every file left intact; an empty folder or its own dataset is replaced safely",
        ["tests/sweeper/test_cli_data.py::test_build_refuses_an_out_folder_it_did_not_write_and_leaves_it_intact",
         "tests/sweeper/test_cli_data.py::test_build_fills_an_empty_folder_and_replaces_its_own_dataset"]),
    Row("disk full while the trainer saves (finding 3, trainer level)", "real",
        "a tmpfs mounted by the test that fills during training; /dev/full for the checkpoint writer",
        "OSError(ENOSPC), never a bare RuntimeError; no temporary folder; the previous checkpoint loads",
        ["tests/trm_core/test_disk_full.py::"]),
    Row("hostile sweep files (finding 4)", "real",
        "a 589-byte YAML alias bomb, a 1e12-point grid range, a 5000-digit integer, sampler_seed >= 2**32",
        "one `error:` line and exit 2 within a second, in bounded memory",
        ["tests/sweeper/test_spec_hostile.py::", "tests/sweeper/test_spec_fuzz.py::"]),
    Row("two sweeps of one name in one MLflow store (finding 6)", "real",
        "two sweep folders (another --root) with the same name log to one store",
        "each has its own parent and trial runs (sweep id tag); the first one's running trial is not ended",
        ["tests/sweeper/test_tracking.py::test_two_sweeps_of_one_name_never_share_runs"]),
    Row("torn last record of the Optuna journal (finding 7)", "real (torn by the test)",
        "half a JSON record appended to the journal, as a short write on a full disk leaves it",
        "cut off and kept aside at the next start; the study stays readable and appendable",
        ["tests/sweeper/test_runner.py::test_a_torn_journal_tail_is_cut_off_and_kept_so_the_study_stays_readable"]),
    Row("MLflow down during a trial (finding 8)", "simulated",
        "the trial sink's log_batch raises ConnectionError",
        "the trial is not failed; the error goes to mlflow_errors.log; the driver publishes the trial later",
        ["tests/sweeper/test_tracking.py::test_a_tracking_failure_in_a_trial_does_not_fail_it_and_the_driver_publishes_later"]),
    Row("rich markup in user text (finding 9)", "real",
        "`[/]` and `[bold]` in parameter values, notes and failure reasons",
        "printed literally by validate, status and the live table; nothing raises",
        ["tests/sweeper/test_live.py::", "tests/sweeper/test_cli_validate.py::test_user_text_is_printed_literally_never_as_markup"]),
    Row("`sweeper prune` while a driver holds the lock (finding 10)", "real",
        "a second process holds the driver lock (a running or resuming driver) while `sweeper prune` runs",
        "refused with one line, exit 2; no checkpoint deleted, state.json untouched; the same prune runs once the "
        "lock is free", ["tests/sweeper/test_prune.py::"]),
    Row("grid sweep stopped part-way, then resumed", "real (Optuna journal, no Ray)",
        "a first session asks 1-3 of 4 grid points and leaves them RUNNING (as a stop does); a new session takes over",
        "the RUNNING trials are handed out again, then the rest: every grid point exactly once (3 sampler seeds)",
        ["tests/sweeper/test_study_resume.py::"]),
    Row("`sweeper stop` mid-training (finding 11)", "real",
        "`sweeper stop` while both trials of a smoke sweep train",
        "each running trial checkpoints its current step; the sweep stops resumably; resume continues from those steps",
        ["tests/sweeper/test_e2e_sweep.py::test_sweeper_stop_leaves_a_resumable_sweep"]),
    Row("two `sweeper run` of one name", "real",
        "a second process holds the driver lock", "refused with `already running by pid ... on host`",
        ["tests/sweeper/test_sweepdir.py::test_second_driver_is_refused_with_who_holds_the_lock",
         "tests/sweeper/test_runner.py::test_a_second_run_of_the_same_name_is_refused"]),
    Row("code in resource formulas", "real", "`__import__('os')`, attribute access, lambdas, ...",
        "refused by the expression parser; nothing evaluated", ["tests/sweeper/test_expr.py::"]),
    Row("names escaping the sweeps root", "real", "`../up`, `/abs`, a planted symlink", "refused",
        ["tests/sweeper/test_sweepdir.py::test_names_that_could_escape_or_are_not_plain_are_refused",
         "tests/sweeper/test_sweepdir.py::test_a_symlink_under_the_root_cannot_redirect_a_sweep"]),
]

OPEN = [
    "Power cuts are not tested: the 'kill -9 during a checkpoint write' rows kill processes, and the page cache "
    "survives that. That state files are fsynced before they replace the old ones is checked on the system calls "
    "(strace), not by cutting power; for checkpoints it is only read in the code.",
    "A read-only sweep folder fails the running trial: it cannot write a stop request, so the driver is not asked "
    "to stop and the trial is recorded FAIL (not tested).",
    "`resources.gpu` caps PyTorch's caching allocator only (set_per_process_memory_fraction); each process's "
    "CUDA context (about 0.5 GB) and other allocations are outside it, so packed trials can still run out of "
    "memory. The OOM row raises the error on a logical GPU; packing on a real GPU is not tested here.",
    "Scheduler (ASHA, HyperBand) statistics restart with each driver session: a resumed sweep's first rungs are "
    "judged against the trials of the new session only.",
    "The driver lock is an flock: on a file system without flock (some network mounts) filelock falls back to a "
    "soft lock that a kill -9 does not release. Supported file systems are not checked.",
    "A NaN or an OOM is retried `trial_retries` times like a crash, although it will fail again.",
]


def _load(path: Path):
    name = "_reliability_" + "_".join(path.relative_to(REPO).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _marks(obj) -> list:
    return [getattr(m, "mark", m) for m in getattr(obj, "pytestmark", []) or getattr(obj, "marks", [])]


def marked() -> tuple[list[Row], list[str]]:
    """(rows from the `fault` markers, known gaps from their strict xfails), importing the MARKED test files.
    Tests that share a row carry a marker with the same `fault`; one of them describes it."""
    for p in (str(REPO / "tests"), str(REPO)):
        if p not in sys.path:
            sys.path.insert(0, p)
    rows: dict[str, Row] = {}
    gaps = []
    files = sorted({f for pattern in MARKED for f in REPO.glob(pattern)})
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if str(path.parent) not in sys.path:  # as pytest does for a test file: its folder on the path, its
            sys.path.insert(0, str(path.parent))  # conftest.py loaded first
            if (path.parent / "conftest.py").is_file():
                _load(path.parent / "conftest.py")
        for name, fn in list(vars(_load(path)).items()):  # definition order
            if not (name.startswith("test_") and callable(fn)):
                continue
            marks = _marks(fn)
            base = [m.kwargs for m in reversed(marks) if m.name == "fault"]  # as written, top to bottom
            for m in marks:
                if m.name == "xfail" and m.kwargs.get("strict") and m.kwargs.get("reason"):
                    gaps.append(f"{m.kwargs['reason']} (`{rel}::{name}` is a strict xfail: it fails once this is fixed)")
            params = [(p.id, [k.kwargs for k in _marks(p) if k.name == "fault"])
                      for m in marks if m.name == "parametrize" for p in m.args[1] if hasattr(p, "marks")]
            cases = [(f"{rel}::{name}[{pid}]", {**(base[0] if base else {}), **kw}) for pid, kws in params for kw in kws]
            if not any(kw for _, kws in params for kw in kws):
                cases = [(f"{rel}::{name}", kw) for kw in base]
            for node, kw in cases:  # tests that share a row name it; the first one to describe it wins
                row = rows.setdefault(kw["fault"], Row(kw["fault"], "", "", ""))
                for key in ("kind", "injected", "checked"):
                    setattr(row, key, getattr(row, key) or kw.get(key, ""))
                row.tests += [node, *kw.get("also", [])]
    missing = [f"{r.fault}: no {k}" for r in rows.values() for k in ("kind", "injected", "checked") if not getattr(r, k)]
    if missing:
        raise SystemExit("fault markers without a description: " + "; ".join(missing))
    return list(rows.values()), gaps


def all_rows() -> tuple[list[Row], list[str]]:
    rows, gaps = marked()
    rows += UNMARKED
    seen = set()
    for r in rows:
        if r.fault in seen:
            raise SystemExit(f"two rows are named {r.fault!r}; a row's fault must be unique")
        seen.add(r.fault)
    return rows, gaps


def results(junit: Path) -> dict[str, tuple[str, float]]:
    """node id -> (passed | failed | skipped | xfailed, seconds)."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        if not case.get("name"):  # an interrupted run's placeholder
            continue
        parts = case.get("classname", "").split(".")
        cut = next((i for i in range(len(parts), 0, -1) if (REPO / Path(*parts[:i])).with_suffix(".py").is_file()), len(parts))
        node = "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], case.get("name")])
        kids = {child.tag: child for child in case}
        if kids.keys() & {"failure", "error"}:
            status = "failed"
        elif "skipped" in kids:
            status = "xfailed" if kids["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            status = "passed"
        out[node] = (status, float(case.get("time", 0)))
    return out


def merged(junits: list[Path]) -> dict[str, tuple[str, float]]:
    """results() of several runs; a test in a later run replaces its earlier result."""
    return {node: r for junit in junits for node, r in results(junit).items()}


def _matches(node: str, pattern: str) -> bool:
    return node == pattern or (pattern.endswith("::") and node.startswith(pattern)) or node.startswith(pattern + "[")


def verdict(row: Row, res: dict[str, tuple[str, float]]) -> str:
    hits = [v for node, v in res.items() if any(_matches(node, p) for p in row.tests)]
    if not hits:
        return "not run"
    count = {s: sum(h[0] == s for h in hits) for s in ("passed", "failed", "skipped", "xfailed")}
    word = ("FAILED" if count["failed"] else "passed" if count["passed"] else
            "open (strict xfail)" if count["xfailed"] else "skipped")
    extra = "".join(f", {count[s]} {s}" for s in ("skipped", "xfailed") if count[s] and word != s and "xfail" not in word)
    return f"{word} ({len(hits)} test{'s' if len(hits) > 1 else ''}{extra}, {sum(t for _, t in hits):.0f} s)"


def _comparable(v: str) -> str:
    return re.sub(r", \d+ s\)$", ")", v.strip())


HEAD = """# Reliability: faults and hostile input

A sweep runs for hours to days. These tests bring each fault about in a real smoke sweep where they can (real
Ray, Optuna, MLflow and trainer), and check that every finished result survives, that `sweeper resume` finishes
the rest exactly once, and that bad input gets one clear line (exit code 2), never a traceback.

The **kind** column says whether the fault really happens in the test: **real** (the kernel really reports a
full disk on a tmpfs the test mounted, a process is really SIGKILLed, the hostile bytes are really parsed),
**real (process kill)** (a SIGKILL at a chosen moment; the page cache survives, so it is *not* a power cut),
**simulated** (code raises the error: the CUDA OOM on a logical GPU, an MLflow outage), or **inspection**
(nothing is injected; a property is read off the real system, e.g. the system calls of a write).

Faults at named moments come from `sweeper/faults.py` (`SWEEPER_FAULT=POINT:TRIAL:HIT:ACTION`; it does nothing
unless set, fires once per sweep and leaves a marker, so a test knows it fired). The full-disk tests need
`mount -t tmpfs` (root); where that is not permitted they are skipped and say why.

This file is generated by `scripts/reliability_table.py` from the tests' `@pytest.mark.fault` markers and a
pytest run. CI runs the suite with `--junitxml` and then `scripts/reliability_table.py --check`, which fails
when a row's verdict below disagrees with that run. Regenerate: `python scripts/reliability_table.py`.
"""


def render(rows: list[Row], gaps: list[str], res: dict[str, tuple[str, float]], junits: list[Path]) -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    suites = [s for j in junits for s in ET.parse(j).getroot().iter("testsuite")]
    when = max((s.get("timestamp") or "" for s in suites), default="") or datetime.datetime.now().isoformat()
    when = when[:16].replace("T", " ")
    minutes = sum(float(s.get("time", 0)) for s in suites) / 60
    lines = [HEAD, "| fault | kind | injected by | checked | last run |", "|---|---|---|---|---|"]
    lines += [f"| {r.fault} | {r.kind} | {r.injected} | {r.checked} | {verdict(r, res)} |" for r in rows]
    failed = sum(s == "failed" for s, _ in res.values())
    runs = f" (merged from {len(junits)} runs: a test run again after a fix counts with its last result)" \
        if len(junits) > 1 else ""
    lines += ["", f"Last run: {when}, commit {sha}, {os.cpu_count()} CPUs, {len(res)} tests, {failed} failed, "
              f"{minutes:.1f} min{runs}.", "", "## Known gaps", "",
              *(f"- {g}" for g in [*gaps, *OPEN]), ""]
    return "\n".join(lines)


def committed_verdicts(doc: Path) -> dict[str, str]:
    out = {}
    for line in doc.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("fault", "---"):
            out[cells[0]] = cells[4]
    return out


def check(rows: list[Row], res: dict[str, tuple[str, float]], doc: Path) -> list[str]:
    """One line per row whose committed verdict differs from this run's (seconds aside)."""
    old = committed_verdicts(doc)
    problems = []
    for r in rows:
        new = verdict(r, res)
        if r.fault not in old:
            problems.append(f"{doc.name}: no row '{r.fault}' (this run: {new}); regenerate it")
        elif _comparable(old[r.fault]) != _comparable(new):
            problems.append(f"{doc.name}: '{r.fault}' says '{old[r.fault]}', this run: {new}")
    problems += [f"{doc.name}: row '{f}' has no test any more; regenerate it" for f in old.keys() - {r.fault for r in rows}]
    return problems


def run_suite(rows: list[Row], junit: Path) -> None:
    paths = sorted({t.removesuffix("::") for r in rows for t in r.tests})  # pytest node ids (or whole files)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *paths],
                   cwd=REPO)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-junit", type=Path, nargs="+", help="write the doc from these junit XML files (merged, "
                    "later ones win) instead of running the tests")
    ap.add_argument("--check", type=Path, nargs="+", metavar="JUNIT",
                    help="compare the committed doc with this junit XML (several: merged, later ones win)")
    ap.add_argument("--out", type=Path, default=DOC)
    args = ap.parse_args()
    rows, gaps = all_rows()
    if args.check:
        problems = check(rows, merged(args.check), args.out)
        for p in problems:
            print(p)
        if not problems:
            print(f"{args.out.name} agrees with {' '.join(map(str, args.check))} ({len(rows)} rows)")
        return 1 if problems else 0
    junits = args.from_junit
    if junits is None:
        junits = [Path(tempfile.mkdtemp()) / "reliability.xml"]
        run_suite(rows, junits[0])
    res = merged(junits)
    args.out.write_text(render(rows, gaps, res, junits))
    print(f"wrote {args.out}")
    return 1 if any(verdict(r, res).startswith(("FAILED", "not run")) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
