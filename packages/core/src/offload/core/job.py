"""Job: a handle on submitted work, to wait for it and read its result, logs and state."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import checkpointing, layout, serialization
from . import outcome as outcomes
from .backend import Backend, JobRef
from .errors import JobError, OffloadError
from .layout import JobPaths
from .outcome import Outcome
from .states import JobState, JobStatus
from .submission import DelayedSubmission

R = TypeVar("R")

LOG_TAIL_LINES = 20
_ADVICE = {
    JobState.CANCELLED: "It was cancelled.",
    JobState.TIMEOUT: "It reached its time limit: raise timeout_min, or make it checkpointable.",
    JobState.OUT_OF_MEMORY: "It ran out of memory: raise mem_gb.",
    JobState.NODE_FAIL: "Its node failed.",
}


class Job(Generic[R]):
    """A submitted job (or one element of an array).

    Get one from :meth:`Executor.submit` or :meth:`Executor.map_array`, or re-attach to an earlier
    one with :meth:`Job.attach`. A job with several ranks (``nodes * tasks_per_node > 1``) has one
    result per rank: :meth:`results` returns them all, :meth:`task` gives a view on one rank.
    """

    def __init__(
        self,
        backend: Backend,
        paths: JobPaths,
        num_tasks: int = 1,
        job_id: str | None = None,
        *,
        rank: int | None = None,
    ) -> None:
        self._backend = backend
        self.paths = paths
        self.num_tasks = num_tasks
        self._job_id = job_id
        self._rank = rank
        # checked at every tick of a wait: built once, and no stat once they are all there
        self._result_files = [os.fspath(paths.result(rank)) for rank in self._ranks]
        self._results_seen = False

    # -- identity --------------------------------------------------------------------------

    @classmethod
    def attach(cls, folder: str | os.PathLike[str], job_id: str) -> Job[Any]:
        """The job ``job_id`` submitted earlier (from any process) with ``folder`` as its folder."""
        from .plugins import get_plugin_manager

        paths, metadata = layout.find_job(Path(folder), str(job_id))
        backend = get_plugin_manager().backend(metadata["backend"])
        job: Job[Any] = cls(backend, paths, int(metadata["num_tasks"]), str(job_id))
        backend.watcher.track([job.ref])
        return job

    @property
    def job_id(self) -> str:
        """The backend's id for this job (for an array element, the element's own id)."""
        if self._job_id is None:
            raise OffloadError(
                "This job is not submitted yet: jobs created inside "
                "'with executor.batch():' are submitted when the block ends."
            )
        return self._job_id

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def ref(self) -> JobRef:
        return JobRef(self.job_id, self.paths)

    @property
    def _ranks(self) -> range:
        return range(self.num_tasks) if self._rank is None else range(self._rank, self._rank + 1)

    def task(self, rank: int) -> Job[R]:
        """A view on rank ``rank`` of this job: its result, exception and logs."""
        if not 0 <= rank < self.num_tasks:
            raise ValueError(f"job {self.job_id} has ranks 0..{self.num_tasks - 1}, not {rank}")
        return Job(self._backend, self.paths, self.num_tasks, self._job_id, rank=rank)

    def __repr__(self) -> str:
        rank = "" if self._rank is None else f" rank {self._rank}"
        return f"<Job {self.backend}:{self._job_id or '(not submitted)'}{rank}>"

    def describe(self) -> str:
        return f"{self.backend} job {self._job_id}"

    # -- state -----------------------------------------------------------------------------

    @property
    def status(self) -> JobStatus:
        """The backend's latest word on this job: normalized state, native state, reason."""
        watcher = self._backend.watcher
        if self._has_results() and not watcher.cached(self.job_id).state.is_terminal:
            watcher.expect_change()  # the job is ending: ask now rather than after a backoff
        watcher.refresh()
        return watcher.cached(self.job_id)

    @property
    def state(self) -> JobState:
        """The normalized state (``PENDING``, ``RUNNING``, ``COMPLETED``...)."""
        return self.status.state

    def _has_results(self) -> bool:
        if not self._results_seen:
            self._results_seen = all(map(os.path.exists, self._result_files))
        return self._results_seen

    def finished(self) -> bool:
        """Whether results are there, or the job is over (after its backend's result grace)."""
        if self._job_id is None:
            return False
        if self._has_results():
            return True
        watcher = self._backend.watcher
        if not watcher.cached(self._job_id).state.is_terminal:
            return False
        return watcher.terminal_for(self._job_id) >= self._backend.spec.result_grace

    def done(self) -> bool:
        """Whether the job has finished (without waiting)."""
        if self._job_id is None:
            return False  # inside an unfinished batch
        if self.finished():
            return True
        # at most one query, and only when one is due; nothing new to see if nothing changed
        return self._backend.watcher.refresh() and self.finished()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the job has finished; ``TimeoutError`` after ``timeout`` seconds."""
        self.job_id  # noqa: B018 - raises a clear error inside an unfinished batch
        self._backend.watcher.wait([self], timeout)

    # -- outcome ---------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> R:
        """Wait, then return the job's return value (rank 0's, or this task's).

        For a job with several ranks, an exception in any rank is raised.

        Re-raises the job's exception with its original type when it can be rebuilt here (else a
        :class:`~offload.core.errors.RemoteError`), the remote traceback attached as its cause.
        Raises :class:`~offload.core.errors.JobError` when the job ended without a result.
        """
        return self.results(timeout)[0]

    def results(self, timeout: float | None = None) -> list[R]:
        """Wait, then return one value per rank (the first failing rank's exception is raised)."""
        self.wait(timeout)
        values = []
        for rank in self._ranks:
            outcome = self._outcome(rank)
            if not outcome.success:
                raise outcome.rebuild_exception()
            values.append(outcome.value)
        return values

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait, then return the exception the job raised or died of, or ``None`` on success."""
        self.wait(timeout)
        for rank in self._ranks:
            try:
                outcome = self._outcome(rank)
            except JobError as error:
                return error
            if not outcome.success:
                return outcome.rebuild_exception()
        return None

    def _outcome(self, rank: int) -> Outcome:
        try:
            return outcomes.read(self.paths.result(rank))
        except FileNotFoundError:
            raise self._lost(rank) from None

    def _lost(self, rank: int) -> JobError:
        watcher = self._backend.watcher
        status = watcher.cached(self.job_id)
        message = (
            f"{self.backend} job {self.job_id} ended in state {status} "
            f"without writing a result for rank {rank}."
        )
        advice = _ADVICE.get(status.state)
        if advice:
            message += " " + advice
        requeues = checkpointing.read_requeues(self.paths)
        if "budget" in requeues and status.state is JobState.TIMEOUT:
            message += (
                f" Its requeue budget was spent: it had been checkpointed and requeued "
                f"{requeues['timeout']} time(s) at its time limit, and "
                f"max_num_timeout={requeues['budget']} allows no more."
            )
        tails = self._log_tails(rank)
        for source, text in tails:
            message += f"\nLast lines of {source}:\n{text}"
        if not tails:
            message += f" Its logs ({self.paths.stderr(rank)}) are empty or missing."
        tail = "\n".join(text for _, text in tails)
        return JobError(
            message,
            job_id=self.job_id,
            state=status.state.value,
            native_state=status.native,
            log_tail=tail,
        )

    def _log_tails(self, rank: int) -> list[tuple[Path, str]]:
        """The ends of the rank's error output (else its output) and of the launcher's log."""
        found = []
        for candidates in (
            (self.paths.stderr(rank), self.paths.stdout(rank)),
            (self.paths.launcher_log,),
        ):
            for path in candidates:
                tail = _tail(path, LOG_TAIL_LINES)
                if tail.strip():
                    found.append((path, tail))
                    break
        return found

    # -- actions and files -----------------------------------------------------------------

    def cancel(self) -> None:
        """Ask the backend to cancel the job (all its ranks); ended jobs are left alone."""
        self._backend.cancel([self.ref])
        self._backend.watcher.expect_change()

    def stdout(self) -> str | None:
        """What the job printed (rank 0's, or this task's), or ``None`` before anything was."""
        return _read_text(self.paths.stdout(self._rank or 0))

    def stderr(self) -> str | None:
        """The job's error output (rank 0's, or this task's), or ``None`` before there is any."""
        return _read_text(self.paths.stderr(self._rank or 0))

    def submission(self) -> DelayedSubmission[R]:
        """The pickled function call this job runs."""
        loaded: DelayedSubmission[R] = serialization.load(self.paths.submission)
        return loaded


def cancel_jobs(jobs: Iterable[Job[Any]]) -> None:
    """Cancel many jobs (a whole array, say) with one backend call per backend."""
    by_backend: dict[str, tuple[Backend, list[JobRef]]] = {}
    for job in jobs:
        backend, refs = by_backend.setdefault(job.backend, (job._backend, []))
        refs.append(job.ref)
    for backend, refs in by_backend.values():
        backend.cancel(refs)
        backend.watcher.expect_change()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 8192))
            data = stream.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
