"""offload-minimal: the smallest complete offload backend, written to be read.

Each rank of each job is a subprocess of the Python process that submitted it. Left out on
purpose: several nodes, the resource parameters (``timeout_min``, ``mem_gb``, ``cpus_per_task``,
``gpus_per_node`` are ignored), and jobs submitted by another process (see ``_status``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence

from offload.core import (
    BackendSpec,
    JobEnvironment,
    JobRef,
    JobState,
    JobStatus,
    LaunchRequest,
    Parameter,
    SubmissionError,
    hookimpl,
)

NAME = "minimal"

# Variables set in every rank's environment; offload_job_environment reads them back.
JOB_ID = "OFFLOAD_MINIMAL_JOB_ID"
ARRAY_JOB_ID = "OFFLOAD_MINIMAL_ARRAY_JOB_ID"  # "" when the job is not part of an array
ARRAY_INDEX = "OFFLOAD_MINIMAL_ARRAY_INDEX"  # "" when the job is not part of an array
RANK = "OFFLOAD_MINIMAL_RANK"
NUM_TASKS = "OFFLOAD_MINIMAL_NUM_TASKS"

# The processes this Python process started: job id -> one Popen per rank.
_processes: dict[str, list[subprocess.Popen[bytes]]] = {}
_cancelled: set[str] = set()


def _check_nice(value: int) -> None:
    if not 0 <= value <= 19:
        raise ValueError("must be between 0 and 19")


@hookimpl
def offload_backends() -> Sequence[BackendSpec]:
    # Cheap, and no contact with any scheduler: this is called whenever backends are listed.
    return [
        BackendSpec(
            name=NAME,
            description="runs each rank as a subprocess of the submitting Python process",
            priority=1,  # below "local" (10): AutoExecutor never prefers this example
            # Our own parameters carry the backend's name as a prefix.
            parameters=[
                Parameter("minimal_nice", (int,), "niceness of the job's processes", _check_nice)
            ],
            poll_interval=(0.05, 1.0),  # Popen.poll() is cheap: ask often
        )
    ]


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)  # logs readable by their owner only, like the pickles


@hookimpl
def offload_submit(backend: str, request: LaunchRequest) -> Sequence[str] | None:
    if backend != NAME:
        return None  # another plugin's backend: let it answer
    if request.parameters.get("nodes", 1) != 1:
        raise SubmissionError("the minimal backend runs on this machine only: use nodes=1")
    nice = request.parameters.get("minimal_nice", 0)
    is_array = len(request.jobs) > 1  # several jobs in one request: map_array or batch
    ids = []
    for index, paths in enumerate(request.jobs):
        # An id must be unique within the executor's folder; the group folder's name is.
        job_id = f"{request.group_dir.name}_{index}"
        environment = {
            **os.environ,
            **request.env_vars,  # the user's env_vars parameter
            JOB_ID: job_id,
            ARRAY_JOB_ID: request.group_dir.name if is_array else "",
            ARRAY_INDEX: str(index) if is_array else "",
            NUM_TASKS: str(request.num_tasks),
        }
        command = request.command(paths.job_dir)  # python -m offload.core.run <job_dir>
        if nice:
            command = ["nice", "-n", str(nice), *command]
        ranks = []
        for rank in range(request.num_tasks):
            with (
                open(paths.stdout(rank), "ab", opener=_private) as out,
                open(paths.stderr(rank), "ab", opener=_private) as err,
            ):
                ranks.append(
                    subprocess.Popen(
                        command,
                        env={**environment, RANK: str(rank)},
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        start_new_session=True,  # its own process group, so cancel reaches children
                    )
                )
        _processes[job_id] = ranks
        ids.append(job_id)
    return ids


def _status(job_id: str) -> JobStatus:
    ranks = _processes.get(job_id)
    if ranks is None:
        # Submitted by another process (this one called Job.attach): its processes are not
        # ours to poll. UNKNOWN is not terminal, so core keeps waiting, and ends the wait when
        # the job's result files appear. A scheduler's backend asks the scheduler instead.
        return JobStatus(JobState.UNKNOWN, "", "submitted by another process")
    codes = [process.poll() for process in ranks]  # None while running; -N after signal N
    if None in codes:
        return JobStatus(JobState.RUNNING, "running")
    if all(code == 0 for code in codes):
        return JobStatus(JobState.COMPLETED, "exited")
    state = JobState.CANCELLED if job_id in _cancelled else JobState.FAILED
    return JobStatus(state, "exited", f"exit codes {codes}")


@hookimpl
def offload_status(backend: str, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus] | None:
    if backend != NAME:
        return None
    # One call answers for every job the caller waits for. Here each answer is a cheap poll();
    # a scheduler's backend makes one query for all of them (never one per job).
    return {ref.job_id: _status(ref.job_id) for ref in jobs}


@hookimpl
def offload_cancel(backend: str, jobs: Sequence[JobRef]) -> bool | None:
    if backend != NAME:
        return None
    for ref in jobs:
        for process in _processes.get(ref.job_id, []):
            if process.poll() is None:  # an ended job stays as it ended
                _cancelled.add(ref.job_id)
                with contextlib.suppress(ProcessLookupError):  # it may end meanwhile
                    os.killpg(process.pid, signal.SIGTERM)
    return True


@hookimpl
def offload_job_environment() -> JobEnvironment | None:
    # Called inside a job, by the runner and by JobEnvironment.current(): read our variables.
    job_id = os.environ.get(JOB_ID)
    if not job_id:
        return None  # not launched by this backend
    rank = int(os.environ[RANK])
    index = os.environ.get(ARRAY_INDEX)
    return JobEnvironment(
        backend=NAME,
        job_id=job_id,
        array_job_id=os.environ.get(ARRAY_JOB_ID) or None,
        array_task_id=int(index) if index else None,
        num_tasks=int(os.environ[NUM_TASKS]),
        global_rank=rank,
        local_rank=rank,
        hostnames=(socket.gethostname(),),  # one node: num_nodes=1 and node=0, the defaults
    )
