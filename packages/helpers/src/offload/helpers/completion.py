"""as_completed and wait_all: jobs in the order they finish, with an optional progress display."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from offload.core.job import Job
from offload.core.states import JobState
from offload.core.watcher import BACKOFF, FIRST_TICK

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from offload.core.watcher import StatusWatcher

J = TypeVar("J", bound=Job[Any])


@dataclass(frozen=True)
class JobCounts:
    """How many jobs are in each state: waiting to start, running, done (a result), failed."""

    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.running + self.done + self.failed

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def __str__(self) -> str:
        return (
            f"{self.finished}/{self.total} jobs finished: {self.pending} pending, "
            f"{self.running} running, {self.done} done, {self.failed} failed"
        )


class JobProgress:
    """A display of :class:`JobCounts`, for :func:`as_completed` and :func:`wait_all`.

    When its console writes to a terminal (by default: when ``sys.stderr`` is one), it is a live
    progress bar (with rich) followed by the counts per state. Otherwise (a log file, CI) it
    writes plain lines such as ``12:00:05 offload: 7/10 jobs finished: 1 pending, 2 running,
    6 done, 1 failed``, when the counts change but at most once every ``interval`` seconds, and
    always a last line when it stops.
    """

    def __init__(
        self,
        *,
        console: Console | None = None,
        description: str = "jobs",
        interval: float = 10.0,
    ) -> None:
        if console is None:
            from rich.console import Console

            console = Console(file=sys.stderr)
        self.console = console
        self.description = description
        self.interval = interval
        self.counts = JobCounts()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._printed: JobCounts | None = None
        self._printed_at = float("-inf")

    @property
    def live(self) -> bool:
        """Whether the display is a live bar (the console is a terminal), not log lines."""
        return self.console.is_terminal

    def start(self, total: int) -> None:
        """Show the display for ``total`` jobs, none finished yet."""
        self.counts = JobCounts(pending=total)
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[states]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task(
                self.description, total=total, states=self._states()
            )
            self._progress.start()
        else:
            self._print(force=True)

    def update(self, counts: JobCounts) -> None:
        """Show new counts."""
        self.counts = counts
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=counts.finished, states=self._states())
        elif not self.live:
            self._print(force=False)

    def stop(self) -> None:
        """Show the last counts and end the display."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif not self.live:
            self._print(force=self.counts != self._printed)

    def _states(self) -> str:
        counts = self.counts
        return (
            f"[yellow]{counts.pending} pending[/] [cyan]{counts.running} running[/] "
            f"[green]{counts.done} done[/] [red]{counts.failed} failed[/]"
        )

    def _print(self, force: bool) -> None:
        now = time.monotonic()
        if not force and (self.counts == self._printed or now - self._printed_at < self.interval):
            return
        self._printed, self._printed_at = self.counts, now
        line = f"{time.strftime('%H:%M:%S')} offload: {self.counts}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _watcher(job: Job[Any]) -> StatusWatcher:
    return job._backend.watcher


def _failed(job: Job[Any]) -> bool:
    """Whether a finished job failed, i.e. whether ``result()`` would raise."""
    try:
        return job.exception(timeout=0) is not None
    except Exception:  # its result cannot even be read here
        return True


def as_completed(
    jobs: Iterable[J], timeout: float | None = None, *, progress: bool | JobProgress = False
) -> Iterator[J]:
    """Yield the jobs as they finish, in the order they finish (each one once).

    A job is finished when :meth:`Job.done` would say so: its results are there, or it ended
    without them. Raises ``TimeoutError`` when ``timeout`` seconds have passed and jobs are
    left (the jobs go on). ``progress=True`` shows a :class:`JobProgress` on stderr while the
    loop runs; pass a :class:`JobProgress` to choose its console.

    Every tick checks the result files of the jobs left (a few ``stat`` calls each) and lets
    each backend's status watcher (one per backend, shared by the whole process) ask about all
    its jobs in one query, when one is due. The ticks grow longer while nothing happens, as in
    :meth:`Job.wait`, so thousands of jobs cost no busy loop.
    """
    unique = list(dict.fromkeys(jobs))
    for job in unique:
        job.job_id  # noqa: B018 - a clear error for a job of an unfinished batch, right away
    return _as_completed(unique, timeout, progress)


def _as_completed(
    unique: list[J], timeout: float | None, progress: bool | JobProgress
) -> Iterator[J]:
    watchers = list({id(w): w for w in map(_watcher, unique)}.values())
    highest = min((w.backend.spec.poll_interval[1] for w in watchers), default=1.0)
    longest_tick = min(1.0, max(FIRST_TICK, highest))
    display = progress if isinstance(progress, JobProgress) else None
    if progress is True:
        display = JobProgress()
    deadline = None if timeout is None else time.monotonic() + timeout
    left = unique
    done = failed = 0
    tick = FIRST_TICK
    if display is not None:
        display.start(len(unique))
    try:
        while left:
            finished = [job for job in left if job.finished()]
            if finished:
                ended = {id(job) for job in finished}
                left = [job for job in left if id(job) not in ended]
            changed = any([watcher.refresh() for watcher in watchers])
            for job in finished:
                if display is not None:
                    if _failed(job):
                        failed += 1
                    else:
                        done += 1
                    display.update(_counts(left, done, failed))
                yield job
            if not left:
                break
            if changed and display is not None:
                display.update(_counts(left, done, failed))
            if changed or finished:
                tick = FIRST_TICK
                if changed:
                    continue
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = ", ".join(job.describe() for job in left[:5])
                    more = f" and {len(left) - 5} more" if len(left) > 5 else ""
                    raise TimeoutError(
                        f"{len(left)} of {len(unique)} jobs still unfinished after {timeout} s: "
                        f"{names}{more}"
                    )
                time.sleep(min(tick, remaining))
            else:
                time.sleep(tick)
            tick = min(longest_tick, tick * BACKOFF)
    finally:
        if display is not None:
            display.stop()


def _counts(left: Sequence[Job[Any]], done: int, failed: int) -> JobCounts:
    running = 0
    for job in left:
        state = _watcher(job).cached(job.job_id).state
        if state is JobState.RUNNING or state.is_terminal:
            running += 1
    return JobCounts(pending=len(left) - running, running=running, done=done, failed=failed)


def wait_all(
    jobs: Iterable[J], timeout: float | None = None, *, progress: bool | JobProgress = False
) -> list[J]:
    """Wait until every job has finished; return the jobs, in the order given.

    It does not raise when jobs fail: read each one's ``result()`` or ``exception()``. Raises
    ``TimeoutError`` after ``timeout`` seconds. ``progress`` is as for :func:`as_completed`.
    """
    unique = list(dict.fromkeys(jobs))
    for _ in as_completed(unique, timeout, progress=progress):
        pass
    return unique
