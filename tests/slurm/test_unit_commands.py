"""Running Slurm's commands: time limits, missing commands, retries; fake commands on PATH."""

from __future__ import annotations

import time

import pytest

from offload.core import JobPaths, JobRef, JobState, JobStatus
from offload.slurm import cluster, commands
from offload.slurm.commands import SlurmCommandError, command_timeout, run, run_with_retries
from offload.slurm.status import StatusReader

SOCKET_TIMEOUT = "sbatch: error: Socket timed out on send/recv operation"


# --- run -------------------------------------------------------------------------------------


def test_run_returns_stdout(fake_bin):
    fake_bin.add("squeue", "print('12|RUNNING|None')\nprint('warning', file=sys.stderr)")
    assert run(["squeue", "--noheader", "a b"]) == "12|RUNNING|None\n"
    assert fake_bin.calls("squeue") == [["--noheader", "a b"]]


def test_run_gives_no_stdin(fake_bin):
    fake_bin.add("sacct", "print(repr(sys.stdin.read()))")
    assert run(["sacct"]) == "''\n"


def test_failure_carries_slurms_message(fake_bin):
    fake_bin.add(
        "scancel",
        "print('scancel: error: Invalid job id specified', file=sys.stderr)\nsys.exit(1)",
    )
    with pytest.raises(SlurmCommandError) as raised:
        run(["scancel", "999"])
    error = raised.value
    assert error.returncode == 1
    assert error.message == "scancel: error: Invalid job id specified"
    assert error.command == ["scancel", "999"]
    assert not error.transient
    assert str(error) == "scancel failed (exit 1): scancel: error: Invalid job id specified"


def test_failure_without_stderr_uses_stdout(fake_bin):
    fake_bin.add("sbatch", "print('something on stdout')\nsys.exit(2)")
    with pytest.raises(SlurmCommandError) as raised:
        run(["sbatch"])
    assert raised.value.message == "something on stdout"
    assert raised.value.returncode == 2


def test_failure_without_any_message(fake_bin):
    fake_bin.add("sbatch", "sys.exit(5)")
    with pytest.raises(SlurmCommandError, match=r"sbatch failed \(exit 5\): no message"):
        run(["sbatch"])


def test_timeout_is_transient_with_no_returncode(fake_bin):
    fake_bin.add("sacct", "time.sleep(30)")
    started = time.monotonic()
    with pytest.raises(SlurmCommandError) as raised:
        run(["sacct", "-j", "1"], timeout=0.5)
    assert time.monotonic() - started < 10
    error = raised.value
    assert error.returncode is None
    assert error.transient
    assert error.message == "no answer within 0.5 s"
    assert str(error) == "sacct timed out: no answer within 0.5 s"


def test_timeout_from_the_environment(fake_bin, monkeypatch):
    fake_bin.add("squeue", "time.sleep(30)")
    monkeypatch.setenv("OFFLOAD_SLURM_COMMAND_TIMEOUT", "0.3")
    assert command_timeout() == 0.3
    with pytest.raises(SlurmCommandError, match=r"no answer within 0\.3 s"):
        run(["squeue"])


@pytest.mark.parametrize("value", ["", "soon", "1m"])
def test_unreadable_timeout_falls_back_to_the_default(monkeypatch, value):
    monkeypatch.setenv("OFFLOAD_SLURM_COMMAND_TIMEOUT", value)
    assert command_timeout() == commands.DEFAULT_TIMEOUT == 60.0


def test_missing_command_says_so(fake_bin):
    with pytest.raises(SlurmCommandError) as raised:
        run(["sbatch", "--parsable", "x.sh"])
    error = raised.value
    assert error.returncode == 127
    assert "sbatch is not on PATH" in error.message
    assert "login node" in error.message
    assert not error.transient


def test_command_that_cannot_be_started_is_a_slurm_error(fake_bin):
    script = fake_bin.add("sacct", "print('never')")
    script.chmod(0o644)  # on PATH, but not executable
    with pytest.raises(SlurmCommandError) as raised:
        run(["sacct"])
    assert raised.value.returncode == 126
    assert "sacct could not be started" in raised.value.message
    assert not raised.value.transient


@pytest.mark.parametrize(
    "message",
    [
        "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection",
        "squeue: error: Unable to contact slurm controller (connect failure)",
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "error: Slurm temporarily unable to accept job",
        "Connection refused",
        "Resource temporarily unavailable",
        "Connection timed out",
    ],
)
def test_transient_messages(message):
    assert SlurmCommandError(["x"], message, 1).transient


@pytest.mark.parametrize(
    "message",
    [
        "sbatch: error: invalid partition specified: nope",
        "sbatch: error: Batch job submission failed: Requested node configuration is not available",
        "scancel: error: Invalid job id specified",
        "",
    ],
)
def test_permanent_messages(message):
    assert not SlurmCommandError(["x"], message, 1).transient


# --- retries ---------------------------------------------------------------------------------


def test_transient_failures_are_retried_with_growing_delays(fake_bin, sleeps):
    fake_bin.add(
        "sbatch",
        f"if call < 2:\n    print({SOCKET_TIMEOUT!r}, file=sys.stderr)\n    sys.exit(1)\n"
        "print('4242')",
    )
    assert run_with_retries(["sbatch", "--parsable", "job.sh"]) == "4242\n"
    assert len(fake_bin.calls("sbatch")) == 3
    assert sleeps == [1.0, 2.0]


