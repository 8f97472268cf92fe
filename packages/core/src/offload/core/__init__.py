"""offload.core: run Python functions as jobs on any backend, and get their results back.

The public API::

    from offload.core import Executor, Job, JobEnvironment, DelayedSubmission

Names are imported on first use, so that the job-side runner starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .lazy import lazy_exports
from .version import __version__

_LOCATIONS = {
    "BackendSpec": "backend",
    "JobRef": "backend",
    "LaunchRequest": "backend",
    "JobEnvironment": "environment",
    "BackendNotFoundError": "errors",
    "JobError": "errors",
    "OffloadError": "errors",
    "ParameterError": "errors",
    "RemoteError": "errors",
    "RemoteTraceback": "errors",
    "SerializationError": "errors",
    "SubmissionError": "errors",
    "UnsafeFileError": "errors",
    "Executor": "executor",
    "hookimpl": "hookspecs",
    "Job": "job",
    "cancel_jobs": "job",
    "JobPaths": "layout",
    "GENERIC_PARAMETERS": "parameters",
    "Parameter": "parameters",
    "get_plugin_manager": "plugins",
    "JobState": "states",
    "JobStatus": "states",
    "DelayedSubmission": "submission",
}

__all__ = [
    "GENERIC_PARAMETERS",
    "BackendNotFoundError",
    "BackendSpec",
    "DelayedSubmission",
    "Executor",
    "Job",
    "JobEnvironment",
    "JobError",
    "JobPaths",
    "JobRef",
    "JobState",
    "JobStatus",
    "LaunchRequest",
    "OffloadError",
    "Parameter",
    "ParameterError",
    "RemoteError",
    "RemoteTraceback",
    "SerializationError",
    "SubmissionError",
    "UnsafeFileError",
    "__version__",
    "cancel_jobs",
    "get_plugin_manager",
    "hookimpl",
]


__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)

if TYPE_CHECKING:
    from .backend import BackendSpec, JobRef, LaunchRequest
    from .environment import JobEnvironment
    from .errors import (
        BackendNotFoundError,
        JobError,
        OffloadError,
        ParameterError,
        RemoteError,
        RemoteTraceback,
        SerializationError,
        SubmissionError,
        UnsafeFileError,
    )
    from .executor import Executor
    from .hookspecs import hookimpl
    from .job import Job, cancel_jobs
    from .layout import JobPaths
    from .parameters import GENERIC_PARAMETERS, Parameter
    from .plugins import get_plugin_manager
    from .states import JobState, JobStatus
    from .submission import DelayedSubmission
