"""The example backend of the docs (docs/examples/offload-minimal) passes the conformance suite.

It is a separate distribution: install it first with
``pip install -e docs/examples/offload-minimal`` (the nox tests session installs every
``docs/examples/*/`` package).
"""

from __future__ import annotations

import os
import re
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import pytest

from offload.core import Executor, JobState, ParameterError, SubmissionError
from offload.core.testing import BackendConformance

INSTALL = "pip install -e docs/examples/offload-minimal"

pytest.importorskip("offload_minimal", reason=f"offload-minimal is not installed ({INSTALL})")
if "minimal" in os.environ.get("OFFLOAD_DISABLE_PLUGINS", "").replace(" ", "").split(","):
    pytest.skip(
        "the minimal plugin is disabled by OFFLOAD_DISABLE_PLUGINS", allow_module_level=True
    )
if not any(ep.name == "minimal" for ep in entry_points(group="offload")):
    pytest.skip(
        f"offload_minimal is importable but its entry point is not registered ({INSTALL})",
        allow_module_level=True,
    )


class TestMinimalConformance(BackendConformance):
    backend = "minimal"
    timeout = 60.0
    rank_layouts: ClassVar[list[dict[str, int]]] = [{"tasks_per_node": 2}, {"tasks_per_node": 3}]


class TestMinimalBackend:
    """What the docs say about the example, beyond the suite."""

    def test_its_own_parameter_is_checked(self, tmp_path):
        with pytest.raises(ParameterError, match="between 0 and 19"):
            Executor(tmp_path, "minimal", minimal_nice=40)
        with pytest.raises(ParameterError, match="minimal_nice"):
            Executor(tmp_path, "minimal", minimal_nicety=1)

    def test_nice_jobs_run(self, tmp_path):
        executor = Executor(tmp_path, "minimal", minimal_nice=5)
        assert executor.submit(pow, 2, 10).result(timeout=60) == 1024

    def test_several_nodes_are_refused(self, tmp_path):
        executor = Executor(tmp_path, "minimal", nodes=2)
        with pytest.raises(SubmissionError, match="nodes=1"):
            executor.submit(pow, 2, 10)

    def test_one_status_call_answers_for_every_job(self, tmp_path):
        executor = Executor(tmp_path, "minimal")
        jobs = executor.map_array(pow, [2, 3, 4], [2, 2, 2])
        assert [job.result(timeout=60) for job in jobs] == [4, 9, 16]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # the result is there before the process has exited: wait for the end
            answer = executor._backend.status([job.ref for job in jobs])
            assert set(answer) == {job.job_id for job in jobs}
            if all(status.state.is_terminal for status in answer.values()):
                break
            time.sleep(0.05)
        assert {status.state for status in answer.values()} == {JobState.COMPLETED}


def test_the_guide_quotes_the_example_as_it_is():
    """Each ```python excerpt block of docs/writing-a-plugin.md is a verbatim piece of
    offload_minimal or of this test module, so the guide cannot drift from the code."""
    import offload_minimal

    root = Path(__file__).resolve().parents[2]
    sources = Path(offload_minimal.__file__).read_text() + Path(__file__).read_text()
    guide = (root / "docs" / "writing-a-plugin.md").read_text()
    excerpts = re.findall(r"^```python excerpt\n(.*?)^```", guide, re.DOTALL | re.MULTILINE)
    assert excerpts, "no excerpt found in docs/writing-a-plugin.md"
    for excerpt in excerpts:
        assert excerpt in sources, f"this excerpt of the guide is not in the code:\n{excerpt}"
