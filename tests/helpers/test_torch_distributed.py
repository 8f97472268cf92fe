"""TorchDistributedEnvironment on the live Slurm cluster: a gloo all_reduce over two nodes."""

import os
import sys

import cloudpickle
import pytest

from offload.core import JobEnvironment
from offload.helpers import TorchDistributedEnvironment

cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.slurm


def all_reduce_over_nodes():
    import torch
    import torch.distributed as dist

    env = TorchDistributedEnvironment().export()
    dist.init_process_group("gloo", init_method="env://")
    try:
        value = torch.tensor([float(env.rank + 1)])
        dist.all_reduce(value)  # the sum over every rank of the job
        return {
            "rank": dist.get_rank(),
            "world_size": dist.get_world_size(),
            "node": JobEnvironment.current().hostname,
            "local_rank": int(os.environ["LOCAL_RANK"]),
            "local_world_size": int(os.environ["LOCAL_WORLD_SIZE"]),
            "master": (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]),
            "sum": value.item(),
        }
    finally:
        dist.destroy_process_group()


def test_gloo_all_reduce_across_two_nodes(tmp_path, torch):
    from offload.slurm import SlurmExecutor

    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=10, nodes=2, tasks_per_node=2)
    job = executor.submit(all_reduce_over_nodes)
    try:
        results = job.results(timeout=400)
    finally:
        job.cancel()  # nothing left on the cluster if the test fails
    assert [r["rank"] for r in results] == [0, 1, 2, 3]
    assert all(r["world_size"] == 4 for r in results)
    assert [r["sum"] for r in results] == [10.0] * 4  # 1 + 2 + 3 + 4, seen by every rank
    assert [r["node"] for r in results] == ["node1", "node1", "node2", "node2"]
    assert [(r["local_rank"], r["local_world_size"]) for r in results] == [
        (0, 2),
        (1, 2),
        (0, 2),
        (1, 2),
    ]
    assert len({r["master"] for r in results}) == 1  # every rank met at the same address
