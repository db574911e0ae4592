"""Benchmark child processes behind a ready/go barrier (plain subprocess: no Ray on a bare machine).

A child runs `python SCRIPT --worker SPEC_JSON`, reports one JSON message per line on stdout (prefixed
with "@@ ", so stray prints are ignored) and, when it is warm, says `ready` and blocks until the parent
writes `go`. The parent starts the timed windows of several children together (packing), or one after
another while the others wait warm (compiled cases). stderr goes to a log file, never to a pipe nobody
reads (a full pipe would block the child).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

PREFIX = "@@ "
TERMINAL = ("result", "oom", "error")
"""Events that end a child's work on one shape."""


def emit(**message) -> None:
    """Child side: one message to the parent."""
    print(PREFIX + json.dumps(message), flush=True)


def wait_go() -> None:
    """Child side: block until the parent says go (or hangs up)."""
    sys.stdin.readline()


class Group:
    """Children of `script`, one per spec; messages arrive on one queue as (index, dict)."""

    def __init__(self, script: Path, specs: list[dict], log_dir: Path, env: dict | None = None):
        self.messages: queue.Queue = queue.Queue()
        self.procs, self.logs = [], []
        self.pending: list[tuple[int, dict]] = []  # messages that arrived while the parent waited for others
        self.dead: dict[int, str] = {}
        log_dir.mkdir(parents=True, exist_ok=True)
        for i, spec in enumerate(specs):
            log = log_dir / f"worker-{time.time_ns()}-{i}.log"
            with open(log, "w") as err:
                proc = subprocess.Popen([sys.executable, str(script), "--worker", json.dumps(spec)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                        bufsize=1, env={**os.environ, **(env or {})})
            self.procs.append(proc)
            self.logs.append(log)
            threading.Thread(target=self._pump, args=(i, proc), daemon=True).start()

    def _pump(self, i: int, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if line.startswith(PREFIX):
                self.messages.put((i, json.loads(line[len(PREFIX):])))
        self.messages.put((i, {"event": "exit", "rc": proc.wait()}))

    def collect(self, want: dict[int, tuple[str, ...]], deadline: float) -> dict[int, dict]:
        """Wait until each child i in `want` sends one of the events want[i] or a terminal one.

        A child that exits (now or earlier) or misses the deadline gets an `error` message instead.
        """
        got = {i: {"event": "error", "error": self.dead[i]} for i in want if i in self.dead}
        backlog, self.pending = self.pending, []
        while len(got) < len(want):
            if backlog:
                i, msg = backlog.pop(0)
            else:
                try:
                    i, msg = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if msg["event"] == "exit":
                self.dead[i] = self._died(i, msg["rc"])
                msg = {"event": "error", "error": self.dead[i]}
            if i in want and i not in got and msg["event"] in (*want[i], *TERMINAL):
                got[i] = msg
            elif msg["event"] != "error" or i not in self.dead:
                self.pending.append((i, msg))
        self.pending += backlog
        for i in want:
            got.setdefault(i, {"event": "error", "error": "no answer before the time budget ran out"})
        return got

    def go(self, indices) -> None:
        for i in indices:
            try:
                self.procs[i].stdin.write("go\n")
                self.procs[i].stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it died; collect() reports the exit

    def _died(self, i: int, rc: int) -> str:
        tail = self.logs[i].read_text(errors="replace").strip().splitlines()[-3:]
        return f"exited with code {rc}: " + " | ".join(tail)

    def close(self) -> None:
        """Stop every child still running (only the ones this group started) and wait for them."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()
