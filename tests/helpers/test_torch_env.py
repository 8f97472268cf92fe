"""TorchDistributedEnvironment: variables from a JobEnvironment, and a real gloo group locally."""

import os
import sys

import cloudpickle
import pytest

from offload.core import JobEnvironment
from offload.helpers import TorchDistributedEnvironment
from offload.helpers.torch_env import PORT_RANGE, port_for
from offload.local import LocalExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])

NAMES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture(autouse=True)
def restore_variables(monkeypatch):
    for name in (*NAMES, "SLURM_LAUNCH_NODE_IPADDR"):
        monkeypatch.delenv(name, raising=False)


def environment(**fields):
    values = dict(
        backend="slurm",
        job_id="4242",
        num_tasks=4,
        num_nodes=2,
        node=1,
        global_rank=3,
        local_rank=1,
        hostnames=("localhost", "elsewhere"),
    )
    values.update(fields)
    return JobEnvironment(**values)


def test_attributes_come_from_the_job_environment():
    env = TorchDistributedEnvironment(environment=environment())
    assert env.master_addr == "localhost"
    assert env.master_port == port_for("4242")
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (3, 4, 1, 2)
    assert "rank=3/4" in repr(env)


def test_export_writes_the_variables_and_returns_itself():
    env = TorchDistributedEnvironment(environment=environment())
    assert env.export() is env
    assert {name: os.environ[name] for name in NAMES} == {
        "MASTER_ADDR": "localhost",
        "MASTER_PORT": str(port_for("4242")),
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
    }


def test_nothing_is_exported_before_export():
    TorchDistributedEnvironment(environment=environment())
    assert not any(name in os.environ for name in NAMES)


def test_the_port_is_deterministic_high_and_spread():
    low, high = PORT_RANGE
    ports = {port_for(str(job_id)) for job_id in range(1000, 1200)}
    assert all(low <= port < high for port in ports)
    assert low >= 1024 and high <= 32768  # no privileged port, none of Linux's ephemeral ones
    assert len(ports) > 190  # 200 jobs, few collisions
    assert port_for("77_3") == port_for("77_3") != port_for("77_4")


def test_overrides():
    env = TorchDistributedEnvironment(
        master_addr="10.0.0.1", master_port=29500, environment=environment()
    )
    assert (env.master_addr, env.master_port) == ("10.0.0.1", 29500)
    with pytest.raises(ValueError, match="TCP port"):
        TorchDistributedEnvironment(master_port=70000, environment=environment())


def test_unresolvable_first_node(monkeypatch):
    unknown = ("no-such-node.invalid", "other.invalid")
    single = environment(num_nodes=1, num_tasks=2, hostnames=unknown[:1], node=0)
    assert TorchDistributedEnvironment(environment=single).master_addr == "127.0.0.1"
    monkeypatch.setenv("SLURM_LAUNCH_NODE_IPADDR", "10.1.2.3")
    several = environment(hostnames=unknown)
    assert TorchDistributedEnvironment(environment=several).master_addr == "10.1.2.3"
    other_backend = environment(backend="other", hostnames=unknown)
    assert TorchDistributedEnvironment(environment=other_backend).master_addr == unknown[0]
    with pytest.raises(RuntimeError, match="master_addr="):
        TorchDistributedEnvironment(environment=environment(backend="other", hostnames=()))


def test_outside_a_job_is_an_error():
    with pytest.raises(RuntimeError, match="not running inside an offload job"):
        TorchDistributedEnvironment()


def all_reduce_ranks():
    import torch
    import torch.distributed as dist

    env = TorchDistributedEnvironment()
    env.init_process_group("gloo")
    try:
        value = torch.tensor([float(env.rank + 1)])
        dist.all_reduce(value)
        return env.rank, env.world_size, os.environ["MASTER_ADDR"], value.item()
    finally:
        dist.destroy_process_group()


def test_a_gloo_group_across_the_ranks_of_a_local_job(tmp_path, torch):
    executor = LocalExecutor(tmp_path / "jobs", tasks_per_node=3)
    job = executor.submit(all_reduce_ranks)
    results = job.results(timeout=240)
    assert [rank for rank, *_ in results] == [0, 1, 2]
    assert {(size, total) for _, size, _, total in results} == {(3, 6.0)}
    assert len({address for _, _, address, _ in results}) == 1
