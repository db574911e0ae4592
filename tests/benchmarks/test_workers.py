"""benchmarks/workers.py: the ready/go barrier between a parent and its benchmark children, with real
child processes (a small stand-in child script; the real one is exercised by the --cpu-smoke tests)."""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("workers_under_test", REPO / "benchmarks" / "workers.py")
workers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(workers)

CHILD = f'''
import json, sys
sys.path.insert(0, {str(REPO / "benchmarks")!r})
from workers import emit, wait_go
spec = json.loads(sys.argv[2])
print("noise that is not a message", flush=True)
if spec["do"] == "crash":
    print("boom: the child failed before warming up", file=sys.stderr)
    sys.exit(3)
if spec["do"] == "hang":
    import time; time.sleep(60)
emit(event="ready", shape="s")
wait_go()
emit(event="result", shape="s", value=spec["value"])
'''


def _group(tmp_path, specs):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return workers.Group(script, specs, tmp_path / "logs")


def test_children_wait_at_the_barrier_until_told_to_go(tmp_path):
    g = _group(tmp_path, [{"do": "run", "value": 1}, {"do": "run", "value": 2}])
    try:
        ready = g.collect({0: ("ready",), 1: ("ready",)}, time.monotonic() + 60)
        assert [m["event"] for m in ready.values()] == ["ready", "ready"]
        g.go([1])  # one at a time: child 0 must still be waiting while child 1 reports
        assert g.collect({1: ()}, time.monotonic() + 60)[1] == {"event": "result", "shape": "s", "value": 2}
        assert g.procs[0].poll() is None
        g.go([0])
        assert g.collect({0: ()}, time.monotonic() + 60)[0]["value"] == 1
    finally:
        g.close()


def test_a_child_that_dies_is_an_error_with_its_stderr_and_stays_dead(tmp_path):
    g = _group(tmp_path, [{"do": "crash"}, {"do": "run", "value": 7}])
    try:
        got = g.collect({0: ("ready",), 1: ("ready",)}, time.monotonic() + 60)
        assert got[0]["event"] == "error" and "code 3" in got[0]["error"] and "boom" in got[0]["error"]
        assert got[1]["event"] == "ready"
        again = g.collect({0: ("ready",)}, time.monotonic() + 60)  # later waits do not block on the dead child
        assert again[0]["event"] == "error"
    finally:
        g.close()


def test_a_child_that_misses_the_deadline_is_reported_and_killed(tmp_path):
    g = _group(tmp_path, [{"do": "hang"}])
    t = time.monotonic()
    got = g.collect({0: ("ready",)}, t + 1.0)
    assert got[0]["event"] == "error" and "time budget" in got[0]["error"]
    assert time.monotonic() - t < 10
    g.close()
    assert g.procs[0].poll() is not None
