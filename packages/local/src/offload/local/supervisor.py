"""The process that runs one local job: ``python -m offload.local.supervisor <job_dir> ...``.

It leads the job's process group (so cancelling kills the whole job), forks one child per rank
(each child runs :func:`offload.core.run.main` with its stdout and stderr sent to the rank's log
files), enforces the time limit, and records the job's state in ``local-status.json``:
``RUNNING`` with its pid when it starts, then ``COMPLETED``, ``FAILED``, ``TIMEOUT`` or
``CANCELLED`` with each rank's exit status.

Checkpointing: ``signal_delay`` seconds before the time limit the ranks get the checkpoint
signal; a rank that has checkpointed asks for a requeue with ``SIGUSR1`` to the supervisor,
which then kills the ranks and starts them all again, with a fresh time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# imported before forking, so that every rank starts warm; nothing else of offload is needed here
from offload.core.environment import JobEnvironment
from offload.core.layout import JobPaths
from offload.core.runner import prepare_job_process, run_job
from offload.core.serialization import atomic_writer

STATUS_FILE = "local-status.json"

# Environment variables a rank finds; the local plugin's environment hook reads them.
JOB_ID = "OFFLOAD_LOCAL_JOB_ID"
ARRAY_JOB_ID = "OFFLOAD_LOCAL_ARRAY_JOB_ID"
ARRAY_TASK_ID = "OFFLOAD_LOCAL_ARRAY_TASK_ID"
RANK = "OFFLOAD_LOCAL_RANK"
NUM_TASKS = "OFFLOAD_LOCAL_NUM_TASKS"

KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when a job is timed out or cancelled."""


def write_status(job_dir: Path, **status: Any) -> None:
    """Record the job's state atomically in its folder."""
    with atomic_writer(job_dir / STATUS_FILE) as stream:
        stream.write(json.dumps(status).encode())


