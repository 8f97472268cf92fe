"""offload.helpers: tools around offload's jobs.

- :class:`Checkpointable`: callables whose jobs can be checkpointed and requeued;
- :class:`CommandFunction`: a shell command as a callable (and :class:`CommandFailedError`);
- :class:`FunctionSequence`: function calls run in order in one job, resumable after a requeue;
- :class:`RsyncSnapshot`: run jobs on a copy of the repository's code;
- :class:`TorchDistributedEnvironment`: torch.distributed's variables inside a job;
- :func:`as_completed`, :func:`wait_all`, :class:`JobProgress`: jobs in finishing order;
- :func:`clean_env`: submit jobs from inside a job without its scheduler variables.

Names are imported on first use, so that a job importing one helper does not import the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offload.core.lazy import lazy_exports

from .version import __version__

_LOCATIONS = {
    "Checkpointable": "checkpoint",
    "CommandFailedError": "command",
    "CommandFunction": "command",
    "JobCounts": "completion",
    "JobProgress": "completion",
    "as_completed": "completion",
    "wait_all": "completion",
    "clean_env": "environment",
    "FunctionSequence": "sequence",
    "RsyncSnapshot": "snapshot",
    "SnapshotError": "snapshot",
    "TorchDistributedEnvironment": "torch_env",
}

__all__ = [
    "Checkpointable",
    "CommandFailedError",
    "CommandFunction",
    "FunctionSequence",
    "JobCounts",
    "JobProgress",
    "RsyncSnapshot",
    "SnapshotError",
    "TorchDistributedEnvironment",
    "__version__",
    "as_completed",
    "clean_env",
    "wait_all",
]


__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)

if TYPE_CHECKING:
    from .checkpoint import Checkpointable
    from .command import CommandFailedError, CommandFunction
    from .completion import JobCounts, JobProgress, as_completed, wait_all
    from .environment import clean_env
    from .sequence import FunctionSequence
    from .snapshot import RsyncSnapshot, SnapshotError
    from .torch_env import TorchDistributedEnvironment
