"""Checkpoint and requeue on the live Slurm cluster: at the time limit, and on preemption."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from offload.core import DelayedSubmission, Job, JobError, JobState
from offload.core.testing import wait_until
from offload.helpers import Checkpointable
from offload.slurm import SlurmExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = [pytest.mark.slurm, pytest.mark.slow]

WAIT = 540


class CountTo:
    """Adds 1 every ``step`` seconds until ``target``; resumable from its attributes."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.done = 0
        self.starts = 0

    def __call__(self, target: int) -> dict[str, Any]:
        self.starts += 1
        while self.done < target:
            time.sleep(self.step)
            self.done += 1
        return {"total": self.done, "starts": self.starts}

    def checkpoint(self, target: int) -> DelayedSubmission[dict[str, Any]]:
        return DelayedSubmission(self, target)


class Tally(Checkpointable):
    """:class:`CountTo` written as users are told to: a subclass of the helpers' base class."""

    def __init__(self) -> None:
        self.done = 0
        self.starts = 0

    def __call__(self, target: int) -> dict[str, Any]:
        self.starts += 1
        while self.done < target:
            time.sleep(1.0)
            self.done += 1
        return {"total": self.done, "starts": self.starts}


def wait_until_started(job: Job[Any], rank: int = 0) -> None:
    wait_until(
        lambda: "starting" in (job.task(rank).stderr() or ""),
        120,
        lambda: f"rank {rank} to start ({job.status})",
        interval=0.5,
    )


def test_jobs_needing_two_minutes_finish_through_time_limit_requeues(tmp_path: Path) -> None:
    """Two array elements of two ranks each (launched by srun): every rank checkpoints before
    each requeue, and array elements are requeued (and let start again) by their own ids. Beside
    them, a one-rank job (run by the batch shell, which relays the signal to it) does the same."""
    # checkpoints 40 s into each run: three runs or so for 110 s of work
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=1, signal_delay_s=20, tasks_per_node=2)
    jobs = executor.map_array(CountTo(step=1.0), [110, 110])
    one_rank = SlurmExecutor(tmp_path / "jobs", timeout_min=1, signal_delay_s=20)
    single = one_rank.submit(Tally(), 110)
    alone = single.result(timeout=WAIT)
    assert alone["total"] == 110 and alone["starts"] >= 2, alone
    assert "resumes from its checkpoint" in (single.stderr() or "")
    script = single.paths.group_dir.joinpath("slurm-batch.sh").read_text()
    assert "srun" not in script and "--signal=B:USR2" in script, "the batch shell runs the rank"
    for job in jobs:
        results = job.results(timeout=WAIT)
        assert [r["total"] for r in results] == [110, 110], "the result of an uninterrupted run"
        assert all(r["starts"] >= 2 for r in results), "each rank resumed from its checkpoint"
        assert "rank 1 resumes from its checkpoint" in (job.task(1).stderr() or "")
        assert (job.paths.job_dir / "checkpoint.1.pkl").exists()
    # the result files come before the scheduler has seen the batch scripts end
    wait_until(lambda: all(job.state.is_terminal for job in jobs), 60, "the scheduler's states")
    shown = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", jobs[0].job_id.split("_")[0], "--format=JobID,State"],
        capture_output=True,
        text=True,
    ).stdout
    assert sorted(shown.split()) == sorted(f"{job.job_id}|COMPLETED" for job in jobs), shown


def test_running_out_of_requeues_is_a_clear_error(tmp_path: Path) -> None:
    executor = SlurmExecutor(tmp_path / "jobs", timeout_min=1, signal_delay_s=30, max_num_timeout=0)
    job = executor.submit(CountTo(step=1.0), 10_000)
    with pytest.raises(JobError) as raised:
        job.result(timeout=WAIT)
    assert raised.value.state == JobState.TIMEOUT.value
    assert "requeue budget was spent" in str(raised.value)
    assert "max_num_timeout=0" in str(raised.value)


def test_a_preempted_job_is_requeued_and_finishes(tmp_path: Path) -> None:
    """A job of the preemptible partition 'low' holds every CPU; a job of 'high' preempts it."""
    low = SlurmExecutor(
        tmp_path / "jobs",
        timeout_min=20,
        nodes=2,
        tasks_per_node=1,
        cpus_per_task=2,
        slurm_partition="low",
    )
    job = low.submit(CountTo(step=1.0), 60)  # two ranks, launched by srun
    one_rank = SlurmExecutor(
        tmp_path / "jobs", timeout_min=20, cpus_per_task=2, slurm_partition="low"
    )
    single = one_rank.submit(Tally(), 60)  # run by the batch shell
    wait_until_started(job, rank=1)
    wait_until_started(single)
    time.sleep(5)  # some work done, to be kept by the checkpoints
    # both nodes, whole: every job of 'low' is in its way
    high = SlurmExecutor(
        tmp_path / "jobs", timeout_min=5, nodes=2, cpus_per_task=4, slurm_partition="high"
    )
    urgent = high.submit(pow, 2, 10)
    assert urgent.results(timeout=WAIT) == [1024, 1024]
    results = [*job.results(timeout=WAIT), single.result(timeout=WAIT)]
    assert [r["total"] for r in results] == [60, 60, 60], "the result of an uninterrupted run"
    assert all(r["starts"] >= 2 for r in results), "every rank resumed from its checkpoint"
    for preempted in (job, single):
        assert "preempted or cancelled" in (preempted.stderr() or "")
        requeues = preempted.paths.job_dir / "requeues.json"
        assert not requeues.exists(), "a preemption spends nothing of the time-limit budget"


def count_plainly(target: int) -> int:
    done = 0
    while done < target:
        time.sleep(1.0)
        done += 1
    return done


def test_a_preempted_job_that_cannot_checkpoint_starts_again_from_scratch(tmp_path: Path) -> None:
    low = SlurmExecutor(
        tmp_path / "jobs", timeout_min=20, cpus_per_task=4, nodes=2, slurm_partition="low"
    )
    job = low.submit(count_plainly, 20)
    wait_until_started(job)
    high = SlurmExecutor(tmp_path / "jobs", timeout_min=5, cpus_per_task=4, slurm_partition="high")
    assert high.submit(pow, 2, 10).result(timeout=WAIT) == 1024
    assert job.results(timeout=WAIT) == [20, 20]
    log = job.stderr() or ""
    assert "not checkpointable: waiting for the scheduler" in log
    assert log.count("rank 0/2 starting") >= 2, "it ran again, from the start"
    assert not (job.paths.job_dir / "checkpoint.0.pkl").exists()
