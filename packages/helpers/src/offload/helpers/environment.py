"""clean_env: submit jobs from inside a job without passing on the current job's variables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

from offload.core.checkpointing import JOB_VARIABLES

SCHEDULER_PREFIXES = (
    "SLURM_",
    "SLURMD_",
    "SBATCH_",
    "SRUN_",
    "SALLOC_",
    "PMI_",
    "PMIX_",
    "OMPI_",
    "OFFLOAD_LOCAL_",
    "OFFLOAD_SLURM_",
)
"""Prefixes of the variables a scheduler (or an MPI launcher) sets in the processes of a job."""

SCHEDULER_NAMES = frozenset(
    {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}
)
"""Whole names removed too: what :class:`TorchDistributedEnvironment` exports for one job."""

OFFLOAD_NAMES = frozenset(JOB_VARIABLES)
"""Whole names removed too: what a backend sets for offload's job side
(``OFFLOAD_SIGTERM_WAITS``, ``OFFLOAD_CHECKPOINT_AT``); a job submitted with the current job's
would checkpoint at its time."""

KEPT = frozenset({"SLURM_CONF"})
"""Names kept although they have a scheduler prefix: configuration, not a job's identity
(``SLURM_CONF`` tells ``sbatch`` where the cluster's configuration is)."""


def scheduler_variables(environ: Iterable[str] | None = None) -> list[str]:
    """The names in ``environ`` (default: ``os.environ``) that :func:`clean_env` removes."""
    names = os.environ if environ is None else environ
    return sorted(
        name
        for name in names
        if name not in KEPT
        and (
            name.startswith(SCHEDULER_PREFIXES) or name in SCHEDULER_NAMES or name in OFFLOAD_NAMES
        )
    )


@contextlib.contextmanager
def clean_env(keep: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """Remove the current job's scheduler variables from ``os.environ`` inside the block.

    A job inherits variables that describe it (``SLURM_JOB_ID``, ``SLURM_PROCID``,
    ``OFFLOAD_LOCAL_RANK``, ``OFFLOAD_CHECKPOINT_AT``, ``MASTER_PORT``...). A job submitted from
    inside it would inherit them too, and could take itself for a part of the current job (its
    ``JobEnvironment``, its ``srun`` steps, its rendezvous, its checkpoint time). Submit such
    jobs inside ``with clean_env():``::

        with clean_env():
            child = executor.submit(evaluate, checkpoint_path)

    Removed: the names starting with one of :data:`SCHEDULER_PREFIXES` (``SLURM_``,
    ``SBATCH_``, ``SRUN_``, ``OFFLOAD_LOCAL_``, ``OFFLOAD_SLURM_``, MPI launchers' ``PMI_``...)
    and those of :data:`SCHEDULER_NAMES` (``MASTER_ADDR``, ``RANK``...) and
    :data:`OFFLOAD_NAMES` (``OFFLOAD_SIGTERM_WAITS``, ``OFFLOAD_CHECKPOINT_AT``), except
    ``SLURM_CONF`` and the names in ``keep``. The block gets the removed variables, as a dict.
    On leaving, they are put back with their values (also if the block set them again); other
    changes the block made to ``os.environ`` stay. ``os.environ`` is global to the process:
    other threads see the change while the block runs.
    """
    kept = set(keep)
    removed = {name: os.environ.pop(name) for name in scheduler_variables() if name not in kept}
    try:
        yield dict(removed)
    finally:
        os.environ.update(removed)
