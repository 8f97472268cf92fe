"""The status watcher's pace: one query for all jobs, spaced by the age of the newest job."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload.core import BackendSpec, JobPaths, JobRef, JobState, JobStatus
from offload.core import watcher as watching
from offload.core.watcher import StatusWatcher


class FakeBackend:
    name = "fake"
    spec = BackendSpec(name="fake", description="", poll_interval=(2.0, 30.0))

    def __init__(self) -> None:
        self.answer: dict[str, JobStatus] = {}
        self.queries = 0

    def status(self, jobs):
        self.queries += 1
        return {ref.job_id: self.answer[ref.job_id] for ref in jobs if ref.job_id in self.answer}


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(watching.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def backend():
    return FakeBackend()


def refs(*ids: str) -> list[JobRef]:
    return [JobRef(job_id, JobPaths(Path("/nonexistent") / job_id)) for job_id in ids]


def poll_for(watcher: StatusWatcher, clock: list[float], seconds: float, step: float = 0.1):
    """Call ``refresh`` every ``step`` seconds of fake time, as a waiting loop does."""
    end = clock[0] + seconds
    while clock[0] < end:
        watcher.refresh()
        clock[0] += step


def test_submitted_jobs_are_pending_until_the_first_query_after_the_shortest_interval(
    clock, backend
):
    watcher = StatusWatcher(backend)
    watcher.track(refs("1"), submitted=True)
    assert watcher.cached("1").state is JobState.PENDING
    assert not watcher.refresh() and backend.queries == 0, "sbatch just answered for it"
    backend.answer["1"] = JobStatus(JobState.RUNNING, "RUNNING")
    clock[0] += 2.0
    assert watcher.refresh() and backend.queries == 1
    assert watcher.cached("1").state is JobState.RUNNING


def test_queries_thin_out_as_jobs_age_whatever_changes(clock, backend):
    watcher = StatusWatcher(backend)
    watcher.track(refs("1", "2"), submitted=True)

    def changing(jobs):  # every answer differs from the previous one
        backend.queries += 1
        reason = f"reason {backend.queries}"
        return {ref.job_id: JobStatus(JobState.PENDING, "PENDING", reason) for ref in jobs}

    backend.status = changing
    poll_for(watcher, clock, 60)
    first_minute = backend.queries
    assert 5 <= first_minute <= 10, first_minute
    poll_for(watcher, clock, 3600)
    assert backend.queries - first_minute <= 3600 / 30 + 1, "never more often than the longest"


def test_one_query_answers_for_every_tracked_job(clock, backend):
    watcher = StatusWatcher(backend)
    watcher.track(refs(*map(str, range(2000))), submitted=True)
    clock[0] += 2.0
    watcher.refresh()
    assert backend.queries == 1


def test_a_requeued_job_is_watched_closely_again(clock, backend):
    watcher = StatusWatcher(backend)
    watcher.track(refs("1"), submitted=True)
    backend.answer["1"] = JobStatus(JobState.RUNNING, "RUNNING")
    poll_for(watcher, clock, 300)
    assert 0 < watcher.next_query_in() <= 30.0
    backend.answer["1"] = JobStatus(JobState.REQUEUED, "PENDING", "requeued")
    while watcher.cached("1").state is not JobState.REQUEUED:
        poll_for(watcher, clock, 0.1)
    assert 1.8 <= watcher.next_query_in() <= 2.0, "as closely as a new job's"


def test_expect_change_queries_at_once(clock, backend):
    watcher = StatusWatcher(backend)
    watcher.track(refs("1"), submitted=True)
    watcher.expect_change()
    watcher.refresh()
    assert backend.queries == 1
