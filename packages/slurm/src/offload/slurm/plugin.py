"""The ``slurm`` backend: each job is an ``sbatch`` job, each array one ``sbatch --array``.

Registered under the ``offload`` entry-point group as ``slurm``. This module is imported in every
job's process, so submitting and status reading (Jinja2, the status reader) are imported on
first use only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from offload.core import BackendSpec, JobEnvironment, JobRef, JobStatus, LaunchRequest, hookimpl
from offload.core.lazy import ProcessWide

from .environment import NAME, environment_from
from .options import PARAMETERS

if TYPE_CHECKING:
    from .status import StatusReader


def sbatch_available() -> bool:
    import shutil  # only where a backend is chosen, not in every job's process

    return shutil.which("sbatch") is not None


SPEC = BackendSpec(
    name=NAME,
    description="submits jobs and arrays to a Slurm cluster with sbatch",
    priority=100,
    is_available=sbatch_available,
    requirements="the sbatch command on PATH (run from a Slurm login node)",
    parameters=PARAMETERS,
    poll_interval=(2.0, 30.0),
    result_grace=3.0,
)


def _new_reader() -> StatusReader:
    from .status import StatusReader

    return StatusReader()


reader = ProcessWide(_new_reader)
"""This process's status reader (it remembers whether the cluster has accounting)."""


@hookimpl
def offload_backends() -> Sequence[BackendSpec]:
    return [SPEC]


@hookimpl
def offload_submit(backend: str, request: LaunchRequest) -> Sequence[str] | None:
    if backend != NAME:
        return None
    from . import submit as submitting

    return submitting.submit(request)


@hookimpl
def offload_status(backend: str, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus] | None:
    return reader().statuses(jobs) if backend == NAME else None


@hookimpl
def offload_cancel(backend: str, jobs: Sequence[JobRef]) -> bool | None:
    if backend != NAME:
        return None
    from . import submit as submitting

    submitting.cancel(jobs)
    return True


@hookimpl
def offload_job_environment() -> JobEnvironment | None:
    return environment_from(os.environ)


@hookimpl
def offload_job_requeue(backend: str, environment: JobEnvironment, job_dir: Path) -> bool | None:
    if backend != NAME:
        return None
    from . import submit as submitting

    submitting.requeue(environment.job_id)
    return True
