"""The sweep directory: safe names, the single-driver lock, atomic state, stale-process cleanup."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sweeper.commands._sweeps import init_sweep
from sweeper.errors import UserError
from sweeper.sweep.sweepdir import SweepDir, sweeps_root, trial_name, trial_number
from sweeper.util.files import append_jsonl, read_jsonl
from sweeper.util.procs import kill_recorded, process_record


@pytest.mark.parametrize("bad", ["../up", "a/b", "", ".hidden", "x" * 65, "sp ace", "..", "/abs"])
def test_names_that_could_escape_or_are_not_plain_are_refused(tmp_path, bad):
    with pytest.raises(UserError, match="must be 1-64"):
        SweepDir.at(bad, tmp_path)


def test_a_symlink_under_the_root_cannot_redirect_a_sweep(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    root = tmp_path / "sweeps"
    root.mkdir()
    (root / "trap").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="outside"):
        SweepDir.at("trap", root)


def test_root_comes_from_option_then_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPER_HOME", raising=False)
    assert sweeps_root() == tmp_path / "sweeps"
    monkeypatch.setenv("SWEEPER_HOME", str(tmp_path / "env"))
    assert sweeps_root() == tmp_path / "env"
    assert sweeps_root(tmp_path / "opt") == tmp_path / "opt"


def test_second_driver_is_refused_with_who_holds_the_lock(tmp_path, lock_holder):
    sweep = SweepDir.at("s1", tmp_path)
    sweep.path.mkdir(parents=True)
    sweep.update_state(driver={"pid": 4242, "host": "box", "started": "today"})
    holder = lock_holder(sweep.lock_file)
    assert sweep.is_locked()
    with pytest.raises(UserError, match=r"already running by pid 4242 on box"):
        sweep.lock()
    holder.kill()
    holder.wait()
    lock = sweep.lock()  # the kernel released the dead holder's lock
    lock.release()


def test_a_torn_jsonl_line_is_skipped_and_the_next_record_is_kept(tmp_path):
    path = tmp_path / "x.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as f:
        f.write('{"a": 2, "b"')  # a writer killed mid-line
    assert read_jsonl(path) == [{"a": 1}]
    append_jsonl(path, {"a": 3})
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]


def test_trial_names_round_trip():
    assert trial_name(7) == "t0007" and trial_number("t0007") == 7 and trial_number(trial_name(12345)) == 12345


def test_kill_recorded_ends_the_process_tree_but_spares_a_reused_pid(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "time.sleep(60)")])
    time.sleep(1.0)
    record = process_record(parent.pid)
    fake = {**record, "create_time": record["create_time"] - 100}  # same pid, another process's birth time
    assert kill_recorded([fake]) == []
    assert parent.poll() is None
    killed = kill_recorded([record])
    assert parent.pid in killed and len(killed) == 2  # the parent and its child
    assert parent.wait(timeout=10) is not None


def test_init_sweep_refuses_a_changed_spec_under_an_existing_name(tmp_path):
    spec = tmp_path / "a.yaml"
    spec.write_text("name: a\nmethod: grid\nprofile: smoke\nparameters: {model.k: {values: [1, 2]}}\n")
    sweep, _, existed = init_sweep(spec, None, tmp_path / "sweeps")
    assert not existed and sweep.spec_yaml.read_text() == spec.read_text()
    assert len(sweep.read_state()["sweep_id"]) == 32
    assert init_sweep(spec, None, tmp_path / "sweeps")[2]
    spec.write_text("name: a\nmethod: grid\nprofile: smoke\nparameters: {model.k: {values: [1, 4]}}\n")
    with pytest.raises(UserError, match="different spec"):
        init_sweep(spec, None, tmp_path / "sweeps")
