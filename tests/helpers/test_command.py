"""CommandFunction: command lines, output, failures, checkpoints and jobs."""

import pickle
import signal
import subprocess
import sys
import threading
import time

import cloudpickle
import pytest

from offload.core import DelayedSubmission, JobError, OffloadError
from offload.core.testing import wait_until
from offload.helpers import Checkpointable, CommandFailedError, CommandFunction
from offload.local import LocalExecutor

PY = sys.executable


def alive(pid):
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def executor(tmp_path):
    return LocalExecutor(tmp_path / "jobs")


def test_arguments_are_appended_as_strings_and_options():
    command = CommandFunction(["train", "--lr", "0.1"])
    line = command.command_line("data.csv", 3, epochs=5, fast=True, slow=False, seed=None, x_y=1)
    assert line == ["train", "--lr", "0.1", "data.csv", "3", "--epochs=5", "--fast", "--x_y=1"]


def test_a_single_string_is_refused_with_advice():
    with pytest.raises(TypeError, match=r"shlex\.split"):
        CommandFunction("echo hello")
    with pytest.raises(ValueError, match="empty"):
        CommandFunction([])


def test_call_returns_stdout_and_streams_both_outputs(capfd):
    command = CommandFunction(
        [PY, "-c", "import sys; print('out', sys.argv[1:]); print('err', file=sys.stderr)"]
    )
    output = command("a", b=2)
    assert output == "out ['a', '--b=2']\n"
    captured = capfd.readouterr()
    assert "out ['a', '--b=2']" in captured.out
    assert "err" in captured.err


def test_quiet_command_prints_nothing_but_returns_its_output(capfd):
    command = CommandFunction(
        [PY, "-c", "print('x' * 3); import sys; sys.stderr.write('e')"], verbose=False
    )
    assert command() == "xxx\n"
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_cwd_and_env_are_used(tmp_path):
    command = CommandFunction(
        [PY, "-c", "import os; print(os.getcwd(), os.environ['EXTRA'], 'PATH' in os.environ)"],
        cwd=tmp_path,
        env={"EXTRA": "value"},
        verbose=False,
    )
    assert command().split() == [str(tmp_path), "value", "True"]


def test_large_and_non_utf8_output_is_kept_whole():
    script = "import sys; sys.stdout.buffer.write(b'a' * 200000 + b'\\xff\\n')"
    output = CommandFunction([PY, "-c", script], verbose=False)()
    assert output == "a" * 200000 + "\ufffd\n"


def test_failure_names_code_command_and_stderr_tail():
    script = "import sys\nfor i in range(50): print('line', i, file=sys.stderr)\nsys.exit(3)"
    command = CommandFunction([PY, "-c", script], verbose=False)
    with pytest.raises(CommandFailedError) as raised:
        command("--flag")
    error = raised.value
    assert isinstance(error, OffloadError)
    assert error.returncode == 3
    assert error.command[-1] == "--flag"
    message = str(error)
    assert "exited with code 3" in message and "--flag" in message
    assert "line 49" in message and "line 30" in message and "line 29" not in message
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.returncode) == (CommandFailedError, message, 3)


def test_a_killed_command_says_which_signal():
    command = CommandFunction(["sh", "-c", "kill -KILL $$"], verbose=False)
    with pytest.raises(CommandFailedError, match=r"killed by SIGKILL \(exit code -9\)"):
        command()


def test_command_function_is_checkpointable_and_picklable():
    command = CommandFunction(["echo", "hi"], cwd="/tmp", env={"A": "1"})
    assert isinstance(command, Checkpointable)
    copy = cloudpickle.loads(cloudpickle.dumps(command))
    assert (copy.command, copy.cwd, copy.env, copy.verbose) == (
        ["echo", "hi"],
        "/tmp",
        {"A": "1"},
        True,
    )
    assert copy("there") == "hi there\n"


def run_in_thread(command, *args):
    box = {}

    def target():
        try:
            box["value"] = command(*args)
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_checkpoint_stops_the_command_gracefully_and_resubmits_it(tmp_path):
    marker = tmp_path / "terminated"
    pid_file = tmp_path / "pid"
    script = (
        "import os, signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(marker)!r}, 'w').write('yes')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n"
    )
    command = CommandFunction([PY, "-c", script], verbose=False)
    thread, box = run_in_thread(command, "arg")
    wait_until(pid_file.exists, 30, "the command to start")
    started = time.monotonic()
    resumed = command.checkpoint("arg")
    assert time.monotonic() - started < 3  # it exited on SIGTERM: no need to wait for SIGKILL
    assert marker.read_text() == "yes"
    assert isinstance(resumed, DelayedSubmission)
    assert resumed.function is command and resumed.args == ("arg",)
    thread.join(10)
    assert not thread.is_alive()
    assert "value" in box  # it exited with code 0 on SIGTERM, so the call returned normally


