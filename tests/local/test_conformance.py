"""The local and debug backends pass the conformance suite that every backend must pass."""

from typing import ClassVar

from offload.core.testing import BackendConformance


class TestLocalConformance(BackendConformance):
    backend = "local"
    rank_layouts: ClassVar[list[dict[str, int]]] = [{"tasks_per_node": 2}, {"tasks_per_node": 3}]


class TestDebugConformance(BackendConformance):
    backend = "debug"
    runs_in_background = False
