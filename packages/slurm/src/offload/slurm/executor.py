"""SlurmExecutor: an Executor bound to the ``slurm`` backend, with dry runs."""

from __future__ import annotations

import os
from typing import Any

from offload.core import Executor

from .dryrun import Preview, preview


class SlurmExecutor(Executor):
    """An :class:`~offload.core.Executor` for the ``slurm`` backend.

    Keyword arguments are job parameters: the generic ones (``timeout_min``, ``mem_gb``,
    ``nodes``, ``tasks_per_node``...) and ``slurm_*`` ones (``slurm_partition``...).
    """

    def __init__(self, folder: str | os.PathLike[str], **parameters: Any) -> None:
        super().__init__(folder, "slurm", **parameters)

    def preview(self, num_jobs: int = 1, *, test_only: bool = False) -> list[Preview]:
        """The batch scripts the next submission of ``num_jobs`` jobs would produce, unsent.

        See :func:`offload.slurm.preview`.
        """
        return preview(self, num_jobs, test_only=test_only)
