"""AutoExecutor picks the best available backend, or explains what to install."""

import pytest

from offload.auto import AutoExecutor, choose_backend
from offload.core import BackendNotFoundError, BackendSpec, hookimpl
from offload.core.plugins import PluginManager


def test_the_example_from_the_readme_runs_on_the_local_backend(tmp_path):
    executor = AutoExecutor(folder=tmp_path, cluster="local")
    executor.update_parameters(timeout_min=5, cpus_per_task=1, slurm_partition="gpu")
    assert executor.cluster == "local"
    job = executor.submit(pow, 2, 10)
    assert job.result(timeout=60) == 1024
    jobs = executor.map_array(pow, [2, 3], [5, 2])
    assert [j.result(timeout=60) for j in jobs] == [32, 9]
    with executor.batch():
        more = [executor.submit(pow, i, 2) for i in range(4)]
    assert [j.result(timeout=60) for j in more] == [0, 1, 4, 9]


class _Fake:
    def __init__(self, *specs):
        self.specs = specs

    @hookimpl
    def offload_backends(self):
        return self.specs


def manager_with(*specs):
    manager = PluginManager()
    manager.register(_Fake(*specs), name="fake")
    return manager


def test_the_available_backend_with_the_highest_priority_wins():
    manager = manager_with(
        BackendSpec(name="laptop", description="", priority=10),
        BackendSpec(name="cluster", description="", priority=100, is_available=lambda: False),
        BackendSpec(name="grid", description="", priority=50),
    )
    assert choose_backend(plugin_manager=manager) == "grid"
    assert choose_backend("cluster", plugin_manager=manager) == "cluster"


def test_an_unknown_cluster_name_lists_the_installed_and_what_to_install():
    manager = manager_with(BackendSpec(name="laptop", description=""))
    with pytest.raises(BackendNotFoundError, match=r"'slurm'.*pip install offload-slurm.*laptop"):
        choose_backend("slurm", plugin_manager=manager)


def test_no_backend_at_all_says_what_to_pip_install():
    with pytest.raises(BackendNotFoundError, match=r"No backend is installed.*pip.*offload-local"):
        choose_backend(plugin_manager=PluginManager())


def test_nothing_available_says_why():
    manager = manager_with(
        BackendSpec(
            name="cluster",
            description="",
            is_available=lambda: False,
            requirements="needs qsub on PATH",
        )
    )
    with pytest.raises(
        BackendNotFoundError, match=r"cluster: not available here .needs qsub on PATH"
    ):
        choose_backend(plugin_manager=manager)
