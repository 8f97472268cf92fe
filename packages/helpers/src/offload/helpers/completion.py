"""as_completed and wait_all: jobs in the order they finish, with an optional progress display."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from offload.core.job import Job
from offload.core.states import JobState
from offload.core.watcher import iter_finished

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

    Waiting is :func:`offload.core.watcher.iter_finished`, as for :meth:`Job.wait`: result files
    first, and one status query per backend when one is due, so thousands of jobs cost no busy
    loop.
    """
    unique = list(dict.fromkeys(jobs))
    for job in unique:
        job.job_id  # noqa: B018 - a clear error for a job of an unfinished batch, right away
    return _as_completed(unique, timeout, progress)


def _as_completed(
    unique: list[J], timeout: float | None, progress: bool | JobProgress
) -> Iterator[J]:
    watchers = list({id(w): w for w in map(_watcher, unique)}.values())
    display = JobProgress() if progress is True else progress or None
    done = failed = 0
    left = {id(job): job for job in unique}
    if display is not None:
        display.start(len(unique))
    try:
        for finished in iter_finished(unique, watchers, timeout):
            for job in finished:
                del left[id(job)]
                if display is not None:
                    if _failed(job):
                        failed += 1
                    else:
                        done += 1
            if display is not None:
                display.update(_counts(list(left.values()), done, failed))
            yield from finished
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
