"""The ``local`` backend: each job is a process group on this machine.

Registered under the ``offload`` entry-point group as ``local``. This module is imported in every
job's process, so the launcher is imported on first use only.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from offload.core import BackendSpec, JobEnvironment, JobRef, JobStatus, LaunchRequest, hookimpl
from offload.core.lazy import ProcessWide

from . import supervisor

if TYPE_CHECKING:
    from .launcher import LocalLauncher

NAME = "local"
SPEC = BackendSpec(
    name=NAME,
    description="runs each job as a process group on this machine",
    priority=10,
    poll_interval=(0.01, 0.5),
)


def _new_launcher() -> LocalLauncher:
    from .launcher import LocalLauncher

    return LocalLauncher()


launcher = ProcessWide(_new_launcher)
"""This process's launcher (created on first use)."""


@hookimpl
def offload_backends() -> Sequence[BackendSpec]:
    return [SPEC]


@hookimpl
def offload_submit(backend: str, request: LaunchRequest) -> Sequence[str] | None:
    return launcher().submit(request) if backend == NAME else None


@hookimpl
def offload_status(backend: str, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus] | None:
    return launcher().status(jobs) if backend == NAME else None


@hookimpl
def offload_cancel(backend: str, jobs: Sequence[JobRef]) -> bool | None:
    if backend != NAME:
        return None
    launcher().cancel(jobs)
    return True


@hookimpl
def offload_job_environment() -> JobEnvironment | None:
    return supervisor.environment_from(os.environ)


@hookimpl
def offload_job_requeue(backend: str, environment: JobEnvironment, job_dir: Path) -> bool | None:
    if backend != NAME:
        return None
    os.kill(os.getppid(), signal.SIGUSR1)  # the supervisor restarts every rank
    return True
