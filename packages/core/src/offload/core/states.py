"""Normalized job states, shared by every backend."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class JobState(str, enum.Enum):
    """The state of a job, normalized across backends.

    It is a ``str`` enum, so ``job.state == "COMPLETED"`` works. The backend's own word for the
    state is kept beside it in :attr:`JobStatus.native`.
    """

    PENDING = "PENDING"
    """Accepted, not started yet (queued, held, waiting for resources)."""
    RUNNING = "RUNNING"
    """Started and not finished."""
    REQUEUED = "REQUEUED"
    """Put back into the queue (after a preemption, a checkpoint, a node failure): runs again."""
    PREEMPTED = "PREEMPTED"
    """Stopped for a higher-priority job. Not terminal: a preempted job may be requeued."""
    COMPLETED = "COMPLETED"
    """Finished; the job's process exited normally."""
    FAILED = "FAILED"
    """Finished with an error: a non-zero exit, a signal, or a launch failure."""
    CANCELLED = "CANCELLED"
    """Cancelled by a user or an administrator."""
    TIMEOUT = "TIMEOUT"
    """Killed at its time limit."""
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    """Killed for using more memory than it asked for."""
    NODE_FAIL = "NODE_FAIL"
    """Lost with the node it ran on."""
    UNKNOWN = "UNKNOWN"
    """The backend cannot say (yet): e.g. the job is too new or too old for its records."""

    @property
    def is_terminal(self) -> bool:
        """Whether the job will not change state any more (``PREEMPTED`` is not terminal)."""
        return self in _TERMINAL

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.OUT_OF_MEMORY,
        JobState.NODE_FAIL,
    }
)


@dataclass(frozen=True)
class JobStatus:
    """What a backend says about one job.

    ``state`` is normalized; ``native`` is the backend's own word (e.g. a scheduler's state name);
    ``reason`` is a human explanation when the backend has one (an exit code, a signal, a
    scheduler's reason field).
    """

    state: JobState
    native: str = ""
    reason: str = ""

    def __str__(self) -> str:
        text = self.state.value
        if self.native and self.native != self.state.value:
            text += f" ({self.native})"
        if self.reason:
            text += f": {self.reason}"
        return text
