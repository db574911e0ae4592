"""Progress where stdout is not a terminal (a cluster job's log, `> train.log`): plain lines at a steady interval,
written as the work goes (read from a pipe while `sweeper train` runs), with step, loss, accuracy, rate and ETA;
data builds and evaluations print them too."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from helpers.sweeps import REPO, env
from sweeper.commands.progress import ENV_EVERY, Progress

TRAIN_LINE = re.compile(r"^train (\d+)/(\d+) \(\d+%\)  loss [\d.]+  acc [\d.]+.*\|  ([\d.]+|-) steps/s  "
                        r"elapsed \d+:\d\d:\d\d  ETA (\d+:\d\d:\d\d|-)$")


def test_train_prints_progress_lines_into_a_pipe_while_it_trains(tmp_path):
    e = {**env(), ENV_EVERY: "0"}  # a line at every report: the smoke run is short
    # 240 steps: long enough on a fast CPU (60 steps took 0.9 s here) to tell lines written as it trains from a
    # buffer flushed at the end
    proc = subprocess.Popen([sys.executable, "-m", "sweeper", "train", "--preset", "smoke", "--set", "steps=240",
                             "--set", "eval_every=120", "--set", "device=cpu", "--out", str(tmp_path / "run")],
                            cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("w"), text=True)
    arrivals = []  # (seconds since start, line, whether the trainer was still running)
    t0 = time.monotonic()
    for line in proc.stdout:  # the pipe is read as the trainer writes it
        arrivals.append((time.monotonic() - t0, line.rstrip("\n"), proc.poll() is None))
    assert proc.wait(timeout=600) == 0, (tmp_path / "stderr").read_text()[-2000:]
    progress = [(t, line, alive) for t, line, alive in arrivals if line.startswith("train ")]
    done_at = next(t for t, line, _ in arrivals if line.startswith("run folder:"))
    assert len(progress) >= 20, arrivals[:5]  # 240 steps, a report every 3 steps, and the 2 evaluations
    assert all(TRAIN_LINE.match(line) for _, line, _ in progress), [line for _, line, _ in progress][:3]
    # Written as training went: the first line arrived while it ran, well before its end.
    assert progress[0][2] and done_at - progress[0][0] > 1.0, (progress[0], done_at)
    steps = [int(TRAIN_LINE.match(line).group(1)) for _, line, _ in progress]
    assert steps == sorted(steps) and steps[0] < 240 and steps[-1] == 240
    assert sum("eval acc" in line for _, line, _ in progress) >= 2
    last = TRAIN_LINE.match(progress[-1][1])
    assert last.group(3) != "-" and last.group(4) == "0:00:00"  # a rate, and nothing left


def test_plain_lines_come_at_the_interval_each_evaluation_and_the_end(monkeypatch, capsys):
    monkeypatch.setenv(ENV_EVERY, "3600")
    with Progress(unit="steps", plain=True) as bar:
        task = bar.add("train", 100)
        for step in range(1, 101):
            bar.update(task, completed=step, info=f"loss {1 / step:.3f}", force=step == 50)
    lines = capsys.readouterr().out.splitlines()
    # The first report, the forced one (an evaluation), the end: nothing else within the hour.
    assert [line.split()[1] for line in lines] == ["1/100", "50/100", "100/100"], lines
    assert lines[-1].endswith("ETA 0:00:00")


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_interval_is_one_line(tmp_path, monkeypatch, value):
    from typer.testing import CliRunner

    from sweeper.cli import app

    monkeypatch.setenv(ENV_EVERY, value)
    out = CliRunner().invoke(app, ["data", "build", "--shipped", "--subsample", "4", "--aug", "1",
                                   "--out", str(tmp_path / "d")])
    assert out.exit_code == 2 and ENV_EVERY in out.output and "Traceback" not in out.output, out.output


def test_data_build_and_eval_print_plain_lines_without_a_terminal(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sweeper.cli import app

    monkeypatch.setenv(ENV_EVERY, "0")
    out = CliRunner().invoke(app, ["data", "build", "--shipped", "--subsample", "20", "--aug", "2", "--test", "16",
                                   "--out", str(tmp_path / "d")])
    assert out.exit_code == 0, out.output
    assert re.search(r"^shuffling 20/20 \(100%\)  \|  .* puzzles/s  elapsed .*ETA 0:00:00$", out.output, re.M), out.output
    run = tmp_path / "run"
    out = CliRunner().invoke(app, ["train", "--preset", "smoke", "--set", "device=cpu", "--out", str(run)])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(app, ["eval", str(run), "--modes", "full,halt_first", "--limit", "8", "--no-tau-curve"])
    assert out.exit_code == 0, out.output
    for mode in ("full", "halt_first"):
        assert re.search(rf"^{mode} 8/8 \(100%\)  \|  .* puzzles/s", out.output, re.M), out.output
