"""The job side: a :class:`JobEnvironment` from the ``SLURM_*`` variables of a job's process."""

from __future__ import annotations

from collections.abc import Mapping

from offload.core import JobEnvironment

from .hostlist import expand_hostlist

NAME = "slurm"


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


def environment_from(environ: Mapping[str, str]) -> JobEnvironment | None:
    """The job this process runs in, if it runs inside a Slurm job (``SLURM_JOB_ID`` is set).

    An array element's id is ``<array id>_<index>``, as ``sbatch`` users write it; its
    ``array_task_id`` counts from the start of the whole ``map_array``, also when the array was
    split into several ``sbatch`` calls.
    """
    raw_id = environ.get("SLURM_JOB_ID")
    if not raw_id:
        return None
    array_job_id = environ.get("SLURM_ARRAY_JOB_ID") or None
    task = environ.get("SLURM_ARRAY_TASK_ID")
    array_task_id = None
    job_id = raw_id
    if array_job_id and task is not None and task.isdigit():
        job_id = f"{array_job_id}_{task}"
        array_task_id = int(task) + _int(environ, "OFFLOAD_SLURM_ARRAY_OFFSET", 0)
    else:
        array_job_id = None
    nodelist = environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST") or ""
    try:
        hostnames = tuple(expand_hostlist(nodelist))
    except ValueError:
        hostnames = ()
    if not hostnames and environ.get("SLURMD_NODENAME"):
        hostnames = (environ["SLURMD_NODENAME"],)
    num_nodes = _int(environ, "SLURM_JOB_NUM_NODES", _int(environ, "SLURM_NNODES", 1))
    return JobEnvironment(
        backend=NAME,
        job_id=job_id,
        array_job_id=array_job_id,
        array_task_id=array_task_id,
        num_tasks=_int(environ, "SLURM_NTASKS", 1),
        num_nodes=num_nodes,
        node=_int(environ, "SLURM_NODEID", 0),
        global_rank=_int(environ, "SLURM_PROCID", 0),
        local_rank=_int(environ, "SLURM_LOCALID", 0),
        hostnames=hostnames,
    )
