"""offload.slurm: run Python functions as Slurm jobs and arrays.

::

    from offload.slurm import SlurmExecutor

    executor = SlurmExecutor("offload_logs", slurm_partition="debug", timeout_min=10)
    job = executor.submit(pow, 2, 10)
    print(job.result())

Most code should use ``offload.auto.AutoExecutor``, which picks this backend where ``sbatch``
is available. Names are imported on first use, so that a job's ranks start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offload.core.lazy import lazy_exports

from .version import __version__

_LOCATIONS = {
    "SlurmExecutor": "executor",
    "Preview": "dryrun",
    "preview": "dryrun",
    "expand_hostlist": "hostlist",
    "SlurmCommandError": "commands",
}

__all__ = [
    "Preview",
    "SlurmCommandError",
    "SlurmExecutor",
    "__version__",
    "expand_hostlist",
    "preview",
]


__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)

if TYPE_CHECKING:
    from .commands import SlurmCommandError
    from .dryrun import Preview, preview
    from .executor import SlurmExecutor
    from .hostlist import expand_hostlist
