"""The ``debug`` backend: jobs run inside the submitting process, when it first waits for them.

Breakpoints and ``pdb`` work as in plain Python, and a job's exception is the original object
with its live traceback. With the parameter ``debug_post_mortem=True``, an exception opens
``pdb.post_mortem`` before the job is recorded as failed. Output is shown on the terminal and also
written to the job's log files. Registered under the ``offload`` entry-point group as ``debug``.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

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
from offload.core.layout import JobPaths
from offload.core.runner import run_job

NAME = "debug"
SPEC = BackendSpec(
    name=NAME,
    description="runs jobs inside this Python process when they are waited for (for pdb)",
    priority=0,
    parameters=[Parameter("debug_post_mortem", (bool,), "open pdb.post_mortem when a job raises")],
    poll_interval=(0.0, 0.0),
)


@dataclass
class _Pending:
    paths: JobPaths
    request: LaunchRequest
    array_index: int | None
    state: JobState = JobState.PENDING
    reason: str = ""


_jobs: dict[str, _Pending] = {}
_counter = 0


class _Tee(io.TextIOBase):
    """Writes to the terminal and to a log file at once."""

    def __init__(self, terminal: TextIO, log: TextIO) -> None:
        self._streams = (terminal, log)

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()


@contextlib.contextmanager
def _job_context(paths: JobPaths, rank: int, env_vars: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env_vars}
    os.environ.update(env_vars)
    with (
        open(paths.stdout(rank), "a", opener=_private) as out,
        open(paths.stderr(rank), "a", opener=_private) as err,
        contextlib.redirect_stdout(_Tee(sys.stdout, out)),
        contextlib.redirect_stderr(_Tee(sys.stderr, err)),
    ):
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _run(job_id: str, job: _Pending) -> None:
    job.state = JobState.RUNNING
    num_tasks = job.request.num_tasks
    failures = []
    for rank in range(num_tasks):
        environment = JobEnvironment(
            backend=NAME,
            job_id=job_id,
            array_job_id=job.paths.group_dir.name if job.array_index is not None else None,
            array_task_id=job.array_index,
            num_tasks=num_tasks,
            num_nodes=1,
            node=0,
            global_rank=rank,
            local_rank=rank,
            hostnames=(socket.gethostname(),),
        )
        with _job_context(job.paths, rank, job.request.env_vars):
            outcome = run_job(job.paths.job_dir, environment, in_process=True)
        if not outcome.success:
            failures.append(f"rank {rank} raised {outcome.type_name}")
            if job.request.parameters.get("debug_post_mortem") and outcome.live_exception:
                import pdb

                pdb.post_mortem(outcome.live_exception.__traceback__)
    job.state = JobState.FAILED if failures else JobState.COMPLETED
    job.reason = "; ".join(failures)


@hookimpl
def offload_backends() -> Sequence[BackendSpec]:
    return [SPEC]


@hookimpl
def offload_submit(backend: str, request: LaunchRequest) -> Sequence[str] | None:
    global _counter
    if backend != NAME:
        return None
    if request.parameters.get("nodes", 1) != 1:
        raise SubmissionError("The debug backend runs jobs in this process: nodes must be 1.")
    ids = []
    is_array = len(request.jobs) > 1
    for index, paths in enumerate(request.jobs):
        _counter += 1
        job_id = f"debug-{os.getpid()}-{_counter}"
        _jobs[job_id] = _Pending(paths, request, index if is_array else None)
        ids.append(job_id)
    return ids


@hookimpl
def offload_status(backend: str, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus] | None:
    if backend != NAME:
        return None
    answer = {}
    for ref in jobs:
        job = _jobs.get(ref.job_id)
        if job is None:
            done = ref.paths.result(0).exists()
            answer[ref.job_id] = JobStatus(
                JobState.COMPLETED if done else JobState.FAILED,
                "FOREIGN",
                "" if done else "debug jobs run only in the process that submitted them",
            )
            continue
        if job.state is JobState.PENDING:
            _run(ref.job_id, job)
        answer[ref.job_id] = JobStatus(job.state, job.state.value, job.reason)
    return answer


@hookimpl
def offload_cancel(backend: str, jobs: Sequence[JobRef]) -> bool | None:
    if backend != NAME:
        return None
    for ref in jobs:
        job = _jobs.get(ref.job_id)
        if job is not None and job.state is JobState.PENDING:
            job.state = JobState.CANCELLED
            job.reason = "cancelled before it ran"
    return True
