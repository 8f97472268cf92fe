"""The local and debug backends pass the conformance suite that every backend must pass."""

from offload.core.testing import BackendConformance


class TestLocalConformance(BackendConformance):
    backend = "local"
    rank_layouts = [{"tasks_per_node": 2}, {"tasks_per_node": 3}]


class TestDebugConformance(BackendConformance):
    backend = "debug"
    runs_in_background = False
