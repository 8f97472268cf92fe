"""Checkpoint and requeue on the local backend: the checkpoint signal comes ``signal_delay_s``
before ``timeout_min``; a checkpointable job saves its state, is requeued and resumes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from offload.core import DelayedSubmission, JobEnvironment, JobError, checkpointing
from offload.core.testing import wait_until
from offload.local import LocalExecutor, supervisor

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TIMEOUT = 120


class CountTo:
    """Adds 1 every ``step`` seconds until ``target``; resumable from its attributes."""

    def __init__(self, step: float = 0.1) -> None:
        self.step = step
        self.done = 0
        self.starts = 0
        self.ranks_checkpointed: list[int] = []

    def __call__(self, target: int) -> dict[str, Any]:
        self.starts += 1
        while self.done < target:
            time.sleep(self.step)
            self.done += 1
        return {"total": self.done, "starts": self.starts}

    def checkpoint(self, target: int) -> DelayedSubmission[dict[str, Any]]:
        return DelayedSubmission(self, target)


class CountWithRanks(CountTo):
    def __call__(self, target: int) -> dict[str, Any]:  # type: ignore[override]
        result = super().__call__(target)
        result["rank"] = JobEnvironment.current().global_rank
        return result


def count_plainly(target: int, step: float = 0.1) -> int:
    done = 0
    while done < target:
        time.sleep(step)
        done += 1
    return done


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    # 6 s limit, checkpoint signal 3 s before it: a job needing ~10 s needs requeues
    return LocalExecutor(tmp_path / "jobs", timeout_min=0.1, signal_delay_s=3)


def test_a_checkpointable_job_finishes_through_requeues(executor: LocalExecutor) -> None:
    job = executor.submit(CountTo(step=0.1), 100)
    result = job.result(timeout=TIMEOUT)
    assert result["total"] == 100, "exactly the result of an uninterrupted run"
    assert result["starts"] >= 2, "it was requeued and resumed from its checkpoint"
    assert (job.paths.job_dir / "checkpoint.0.pkl").exists()
    assert "resumes from its checkpoint" in (job.stderr() or "")


def test_every_rank_checkpoints(executor: LocalExecutor) -> None:
    executor.update_parameters(tasks_per_node=2)
    job = executor.submit(CountWithRanks(step=0.1), 60)
    results = job.results(timeout=TIMEOUT)
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["total"] == 60 and r["starts"] >= 2 for r in results)
    assert (job.paths.job_dir / "checkpoint.1.pkl").exists()


@pytest.mark.parametrize("budget", [1, None], ids=["max_num_timeout=1", "default"])
def test_the_requeue_budget_ends_with_a_clear_error(
    executor: LocalExecutor, budget: int | None
) -> None:
    if budget is not None:
        executor.update_parameters(max_num_timeout=budget)
    spent = 3 if budget is None else budget  # the default budget is three requeues
    job = executor.submit(CountTo(step=0.1), 10_000)
    with pytest.raises(JobError) as raised:
        job.result(timeout=TIMEOUT)
    assert raised.value.state == "TIMEOUT"
    assert "requeue budget was spent" in str(raised.value)
    assert f"requeued {spent} time(s) at its time limit" in str(raised.value)
    assert f"max_num_timeout={spent} allows no more" in str(raised.value)


def test_a_job_that_is_not_checkpointable_times_out(executor: LocalExecutor) -> None:
    job = executor.submit(count_plainly, 10_000)
    with pytest.raises(JobError, match="time limit") as raised:
        job.result(timeout=TIMEOUT)
    assert raised.value.state == "TIMEOUT"
    assert "not checkpointable" in (job.stderr() or "")
    assert not (job.paths.job_dir / "checkpoint.0.pkl").exists()


def test_a_cancelled_checkpointable_job_ends_cancelled(executor: LocalExecutor) -> None:
    job = executor.submit(CountTo(step=0.1), 10_000)
    wait_until(lambda: "starting" in (job.stderr() or ""), 30, "the job to start")
    job.cancel()
    with pytest.raises(JobError, match="CANCELLED"):
        job.result(timeout=TIMEOUT)
    assert os.path.exists(job.paths.job_dir / "checkpoint.0.pkl"), "it saved its state first"


def test_an_early_checkpoint_signal_waits_for_the_planned_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schedulers check time limits on a coarse cycle; the runner checkpoints when planned."""
    # 12 s limit, signal 6 s before it: the signal comes 6 s in, 3 s before the planned time
    planned = time.time() + 9
    executor = LocalExecutor(
        tmp_path / "jobs",
        timeout_min=0.2,
        signal_delay_s=6,
        env_vars={"OFFLOAD_CHECKPOINT_AT": str(planned)},
    )
    job = executor.submit(CountTo(step=0.1), 100)
    result = job.result(timeout=TIMEOUT)
    assert result["total"] == 100 and result["starts"] >= 2
    log = (job.stderr() or "").splitlines()
    assert any("s early: checkpointing at the time planned" in line for line in log)
    first = next(line for line in log if "the time limit is near: checkpointing" in line)
    stamp = time.mktime(time.strptime(first[:19], "%Y-%m-%d %H:%M:%S"))
    assert stamp >= int(planned) - 1, "the first checkpoint waited for the planned time"


def variables_seen(names: tuple[str, ...]) -> dict[str, str]:
    return {name: os.environ[name] for name in names if name in os.environ}


def test_a_job_submitted_from_inside_a_job_gets_its_own_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submitter's job variables (a Slurm job's checkpoint time, a local rank's number)
    describe the submitter's job: the new job would checkpoint at the wrong time."""
    inherited = {
        checkpointing.CHECKPOINT_AT: str(time.time() + 3600),
        checkpointing.SIGTERM_WAITS: "1",
        supervisor.RANK: "3",
        supervisor.NUM_TASKS: "4",
        supervisor.ARRAY_JOB_ID: "outer",
        supervisor.ARRAY_TASK_ID: "2",
    }
    for name, value in inherited.items():
        monkeypatch.setenv(name, value)
    job = LocalExecutor(tmp_path / "jobs").submit(variables_seen, (*inherited, supervisor.JOB_ID))
    assert job.result(timeout=TIMEOUT) == {
        supervisor.RANK: "0",
        supervisor.NUM_TASKS: "1",
        supervisor.JOB_ID: job.job_id,
    }
