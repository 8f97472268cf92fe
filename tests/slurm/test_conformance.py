"""The Slurm backend passes the core conformance suite on the live cluster."""

from typing import Any, ClassVar

import pytest

from offload.core.testing import BackendConformance

pytestmark = pytest.mark.slurm


class TestSlurmConformance(BackendConformance):
    backend = "slurm"
    parameters: ClassVar[dict[str, Any]] = {"timeout_min": 10}
    rank_layouts: ClassVar[list[dict[str, int]]] = [
        {"tasks_per_node": 2},
        {"nodes": 2, "tasks_per_node": 2},
    ]
