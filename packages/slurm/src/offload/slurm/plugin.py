"""The ``slurm`` backend: each job is an ``sbatch`` job, each array one ``sbatch --array``.

Registered under the ``offload`` entry-point group as ``slurm``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from offload.core import BackendSpec, JobEnvironment, JobRef, JobStatus, LaunchRequest, hookimpl

from . import submit as submitting
from .environment import NAME, environment_from
from .options import PARAMETERS
from .status import StatusReader


def sbatch_available() -> bool:
    return shutil.which("sbatch") is not None


SPEC = BackendSpec(
    name=NAME,
    description="submits jobs and arrays to a Slurm cluster with sbatch",
    priority=100,
    is_available=sbatch_available,
    requirements="the sbatch command on PATH (run from a Slurm login node)",
    parameters=PARAMETERS,
    poll_interval=(1.0, 30.0),
    result_grace=3.0,
)

reader = StatusReader()
"""This process's status reader (remembers whether the cluster has accounting)."""


@hookimpl
def offload_backends() -> Sequence[BackendSpec]:
    return [SPEC]


@hookimpl
def offload_submit(backend: str, request: LaunchRequest) -> Sequence[str] | None:
    return submitting.submit(request) if backend == NAME else None


@hookimpl
def offload_status(backend: str, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus] | None:
    return reader.statuses(jobs) if backend == NAME else None


@hookimpl
def offload_cancel(backend: str, jobs: Sequence[JobRef]) -> bool | None:
    if backend != NAME:
        return None
    submitting.cancel(jobs)
    return True


@hookimpl
def offload_job_environment() -> JobEnvironment | None:
    return environment_from(os.environ)


@hookimpl
def offload_job_requeue(backend: str, environment: JobEnvironment, job_dir: Path) -> bool | None:
    if backend != NAME:
        return None
    submitting.requeue_current_job()
    return True