def test_checkpoint_kills_a_command_group_that_ignores_sigterm(tmp_path):
    pid_file = tmp_path / "pids"
    # a shell that ignores SIGTERM, with a child that ignores it too
    script = f"trap '' TERM; sleep 600 & echo $$ $! > {pid_file}; wait"
    command = CommandFunction(["sh", "-c", script], verbose=False, stop_timeout=0.5)
    thread, box = run_in_thread(command)
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, 30)
    pids = [int(pid) for pid in pid_file.read_text().split()]
    command.checkpoint()
    thread.join(10)
    assert not thread.is_alive()
    error = box["error"]
    assert isinstance(error, CommandFailedError)
    assert error.checkpointed and error.returncode == -signal.SIGKILL
    assert "stopped by a checkpoint" in str(error)
    wait_until(lambda: not any(alive(pid) for pid in pids), 30, "the group to die")


def test_checkpoint_without_a_running_command_just_resubmits():
    command = CommandFunction(["true"])
    resumed = command.checkpoint(1, a=2)
    assert (resumed.function, resumed.args, resumed.kwargs) == (command, (1,), {"a": 2})


def test_interrupting_the_call_stops_the_command(tmp_path):
    pid_file = tmp_path / "pid"
    command = CommandFunction(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 600"], verbose=False)

    def interrupt(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        threading.Thread(
            target=lambda: (
                wait_until(pid_file.exists, 30),
                signal.setitimer(signal.ITIMER_REAL, 0.05),
            )
        ).start()
        with pytest.raises(KeyboardInterrupt):
            command()
    finally:
        signal.signal(signal.SIGALRM, previous)
    pid = int(pid_file.read_text())
    wait_until(lambda: not alive(pid), 10, "the command to stop")


# -- as jobs -----------------------------------------------------------------------------


def test_job_returns_the_command_output_and_logs_it(executor):
    command = CommandFunction(
        [PY, "-c", "import sys; print(sys.argv[1]); print('warn', file=sys.stderr)"]
    )
    job = executor.submit(command, "hello")
    assert job.result(timeout=60) == "hello\n"
    assert "hello" in job.stdout()
    assert "warn" in job.stderr()


def test_failing_command_raises_command_failed_error_in_the_caller(executor):
    command = CommandFunction(["sh", "-c", "echo broken >&2; exit 7"])
    job = executor.submit(command)
    with pytest.raises(CommandFailedError, match="exited with code 7") as raised:
        job.result(timeout=60)
    assert raised.value.returncode == 7
    assert "broken" in raised.value.stderr_tail


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_cancelling_the_job_stops_the_command(executor, tmp_path):
    pid_file = tmp_path / "pid"
    command = CommandFunction(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 600"])
    job = executor.submit(command)
    wait_until(pid_file.exists, 60, "the command to start")
    pid = int(pid_file.read_text())
    assert alive(pid)
    job.cancel()
    with pytest.raises(JobError):
        job.result(timeout=60)
    wait_until(lambda: not alive(pid), 20, "the command to stop")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_the_command_gets_sigterm_when_its_caller_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    caller = subprocess.Popen(
        [
            PY,
            "-c",
            "import sys; from offload.helpers import CommandFunction; "
            "CommandFunction(['sh', '-c', 'echo $$ > ' + sys.argv[1] + '; exec sleep 600'])()",
            str(pid_file),
        ]
    )
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "the command")
        pid = int(pid_file.read_text())
        assert alive(pid)
        caller.kill()  # SIGKILL: no Python code of the caller runs
        caller.wait()
        wait_until(lambda: not alive(pid), 10, "the orphaned command to stop")
    finally:
        caller.kill()


RESUMING_SCRIPT = """
import os, sys, time
progress, target = sys.argv[1], int(sys.argv[2])
done = int(open(progress).read()) if os.path.exists(progress) else 0
with open(progress + ".starts", "a") as starts:
    starts.write(f"{done}\\n")
while done < target:
    time.sleep(0.1)
    done += 1
    with open(progress + ".tmp", "w") as stream:
        stream.write(str(done))
    os.replace(progress + ".tmp", progress)
print(f"counted to {done}")
"""


@pytest.mark.slow
def test_a_command_job_is_requeued_at_its_time_limit_and_resumes(tmp_path):
    # 6 s limit, checkpoint signal 3 s before it: counting to 80 (8 s) needs requeues
    executor = LocalExecutor(tmp_path / "jobs", timeout_min=0.1, signal_delay_s=3)
    progress = tmp_path / "progress"
    command = CommandFunction([PY, "-c", RESUMING_SCRIPT, str(progress)])
    job = executor.submit(command, 80)
    assert job.result(timeout=120) == "counted to 80\n"
    starts = [int(line) for line in (tmp_path / "progress.starts").read_text().split()]
    assert len(starts) >= 2 and starts[0] == 0
    assert all(later > 0 for later in starts[1:])  # each restart went on from its progress file
    assert "resumes from its checkpoint" in job.stderr()