def test_retries_stop_after_the_last_attempt(fake_bin, sleeps):
    fake_bin.add("squeue", f"print({SOCKET_TIMEOUT!r}, file=sys.stderr)\nsys.exit(1)")
    with pytest.raises(SlurmCommandError, match="Socket timed out"):
        run_with_retries(["squeue"], attempts=3, first_delay=0.5)
    assert len(fake_bin.calls("squeue")) == 3
    assert sleeps == [0.5, 1.0]


def test_a_permanent_failure_is_not_retried(fake_bin, sleeps):
    fake_bin.add(
        "sbatch",
        "print('sbatch: error: invalid partition specified: nope', file=sys.stderr)\nsys.exit(1)",
    )
    with pytest.raises(SlurmCommandError, match="invalid partition"):
        run_with_retries(["sbatch", "job.sh"])
    assert len(fake_bin.calls("sbatch")) == 1
    assert sleeps == []


def test_a_missing_command_is_not_retried(fake_bin, sleeps):
    with pytest.raises(SlurmCommandError, match="not on PATH"):
        run_with_retries(["scancel", "1"])
    assert sleeps == []


def test_a_timeout_is_not_retried_for_a_command_that_is_not_idempotent(
    fake_bin, sleeps, monkeypatch
):
    monkeypatch.setenv("OFFLOAD_SLURM_COMMAND_TIMEOUT", "0.3")
    fake_bin.add("sbatch", "time.sleep(30)")
    with pytest.raises(SlurmCommandError) as raised:
        run_with_retries(["sbatch", "--parsable", "job.sh"], idempotent=False)
    assert raised.value.returncode is None
    assert len(fake_bin.calls("sbatch")) == 1
    assert sleeps == []


def test_a_timeout_is_retried_by_default(fake_bin, sleeps, monkeypatch):
    monkeypatch.setenv("OFFLOAD_SLURM_COMMAND_TIMEOUT", "0.3")
    fake_bin.add("scancel", "if call == 0:\n    time.sleep(30)\nprint('done')")
    assert run_with_retries(["scancel", "7"]) == "done\n"
    assert len(fake_bin.calls("scancel")) == 2
    assert sleeps == [1.0]


def test_an_unreachable_controller_is_retried_even_for_sbatch(fake_bin, sleeps):
    fake_bin.add(
        "sbatch",
        "if call == 0:\n"
        "    print('sbatch: error: Unable to contact slurm controller (connect failure)',"
        " file=sys.stderr)\n"
        "    sys.exit(1)\n"
        "print('77')",
    )
    assert run_with_retries(["sbatch", "job.sh"], idempotent=False) == "77\n"
    assert sleeps == [1.0]


def test_a_socket_timeout_is_not_retried_for_sbatch(fake_bin, sleeps):
    """The controller may have queued the job before the answer was lost: no second job."""
    fake_bin.add(
        "sbatch",
        "print('sbatch: error: Socket timed out on send/recv operation', file=sys.stderr)\n"
        "sys.exit(1)",
    )
    with pytest.raises(SlurmCommandError, match="Socket timed out"):
        run_with_retries(["sbatch", "job.sh"], idempotent=False)
    assert len(fake_bin.calls("sbatch")) == 1
    assert sleeps == []


# --- through the fake commands: cluster facts and job states --------------------------------


@pytest.fixture
def no_config(monkeypatch):
    monkeypatch.setattr(cluster, "_config", {})


def test_max_array_size_from_scontrol(fake_bin, no_config):
    fake_bin.add("scontrol", "print('ClusterName = c\\nMaxArraySize            = 20001')")
    assert cluster.max_array_size() == 20001
    assert cluster.max_array_size() == 20001
    assert fake_bin.calls("scontrol") == [["show", "config"]]


def test_max_array_size_when_scontrol_fails(fake_bin, no_config):
    fake_bin.add(
        "scontrol",
        "print('slurm_load_ctl_conf error: Unable to contact slurm controller',"
        " file=sys.stderr)\nsys.exit(1)",
    )
    assert cluster.max_array_size() == 1001
    assert cluster.max_array_size() == 1001
    assert len(fake_bin.calls("scontrol")) == 2  # a failure is not cached


def test_max_array_size_without_scontrol(fake_bin, no_config):
    assert cluster.max_array_size() == 1001


def test_status_reader_through_fake_sacct_and_squeue(fake_bin, tmp_path):
    fake_bin.add(
        "sacct",
        "print('sacct: error: Slurm accounting storage is disabled', file=sys.stderr)\nsys.exit(1)",
    )
    fake_bin.add("squeue", "print('500_0|RUNNING|None')\nprint('500_[2-3]|PENDING|Priority')")
    refs = []
    for index, job_id in enumerate(["500_0", "500_1", "500_2", "500_3", "501"]):
        (tmp_path / "g" / str(index)).mkdir(parents=True)
        refs.append(JobRef(job_id, JobPaths(tmp_path / "g" / str(index))))
    refs[1].paths.result(0).write_bytes(b"done")
    reader = StatusReader()
    answer = reader.statuses(refs)
    assert answer["500_0"] == JobStatus(JobState.RUNNING, "RUNNING", "")
    assert answer["500_1"].state is JobState.COMPLETED  # ended, its result is there
    assert answer["500_2"] == JobStatus(JobState.PENDING, "PENDING", "Priority")
    assert answer["500_3"].state is JobState.PENDING
    assert answer["501"].state is JobState.FAILED  # ended without a result
    reader.statuses(refs)
    assert len(fake_bin.calls("sacct")) == 1
    assert len(fake_bin.calls("squeue")) == 2
    assert fake_bin.calls("sacct")[0][-2:] == ["-j", "500,501"]
