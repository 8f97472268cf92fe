"""TorchDistributedEnvironment: torch.distributed's ``env://`` variables from the job's environment.

torch is not a dependency of offload-helpers: it is imported only by
:meth:`TorchDistributedEnvironment.init_process_group`.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import zlib
from typing import Any

from offload.core.environment import JobEnvironment

logger = logging.getLogger("offload.helpers.torch_env")

PORT_RANGE = (20000, 30000)
"""Ports derived from job ids fall in ``[20000, 30000)``: high, yet below Linux's ephemeral
ports (32768 and up), which the system hands out to outgoing connections."""


def port_for(job_id: str) -> int:
    """The rendezvous port of job ``job_id``: the same in every rank, rarely the same for two
    jobs."""
    low, high = PORT_RANGE
    return low + zlib.crc32(job_id.encode()) % (high - low)


def _resolves(hostname: str) -> bool:
    try:
        socket.getaddrinfo(hostname, None)
    except (OSError, UnicodeError):
        return False
    return True


def _master_address(environment: JobEnvironment) -> str:
    """The first node's name; an address when that name does not resolve (see the class)."""
    first = environment.hostnames[0] if environment.hostnames else ""
    if first and _resolves(first):
        return first
    if environment.num_nodes <= 1:
        return "127.0.0.1"  # every rank is on this node
    launcher = os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "")
    if environment.backend == "slurm" and launcher:
        return launcher
    if not first:
        raise RuntimeError(
            f"the {environment.backend} backend did not say which nodes job "
            f"{environment.job_id} runs on: pass master_addr= to TorchDistributedEnvironment"
        )
    logger.warning("node name %r does not resolve here; using it as MASTER_ADDR anyway", first)
    return first


class TorchDistributedEnvironment:
    """The variables ``torch.distributed.init_process_group(init_method="env://")`` reads.

    Built inside a job, from :meth:`offload.core.JobEnvironment.current` (or ``environment``)::

        def train():
            env = TorchDistributedEnvironment().export()
            torch.distributed.init_process_group("nccl", init_method="env://")
            ...  # env.rank, env.local_rank, env.world_size...

    Attributes (the variable each becomes):

    - ``master_addr`` (``MASTER_ADDR``): the job's first node, ``hostnames[0]``. Where that name
      does not resolve to an address, a single-node job uses ``127.0.0.1``, and a Slurm job the
      address of the node that started the ranks (``SLURM_LAUNCH_NODE_IPADDR``: offload's
      Slurm jobs start them from their first node). ``master_addr=`` overrides it.
    - ``master_port`` (``MASTER_PORT``): derived from the job id (:func:`port_for`), so that
      every rank agrees on it without talking, and two jobs sharing a node rarely collide;
      ``master_port=`` overrides it.
    - ``rank`` (``RANK``), ``world_size`` (``WORLD_SIZE``): the global rank and the number of
      ranks.
    - ``local_rank`` (``LOCAL_RANK``), ``local_world_size`` (``LOCAL_WORLD_SIZE``): the rank
      on this node and the number of ranks per node.

    Nothing changes until :meth:`export`, which writes them into ``os.environ``.
    """

    def __init__(
        self,
        *,
        master_addr: str | None = None,
        master_port: int | None = None,
        environment: JobEnvironment | None = None,
    ) -> None:
        job = environment if environment is not None else JobEnvironment.current()
        self.job_environment = job
        self.master_addr = master_addr or _master_address(job)
        self.master_port = port_for(job.job_id) if master_port is None else int(master_port)
        if not 0 < self.master_port < 65536:
            raise ValueError(f"master_port must be a TCP port (1 to 65535), not {master_port}")
        self.rank = job.global_rank
        self.world_size = job.num_tasks
        self.local_rank = job.local_rank
        self.local_world_size = job.tasks_per_node

    def variables(self) -> dict[str, str]:
        """The environment variables :meth:`export` sets, by name."""
        return {
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
            "RANK": str(self.rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_RANK": str(self.local_rank),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
        }

    def export(self) -> TorchDistributedEnvironment:
        """Write the variables into ``os.environ``; returns ``self``."""
        os.environ.update(self.variables())
        return self

    def init_process_group(self, backend: str | None = None, **kwargs: Any) -> None:
        """Export, then ``torch.distributed.init_process_group(backend, init_method="env://")``.

        ``backend`` defaults to ``"nccl"`` when CUDA is available, else ``"gloo"``; other
        keyword arguments go to ``init_process_group``. Needs torch installed.
        """
        self.export()
        # imported by name: torch is optional, and type checkers need not know it
        torch: Any = importlib.import_module("torch")
        importlib.import_module("torch.distributed")
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(
            backend,
            init_method="env://",
            rank=self.rank,
            world_size=self.world_size,
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"TorchDistributedEnvironment(master={self.master_addr}:{self.master_port}, "
            f"rank={self.rank}/{self.world_size}, local_rank={self.local_rank}/"
            f"{self.local_world_size})"
        )
