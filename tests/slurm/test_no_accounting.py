"""Without accounting (no slurmdbd), sacct fails and squeue tells the job states instead.

The module restarts the test cluster with ``--no-accounting`` and restores it afterwards.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import cloudpickle
import pytest

from offload.core import JobError, JobState
from offload.core.testing import BackendConformance, wait_until
from offload.slurm import SlurmExecutor, commands, plugin
from offload.slurm.status import StatusReader

cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.slurm

CLUSTER = Path(__file__).resolve().parents[2] / "tools" / "slurm-test-cluster"
TIMEOUT = 120


def restart_cluster(*options: str) -> None:
    subprocess.run([str(CLUSTER), "start", *options], check=True, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def cluster_without_accounting(cluster_admin: None) -> Iterator[None]:
    restart_cluster("--no-accounting")
    try:
        yield
    finally:
        restart_cluster()


@pytest.fixture(autouse=True)
def fresh_status_reader(monkeypatch: pytest.MonkeyPatch) -> StatusReader:
    """A reader that has not learnt yet whether this cluster has accounting."""
    reader = StatusReader()
    monkeypatch.setattr(plugin, "reader", lambda: reader)
    return reader


@pytest.fixture
def scheduler_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = commands.run

    def recording(args: Any, **kwargs: Any) -> str:
        calls.append(args[0])
        return real(args, **kwargs)

    monkeypatch.setattr(commands, "run", recording)
    return calls


def fail(message: str) -> None:
    raise RuntimeError(message)


def test_sacct_really_is_unavailable() -> None:
    finished = subprocess.run(["sacct", "-X", "-n"], capture_output=True, text=True)
    assert finished.returncode != 0
    assert "accounting storage is disabled" in finished.stderr.lower()


def test_states_come_from_squeue(
    tmp_path: Path, fresh_status_reader: StatusReader, scheduler_calls: list[str]
) -> None:
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=5)
    done = executor.submit(pow, 2, 8)
    failed = executor.submit(fail, "from the job")
    cancelled = executor.submit(time.sleep, 600)
    cancelled.cancel()
    assert done.result(timeout=TIMEOUT) == 256
    with pytest.raises(RuntimeError, match="from the job"):
        failed.result(timeout=TIMEOUT)
    with pytest.raises(JobError, match="CANCELLED"):
        cancelled.result(timeout=TIMEOUT)
    jobs = (done, failed, cancelled)
    wait_until(
        lambda: all(job.state.is_terminal for job in jobs),
        TIMEOUT,
        lambda: [j.status for j in jobs],
    )
    assert [done.state, failed.state, cancelled.state] == [
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
    ]
    assert not fresh_status_reader.uses_sacct
    assert scheduler_calls.count("sacct") == 1, "sacct is tried once, then left alone"
    assert scheduler_calls.count("squeue") >= 1


def test_the_caller_waits_through_a_controller_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, controller_outage: Any
) -> None:
    """Without accounting every status query needs the controller: while it is down, they fail,
    and the caller logs that, keeps what it knew of the job, and keeps waiting."""
    caplog.set_level(logging.WARNING, logger="offload")
    executor = SlurmExecutor(
        tmp_path / "jobs", timeout_min=5, slurm_additional_parameters={"begin": "now+5"}
    )
    job = executor.submit(pow, 3, 4)  # it can start only after the outage has begun
    with controller_outage(15) as outage:
        assert job.result(timeout=TIMEOUT) == 81
        assert outage.over, "the result came once the controller was started again"
    failed = [r.getMessage() for r in caplog.records if "will ask again" in r.getMessage()]
    assert failed, "status queries were made during the outage, failed, and were made again"
    assert all("Unable to contact slurm controller" in message for message in failed), failed
    wait_until(lambda: job.state.is_terminal, TIMEOUT, lambda: job.status)
    assert job.state is JobState.COMPLETED


class TestConformanceWithoutAccounting(BackendConformance):
    backend = "slurm"
    parameters: ClassVar[dict[str, Any]] = {"timeout_min": 10}
    rank_layouts: ClassVar[list[dict[str, int]]] = [{"nodes": 2, "tasks_per_node": 2}]
