"""The hooks a backend implements: the plugin author's reference.

A backend is a module (or object) with functions decorated by :data:`hookimpl`, declared under
the ``offload`` entry-point group of its distribution::

    [project.entry-points.offload]
    pbs = "offload_pbs.plugin"

Every hook but :func:`offload_backends` and :func:`offload_job_environment` receives the
``backend`` name it is called for: a plugin answers only for the backends it declared and returns
``None`` otherwise, which lets the next plugin answer. Those hooks are ``firstresult``: the first
answer that is not ``None`` wins.

Hooks are grouped by when they are called:

- discovery: :func:`offload_backends`;
- on the submitting side: :func:`offload_submit`, :func:`offload_status`, :func:`offload_cancel`;
- inside a running job: :func:`offload_job_environment`, :func:`offload_job_requeue`.

The conformance suite (:mod:`offload.core.testing`) checks an implementation end to end.
"""

# Specifications have no body: pluggy calls the implementations.
# mypy: disable-error-code="empty-body"

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from .backend import BackendSpec, JobRef, LaunchRequest
    from .environment import JobEnvironment
    from .states import JobStatus

PROJECT = "offload"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator that marks a function as the implementation of the hook of the same name."""


# ---------------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------------


@hookspec
def offload_backends() -> Sequence[BackendSpec]:
    """Declare the backends this plugin provides.

    Called once per plugin manager, when backends are first looked up. Must be cheap and must not
    contact a scheduler: availability is checked later, and only when needed, through
    :attr:`BackendSpec.is_available`.

    :return: one :class:`~offload.core.backend.BackendSpec` per backend (usually one). Results of
        all plugins are collected; two plugins declaring the same name is an error.
    """


# ---------------------------------------------------------------------------------------------
# submitting side
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def offload_submit(backend: str, request: LaunchRequest) -> Sequence[str] | None:
    """Launch the jobs of ``request`` and return their native ids.

    Core has already validated the parameters, created each job's folder and pickled each job's
    submission into it. The backend must arrange for every rank of every job to run
    ``request.command(job_dir)`` with ``request.env_vars`` set, its stdout and stderr going to
    ``paths.stdout(rank)`` and ``paths.stderr(rank)``, and for :func:`offload_job_environment`
    to recognise the process. A request with several jobs is an array: submit it in as few
    scheduler calls as the scheduler allows.

    :param backend: the backend name; return ``None`` unless it is one of yours.
    :param request: the jobs to launch, their parameters (generic and this backend's own) and the
        Python interpreter to use.
    :return: one id per job of ``request.jobs``, in order. Ids are strings of letters, digits and
        ``_.:+-[]``, unique within the job folder; an array element's id should be the id a user
        would give to the scheduler's own tools. Raise
        :class:`~offload.core.errors.SubmissionError` (quoting the scheduler's message) when the
        submission is refused. ``firstresult``.
    """


@hookspec(firstresult=True)
def offload_status(backend: str, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus] | None:
    """Tell the state of many jobs at once.

    Called by the status watcher of each process with every job of this backend it still waits
    for, at a pace set by :attr:`BackendSpec.poll_interval`. Answer them all with as few scheduler
    calls as possible, never one call per job. A transient failure of the scheduler (a timeout, an
    unreachable controller) must not raise: leave the jobs concerned out (or answer ``UNKNOWN``);
    the watcher keeps their last known state and asks again later.

    :param backend: the backend name; return ``None`` unless it is one of yours.
    :param jobs: the jobs to report on, each with its id and folder.
    :return: a mapping from job id to :class:`~offload.core.states.JobStatus`, with the
        normalized state and the scheduler's own word. A job missing from the mapping, or
        ``UNKNOWN``, keeps the state it was last seen in. Return a terminal state only when the
        job will not run again: a job that is requeued after preemption is ``PREEMPTED`` or
        ``REQUEUED``, not ``FAILED``.
        ``firstresult``.
    """


@hookspec(firstresult=True)
def offload_cancel(backend: str, jobs: Sequence[JobRef]) -> bool | None:
    """Cancel jobs, pending or running.

    Cancelling a job that already ended is not an error. Afterwards, :func:`offload_status` must
    report the cancelled jobs as ``CANCELLED`` (or the terminal state they reached first).

    :param backend: the backend name; return ``None`` unless it is one of yours.
    :param jobs: the jobs to cancel (array elements, or whole jobs).
    :return: ``True`` once the cancellation was requested. ``firstresult``.
    """


# ---------------------------------------------------------------------------------------------
# inside a running job
# ---------------------------------------------------------------------------------------------


@hookspec
def offload_job_environment() -> JobEnvironment | None:
    """Describe the job this process runs in, if this backend launched it.

    Called by the job-side runner (``python -m offload.core.run``) and by
    :meth:`JobEnvironment.current`. Read the environment variables your backend sets; do not
    contact the scheduler. Every plugin is asked: when jobs are nested (a local job started inside
    a Slurm allocation), several may answer, and the runner keeps the answer whose ``backend`` is
    the one that submitted the job.

    :return: a :class:`~offload.core.environment.JobEnvironment` when this backend launched the
        current process, else ``None``.
    """


@hookspec(firstresult=True)
def offload_job_requeue(backend: str, environment: JobEnvironment, job_dir: Path) -> bool | None:
    """Put the running job back into the queue, to start again from its checkpoint.

    Called inside the job, by rank 0's runner, once every rank has saved its checkpoint after the
    *checkpoint signal* (see :mod:`offload.core.checkpointing`). Stop all of the job's ranks
    (they are waiting for it) and start the whole job again later, with a fresh time limit;
    each rank then runs its ``checkpoint.<rank>.pkl``. Until it starts again, the job's status
    should be ``REQUEUED`` or ``PENDING``, never terminal. Backends that send the checkpoint
    signal ``signal_delay_s`` seconds before the time limit implement this hook.

    :param backend: the backend that launched the job; return ``None`` unless it is one of yours.
    :param environment: the job as :func:`offload_job_environment` described it.
    :param job_dir: the job's folder.
    :return: ``True`` once the requeue was requested. ``firstresult``.
    """