def read_status(job_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((job_dir / STATUS_FILE).read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def environment_from(variables: Mapping[str, str]) -> JobEnvironment | None:
    """The environment of a local job's rank, from the variables the supervisor sets."""
    job_id = variables.get(JOB_ID)
    if not job_id or RANK not in variables:
        return None
    rank = int(variables[RANK])
    array_task = variables.get(ARRAY_TASK_ID)
    return JobEnvironment(
        backend="local",
        job_id=job_id,
        array_job_id=variables.get(ARRAY_JOB_ID),
        array_task_id=int(array_task) if array_task else None,
        num_tasks=int(variables.get(NUM_TASKS, "1")),
        num_nodes=1,
        node=0,
        global_rank=rank,
        local_rank=rank,
        hostnames=(socket.gethostname(),),
    )


def _run_rank(job_dir: Path, rank: int, num_tasks: int) -> int:
    """In the forked child: become rank ``rank`` and run the job."""
    paths = JobPaths(job_dir)
    for fd, path in ((1, paths.stdout(rank)), (2, paths.stderr(rank))):
        log = _open_log(path)
        os.dup2(log, fd)
        os.close(log)
    os.environ[RANK] = str(rank)
    os.environ[NUM_TASKS] = str(num_tasks)
    prepare_job_process()
    outcome = run_job(job_dir, environment_from(os.environ))
    return 0 if outcome.success else 1


def describe_wait_status(status: int) -> str:
    """``status`` from ``os.waitpid`` in words: "exited with code 3", "killed by signal SIGKILL"."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"killed by signal {signal.Signals(number).name}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def _describe_exit(rank: int, status: int) -> str:
    return f"rank {rank} {describe_wait_status(status)}"


class Supervisor:
    """Runs the ranks of one job, as many times as the job is requeued."""

    def __init__(
        self,
        job_dir: Path,
        num_tasks: int,
        timeout: float | None,
        signal_delay: float = 0.0,
        checkpoint_signal: int = signal.SIGUSR2,
    ) -> None:
        self.job_dir = job_dir
        self.num_tasks = num_tasks
        self.timeout = timeout
        self.signal_delay = signal_delay if timeout and 0 < signal_delay < timeout else 0.0
        self.checkpoint_signal = checkpoint_signal
        self.children: dict[int, int] = {}  # pid -> rank
        self.ending: str | None = None  # "TIMEOUT" or "CANCELLED" once we started killing
        self.warned = False  # the checkpoint signal was sent in this attempt
        self.requeue_asked = False

    def stopping(self) -> bool:
        """Whether the ranks are being ended. A method, not an attribute read: a signal handler
        may set :attr:`ending` between any two lines, which a type checker's narrowing ignores."""
        return self.ending is not None

    def _stop_children(self, reason: str) -> None:
        if self.ending is None:
            self.ending = reason
            self._signal_children(signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, KILL_GRACE)
        else:
            self._signal_children(signal.SIGKILL)

    def _on_alarm(self) -> None:
        if self.signal_delay and not self.warned and self.ending is None:
            self.warned = True  # the time limit is near: tell the ranks, end them later
            self._signal_children(self.checkpoint_signal)
            signal.setitimer(signal.ITIMER_REAL, self.signal_delay)
        else:
            self._stop_children("TIMEOUT")

    def _on_requeue(self) -> None:
        """A rank asked for a requeue (it has checkpointed): end this attempt at once."""
        if self.ending is None:
            self.requeue_asked = True
            self._signal_children(signal.SIGKILL)

    def _signal_children(self, number: int) -> None:
        for pid in self.children:
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self._stop_children("CANCELLED"))
        signal.signal(signal.SIGALRM, lambda *_: self._on_alarm())
        signal.signal(signal.SIGUSR1, lambda *_: self._on_requeue())
        attempt = 0
        while True:
            write_status(
                self.job_dir, state="RUNNING", pid=os.getpid(), started=time.time(), attempt=attempt
            )
            exits = self._run_attempt()
            if not self.requeue_asked or self.ending:
                break
            attempt += 1
            self.requeue_asked = self.warned = False
            print(f"offload: requeued (attempt {attempt + 1})", file=sys.stderr, flush=True)
        failures = [
            _describe_exit(rank, status) for rank, status in sorted(exits.items()) if status
        ]
        if self.ending == "TIMEOUT":
            state, reason = "TIMEOUT", f"killed at its time limit of {self.timeout:g} s"
        elif self.ending:
            state, reason = self.ending, "cancelled"
        elif failures:
            state, reason = "FAILED", "; ".join(failures)
        else:
            state, reason = "COMPLETED", ""
        if self.ending and failures:
            print(f"offload: {reason}: " + "; ".join(failures), file=sys.stderr, flush=True)
        write_status(
            self.job_dir,
            state=state,
            reason=reason,
            ended=time.time(),
            exit_codes=[exits[rank] for rank in sorted(exits)],
            attempts=attempt + 1,
        )
        return 0

    def _run_attempt(self) -> dict[int, int]:
        """Fork every rank, wait for them all; their wait statuses by rank."""
        self.children = {}
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals are blocked around each fork: a SIGTERM that arrives then is delivered after
        # the child has its default handlers back (so it dies) and after the parent has recorded
        # the child (so the parent's handler passes it on). Otherwise it could be swallowed.
        guarded = {signal.SIGTERM, signal.SIGALRM, signal.SIGUSR1}
        for rank in range(self.num_tasks):
            if self.stopping():
                break
            signal.pthread_sigmask(signal.SIG_BLOCK, guarded)
            # A SIGTERM that came just before the block has only been noted: its Python handler
            # runs at the interpreter's next check, which may fall between the fork and the
            # line that records the child. Then the handler stops the ranks it knows, not this
            # one; it is stopped below, once recorded.
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    for number in guarded:
                        signal.signal(number, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, guarded)
                    code = _run_rank(self.job_dir, rank, self.num_tasks)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            self.children[pid] = rank
            if self.stopping():
                os.kill(pid, signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, guarded)
        if self.timeout and not self.ending:
            first = self.timeout - self.signal_delay if self.signal_delay else self.timeout
            signal.setitimer(signal.ITIMER_REAL, first)
        exits: dict[int, int] = {}
        while len(exits) < len(self.children):
            pid, status = os.waitpid(-1, 0)
            if pid in self.children:
                exits[self.children[pid]] = status
        signal.setitimer(signal.ITIMER_REAL, 0)
        return exits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offload.local.supervisor")
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--ntasks", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=None, help="seconds")
    parser.add_argument(
        "--signal-delay", type=float, default=0.0, help="seconds before the timeout to signal"
    )
    parser.add_argument("--checkpoint-signal", type=int, default=int(signal.SIGUSR2))
    arguments = parser.parse_args(argv)
    return Supervisor(
        arguments.job_dir,
        arguments.ntasks,
        arguments.timeout,
        arguments.signal_delay,
        arguments.checkpoint_signal,
    ).run()


if __name__ == "__main__":
    sys.exit(main())
