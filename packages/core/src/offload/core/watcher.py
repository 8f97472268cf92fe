"""The status watcher: one per backend per process, shared by every job of that backend.

It asks the backend about all the jobs it still tracks in one call. Queries are spaced by half
the time since the newest job was submitted (or requeued), within the backend's
``poll_interval``: a fresh job is looked at soon, and a long wait costs a handful of calls per
hour. Other state changes do not speed polling up: a busy array changes all the time.
Waiting does not depend on it alone: a job whose result files are all there is finished at once
(the fast path), which costs a few ``stat`` calls per tick and no scheduler call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from .states import JobState, JobStatus

if TYPE_CHECKING:
    from .backend import Backend, JobRef

logger = logging.getLogger("offload.core.watcher")

UNKNOWN = JobStatus(JobState.UNKNOWN)
_WAITING = (JobState.PENDING, JobState.REQUEUED)
SUBMITTED = JobStatus(JobState.PENDING, "", "submitted; the scheduler was not asked yet")
FIRST_TICK = 0.005
"""Seconds between the first checks of result files; grows while nothing changes."""
BACKOFF = 1.5
CHECKS_PER_SECOND = 2000
"""How many jobs' result files a wait checks per second at most, once nothing happens."""
SHORTEST_LONG_TICK = 0.05


class Waitable(Protocol):
    def finished(self) -> bool: ...

    def describe(self) -> str: ...


W = TypeVar("W", bound=Waitable)


class StatusWatcher:
    """Tracks the status of a backend's jobs for the whole process."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.RLock()
        self._tracked: dict[str, JobRef] = {}
        self._statuses: dict[str, JobStatus] = {}
        self._terminal_since: dict[str, float] = {}
        self._last_query = float("-inf")
        self._newest = float("-inf")  # when the newest tracked job was submitted
        self._due = float("-inf")  # when the next query is due (see _schedule)
        self.queries = 0
        """How many status calls this watcher made (for tests and benchmarks)."""

    def track(self, refs: Iterable[JobRef], *, submitted: bool = False) -> None:
        """Follow ``refs``. With ``submitted`` (the backend accepted them just now), they are
        ``PENDING`` until the first query, which comes after the shortest poll interval."""
        with self._lock:
            now = time.monotonic()
            for ref in refs:
                self._tracked.setdefault(ref.job_id, ref)
                if submitted:
                    self._statuses.setdefault(ref.job_id, SUBMITTED)
            if submitted:
                self._newest = now
                self._last_query = max(self._last_query, now)
                self._schedule()

    def _schedule(self) -> None:
        """Set when the next query is due: once as long has passed since the last query as half
        the age of the newest job at that time (``now - last >= (now - newest) / 2``), and within
        the backend's ``poll_interval`` of the last query. Called whenever either time moves."""
        last, low, high = self._last_query, *self.backend.spec.poll_interval
        if last == float("-inf"):
            self._due = last
        else:
            self._due = min(last + high, max(last + low, 2 * last - self._newest))

    def next_query_in(self) -> float:
        """Seconds until the next query is due (``0`` if it is)."""
        return max(0.0, self._due - time.monotonic())

    def cached(self, job_id: str) -> JobStatus:
        return self._statuses.get(job_id, UNKNOWN)  # one dict read: atomic, no lock needed

    def terminal_for(self, job_id: str) -> float:
        """Seconds since the job was first seen in a terminal state (``-1`` if it was not)."""
        with self._lock:
            since = self._terminal_since.get(job_id)
        return -1.0 if since is None else time.monotonic() - since

    def expect_change(self) -> None:
        """Make the next :meth:`refresh` query at once (after a cancel, say)."""
        with self._lock:
            self._last_query = float("-inf")
            self._schedule()

    def refresh(self) -> bool:
        """Query the backend about every tracked, unfinished job, if a query is due.

        Returns whether any status changed. A failing query is logged and retried later.
        """
        if time.monotonic() < self._due:
            return False  # the common case, called for each of thousands of jobs: no lock
        with self._lock:
            if time.monotonic() < self._due:
                return False  # another thread has just queried
            pending = [
                ref for job_id, ref in self._tracked.items() if job_id not in self._terminal_since
            ]
            if not pending:
                return False
            self.queries += 1
            try:
                answer = self.backend.status(pending)
            except Exception as error:  # a scheduler hiccup must not kill every waiting caller
                logger.warning(
                    "status query of %d %s job(s) failed, will retry: %s",
                    len(pending),
                    self.backend.name,
                    error,
                )
                answer = {}
            self._last_query = time.monotonic()
            self._schedule()
            changed = False
            for ref in pending:
                new = answer.get(ref.job_id, UNKNOWN)
                known = self._statuses.get(ref.job_id)
                if new.state is JobState.UNKNOWN and known is not None:
                    continue  # "cannot say now" does not erase what was known
                if new != known:
                    changed = True
                    self._statuses[ref.job_id] = new
                    logger.debug("%s job %s: %s", self.backend.name, ref.job_id, new)
                    if (
                        new.state in _WAITING
                        and known is not None
                        and known.state is JobState.RUNNING
                    ):
                        self._newest = self._last_query  # requeued: a new submission, in effect
                        self._schedule()
                if new.state.is_terminal:
                    self._terminal_since.setdefault(ref.job_id, self._last_query)
            return changed

    def wait(
        self, jobs: Sequence[Waitable], timeout: float | None = None, *, first: bool = False
    ) -> list[Waitable]:
        """Block until every job (or, with ``first``, any job) is finished; return the finished.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        finished: list[Waitable] = []
        for batch in iter_finished(jobs, [self], timeout):
            finished += batch
            if first and finished:
                break
        return finished


def iter_finished(
    jobs: Sequence[W], watchers: Sequence[StatusWatcher], timeout: float | None = None
) -> Iterator[list[W]]:
    """Wait for ``jobs`` (of the backends of ``watchers``); yield them as they finish.

    Each item is the list of jobs found finished since the previous one (each job comes once);
    an empty list means that states changed but no job finished (for progress displays). Ends
    when every job has finished; raises ``TimeoutError`` after ``timeout`` seconds.

    Every tick checks the result files of the jobs left (a few ``stat`` calls each) and lets
    each watcher ask its backend about all its jobs in one query, when one is due. Ticks start
    at :data:`FIRST_TICK` and grow while nothing happens, up to the time that keeps the checks
    under :data:`CHECKS_PER_SECOND` (at most a second, or the shortest ``poll_interval``
    maximum): a few jobs are seen finished within a tenth of a second, and waiting on thousands
    is no busy loop.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    slowest = min([1.0, *(w.backend.spec.poll_interval[1] for w in watchers)])
    left = list(jobs)
    tick = FIRST_TICK
    while left:
        longest = min(slowest, max(SHORTEST_LONG_TICK, len(left) / CHECKS_PER_SECOND))
        done = [job for job in left if job.finished()]
        if done:
            ended = {id(job) for job in done}
            left = [job for job in left if id(job) not in ended]
            tick = FIRST_TICK
            yield done
            if not left:
                return
        if any([watcher.refresh() for watcher in watchers]):  # every watcher, no short cut
            tick = FIRST_TICK
            yield []
            continue
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = ", ".join(job.describe() for job in left[:5])
                more = f" and {len(left) - 5} more" if len(left) > 5 else ""
                raise TimeoutError(
                    f"{len(left)} of {len(jobs)} job(s) still unfinished after {timeout} s: "
                    f"{names}{more}"
                )
            time.sleep(min(tick, remaining))
        else:
            time.sleep(tick)
        tick = min(longest, tick * BACKOFF)
