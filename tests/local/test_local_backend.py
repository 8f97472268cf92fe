"""The local backend: crashes, time limits, cancel, GPUs and ranks, on real processes."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

import cloudpickle
import pytest

from offload.core import JobError, JobState, SubmissionError
from offload.core.lazy import ProcessWide
from offload.core.testing import wait_until
from offload.local import LocalExecutor, local_plugin
from offload.local import supervisor as local_supervisor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def executor(tmp_path):
    return LocalExecutor(tmp_path / "jobs")


def kill_myself():
    print("about to be killed", file=sys.stderr, flush=True)
    os.kill(os.getpid(), 9)


def segfault():
    ctypes.string_at(0)


def sleep_forever():
    print("sleeping", flush=True)
    time.sleep(600)


def start_grandchild_then_sleep(pid_file):
    child = subprocess.Popen(["sleep", "600"])
    with open(pid_file, "w") as stream:
        stream.write(str(child.pid))
    time.sleep(600)


def visible_devices(seconds):
    time.sleep(seconds)
    return os.environ["CUDA_VISIBLE_DEVICES"]


def test_killed_job_says_which_signal_and_quotes_its_log(executor):
    job = executor.submit(kill_myself)
    with pytest.raises(JobError, match=r"FAILED.*SIGKILL") as raised:
        job.result(timeout=60)
    assert "about to be killed" in raised.value.log_tail


def test_segfault_is_reported_with_the_crash_traceback(executor):
    job = executor.submit(segfault)
    with pytest.raises(JobError, match=r"SIGSEGV") as raised:
        job.result(timeout=60)
    assert "Segmentation fault" in str(raised.value)


def test_time_limit_is_enforced(executor):
    executor.update_parameters(timeout_min=1 / 60)
    started = time.monotonic()
    job = executor.submit(sleep_forever)
    with pytest.raises(JobError, match=r"TIMEOUT.*time limit"):
        job.result(timeout=60)
    assert time.monotonic() - started < 30
    assert job.state == JobState.TIMEOUT


def test_cancel_kills_the_whole_process_group(executor, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    job = executor.submit(start_grandchild_then_sleep, str(pid_file))
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), 30, job.stderr)
    grandchild = int(pid_file.read_text())
    job.cancel()
    job.wait(timeout=30)
    assert job.state == JobState.CANCELLED
    wait_until(
        lambda: not os.path.exists(f"/proc/{grandchild}") or "Z" in _proc_state(grandchild),
        10,
        "the job's child process to die with it",
    )


def _proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().split()[2]
    except FileNotFoundError:
        return "Z"


def test_cancel_of_a_finished_job_changes_nothing(executor):
    job = executor.submit(pow, 2, 3)
    assert job.result(timeout=60) == 8
    job.cancel()
    job.wait(timeout=30)
    assert job.result() == 8


@pytest.fixture
def machine_gpus(monkeypatch):
    """``machine_gpus("0,1")``: the GPUs this machine shows, to a launcher made afresh."""

    def show(devices: str) -> None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", devices)
        monkeypatch.setattr(local_plugin, "launcher", ProcessWide(local_plugin._new_launcher))

    return show


def test_gpus_are_split_between_concurrent_jobs(executor, machine_gpus):
    machine_gpus("0,1,2")
    executor.update_parameters(gpus_per_node=1)
    jobs = [executor.submit(visible_devices, 2) for _ in range(3)]
    late = executor.submit(visible_devices, 0)
    time.sleep(0.5)
    assert late.state == JobState.PENDING
    assert "GPUs" in late.status.reason
    assert sorted(job.result(timeout=60) for job in jobs) == ["0", "1", "2"]
    assert late.result(timeout=60) in {"0", "1", "2"}


def test_two_gpus_per_job(executor, machine_gpus):
    machine_gpus("4,5,6,7")
    executor.update_parameters(gpus_per_node=2)
    jobs = executor.map_array(visible_devices, [1, 1])
    assert sorted(job.result(timeout=60) for job in jobs) == ["4,5", "6,7"]


def test_more_gpus_than_the_machine_has_is_refused(executor, machine_gpus):
    machine_gpus("0")
    executor.update_parameters(gpus_per_node=2)
    with pytest.raises(SubmissionError, match=r"asks for 2 GPU.*shows 1"):
        executor.submit(visible_devices, 0)


def test_several_nodes_are_refused(executor):
    executor.update_parameters(nodes=2)
    with pytest.raises(SubmissionError, match=r"nodes must be 1"):
        executor.submit(pow, 1, 1)


def test_twenty_jobs_all_return(executor):
    jobs = [executor.submit(pow, i, 2) for i in range(20)]
    assert [job.result(timeout=120) for job in jobs] == [i * i for i in range(20)]


def test_cancel_right_after_submit_is_never_lost(executor):
    # a SIGTERM that lands while the supervisor forks a rank must still end the job
    jobs = [executor.submit(time.sleep, 600) for _ in range(30)]
    for job in jobs:
        job.cancel()
    for job in jobs:
        job.wait(timeout=60)
        assert job.state == JobState.CANCELLED
        recorded = json.loads((job.paths.job_dir / "local-status.json").read_text())
        # each rank died of the SIGTERM itself, not of the SIGKILL sent when one is ignored
        assert all(status == signal.SIGTERM for status in recorded.get("exit_codes", []))


SUPERVISOR_WITH_A_LATE_HANDLER = """
import os, sys, time
from pathlib import Path
from offload.local import supervisor

supervisor._run_rank = lambda *args: time.sleep(600) or 0
running = supervisor.Supervisor(Path(sys.argv[1]), 2, None)
fork = os.fork

def fork_then_run_the_pending_handler():
    # what CPython does with a SIGTERM noted just before the supervisor blocked signals: its
    # handler runs at the next check, right after the fork returns, before the rank is recorded
    pid = fork()
    if pid:
        running._stop_children("CANCELLED")
    return pid

os.fork = fork_then_run_the_pending_handler
sys.exit(running.run())
"""


def test_a_rank_forked_as_the_cancel_is_handled_gets_the_sigterm_too(tmp_path):
    """The interleaving that test_cancel_right_after_submit_is_never_lost hit now and then,
    made to happen every time."""
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-c", SUPERVISOR_WITH_A_LATE_HANDLER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    recorded = json.loads((tmp_path / "local-status.json").read_text())
    assert recorded["state"] == "CANCELLED"
    assert recorded["exit_codes"] == [signal.SIGTERM], "the one rank forked died of the SIGTERM"
    assert time.monotonic() - started < local_supervisor.KILL_GRACE, "not killed after the grace"
