"""The job side of checkpointing: save state when the job is about to stop, then requeue it.

A job's callable may have a ``checkpoint(*args, **kwargs)`` method (see ``Checkpointable`` in
offload-helpers). It is called, in every rank, with the job's arguments when:

- the job nears its time limit: the backend sends the *checkpoint signal* (``SIGUSR2`` unless
  the ``checkpoint_signal`` parameter says otherwise) ``signal_delay_s`` seconds before it. Each
  rank saves the :class:`DelayedSubmission` its ``checkpoint`` returns as
  ``checkpoint.<rank>.pkl``; once every rank has, rank 0 asks the backend to requeue the job
  (:func:`~offload.core.hookspecs.offload_job_requeue`). At most ``max_num_timeout`` requeues
  (default 3) are spent this way; after that the job runs on into its time limit.
- the job is stopped with ``SIGTERM`` (a preemption, or a cancellation): each rank saves its
  checkpoint and waits for the scheduler, which requeues a preempted job (preemptions spend no
  budget).

When the job starts again, each rank runs its ``checkpoint.<rank>.pkl`` instead of the original
submission. A callable without ``checkpoint`` is not checkpointed: on the checkpoint signal it
runs on (and a time limit ends it), and ``SIGTERM`` stops it at once, or, where the backend says
that ``SIGTERM`` may be a preemption (:data:`SIGTERM_WAITS`), lets the scheduler stop it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from . import serialization
from .environment import JobEnvironment
from .layout import JobPaths
from .submission import DelayedSubmission

logger = logging.getLogger("offload.core.checkpointing")

DEFAULT_SIGNAL = "USR2"
DEFAULT_SIGNAL_DELAY = 90.0
DEFAULT_MAX_NUM_TIMEOUT = 3
RANKS_WAIT = 120.0
"""Seconds rank 0 waits for the other ranks' checkpoints before requeueing anyway."""
STOP_WAIT = 600.0
"""Seconds a checkpointed rank waits for the scheduler to stop it before exiting by itself."""
REQUEUES_FILE = "requeues.json"
RESTART_MARKER = "awaiting-restart"
"""Left in the job's folder by a job that checkpointed and waits to start again: a backend
whose scheduler delays requeued jobs may let it start at once (then it removes the file)."""
SIGTERM_WAITS = "OFFLOAD_SIGTERM_WAITS"
"""Set to ``1`` by a backend whose scheduler sends ``SIGTERM`` on preemption and requeues the job
only if it is still running when its grace time ends (Slurm): then no rank ends on ``SIGTERM``;
each waits for the scheduler's kill."""
CHECKPOINT_AT = "OFFLOAD_CHECKPOINT_AT"
"""Environment variable a backend may set in the job: the time (seconds since the epoch) at
which to checkpoint. A checkpoint signal that comes earlier (schedulers check time limits on a
coarse cycle) only sets a timer for that time."""
JOB_VARIABLES = (SIGTERM_WAITS, CHECKPOINT_AT)
"""The variables a backend sets in a job's own processes for this module. They describe that
job only: a backend must not pass them on to the jobs it submits (submitted from inside a job,
those would get that job's values); it sets them for each job, or leaves them unset."""


@dataclass(frozen=True)
class Settings:
    """How a job is checkpointed, from its group's metadata."""

    signal: signal.Signals = signal.SIGUSR2
    max_num_timeout: int = DEFAULT_MAX_NUM_TIMEOUT

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Settings:
        name = str(metadata.get("checkpoint_signal", DEFAULT_SIGNAL))
        return cls(
            signal=signal_named(name),
            max_num_timeout=int(metadata.get("max_num_timeout", DEFAULT_MAX_NUM_TIMEOUT)),
        )


def signal_named(name: str) -> signal.Signals:
    """``"USR2"``, ``"SIGUSR2"`` or ``"12"`` → ``signal.SIGUSR2``; ``ValueError`` otherwise."""
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    try:
        return signal.Signals[text if text.startswith("SIG") else "SIG" + text]
    except KeyError:
        raise ValueError(f"{name!r} is not a signal name (like 'USR2' or 'SIGUSR1')") from None


def signal_delay(parameters: Mapping[str, Any]) -> float:
    """Seconds before the time limit at which a backend sends the checkpoint signal:
    ``signal_delay_s`` (default 90), but at most half of ``timeout_min`` when that is set, so
    that a short job still gets work done between two checkpoints."""
    delay = float(parameters.get("signal_delay_s", DEFAULT_SIGNAL_DELAY))
    if parameters.get("timeout_min"):
        delay = min(delay, float(parameters["timeout_min"]) * 60 / 2)
    return delay


def checkpoint_signal(parameters: Mapping[str, Any]) -> signal.Signals:
    """The checkpoint signal the job parameters ask for (``checkpoint_signal``, default USR2)."""
    return signal_named(str(parameters.get("checkpoint_signal", DEFAULT_SIGNAL)))


def checkpoint_path(paths: JobPaths, rank: int) -> Path:
    return paths.job_dir / f"checkpoint.{rank}.pkl"


def _marker(paths: JobPaths, rank: int) -> Path:
    return paths.job_dir / f"checkpointed.{rank}"


def load_submission(paths: JobPaths, rank: int) -> tuple[Any, bool]:
    """The submission this rank runs: its checkpoint when there is one (``True``), else the
    original one."""
    saved = checkpoint_path(paths, rank)
    if saved.exists():
        return serialization.load(saved), True
    return serialization.load(paths.submission), False


def read_requeues(paths: JobPaths) -> dict[str, int]:
    """How often the job was requeued at its time limit (``"timeout"``), and, once it ran out
    of requeues, the ``max_num_timeout`` that stopped it (``"budget"``, else absent)."""
    try:
        counts = json.loads((paths.job_dir / REQUEUES_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {"timeout": 0}
    found = {"timeout": int(counts.get("timeout", 0))}
    if "budget" in counts:
        found["budget"] = int(counts["budget"])
    return found


def _write_requeues(paths: JobPaths, counts: dict[str, int]) -> None:
    with serialization.atomic_writer(paths.job_dir / REQUEUES_FILE) as stream:
        stream.write(json.dumps(counts).encode())


class CheckpointGuard:
    """Installed around a rank's call: turns the checkpoint signal and SIGTERM into a saved
    checkpoint (and, for the time limit, a requeue)."""

    def __init__(
        self,
        paths: JobPaths,
        environment: JobEnvironment,
        submission: DelayedSubmission[Any],
        settings: Settings,
    ) -> None:
        self.paths = paths
        self.environment = environment
        self.submission = submission
        self.settings = settings
        self._busy = threading.Lock()
        self._previous: dict[int, Any] = {}
        self._timer: threading.Timer | None = None

    @property
    def checkpointable(self) -> bool:
        return callable(getattr(self.submission.function, "checkpoint", None))

    def __enter__(self) -> CheckpointGuard:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals are only delivered to the main thread
        handled = [self.settings.signal]
        if self.checkpointable or os.environ.get(SIGTERM_WAITS) == "1":
            handled.append(signal.SIGTERM)
        # Otherwise SIGTERM keeps its default action, which ends the rank at once. A Python
        # handler would run only at the interpreter's next check: a signal that lands after the
        # last check before a long blocking call (a sleep, a read) would wait for that call.
        for number in handled:
            self._previous[number] = signal.signal(number, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    # -- the handler -----------------------------------------------------------------------

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        if not self._busy.acquire(blocking=False):
            return  # already checkpointing
        try:
            if number == signal.SIGTERM:
                self._stopped()
            else:
                self._time_limit_near()
        finally:
            self._busy.release()

    def _stopped(self) -> None:
        rank = self.environment.global_rank
        if not self.checkpointable:  # then the scheduler asked the ranks to outlive SIGTERM
            # Ending now would end the job: a preempted job must outlive its grace time
            # to be requeued (from scratch, as nothing was saved).
            logger.info(
                "rank %d got SIGTERM (preempted or cancelled) and is not checkpointable: "
                "waiting for the scheduler to stop it",
                rank,
            )
            if rank == 0:
                (self.paths.job_dir / RESTART_MARKER).touch()
            self._wait_to_be_stopped()
            return
        logger.info("rank %d got SIGTERM (preempted or cancelled): checkpointing", rank)
        self._save()
        if rank == 0:
            (self.paths.job_dir / RESTART_MARKER).touch()
        self._wait_to_be_stopped()

    def _time_limit_near(self) -> None:
        rank = self.environment.global_rank
        if self._too_early():
            return
        if not self.checkpointable:
            logger.warning(
                "rank %d: the time limit is near and %s is not checkpointable: "
                "it runs on until the limit",
                rank,
                self.submission,
            )
            return
        spent = read_requeues(self.paths)["timeout"]
        if spent >= self.settings.max_num_timeout:
            if rank == 0:
                _write_requeues(
                    self.paths, {"timeout": spent, "budget": self.settings.max_num_timeout}
                )
            logger.warning(
                "rank %d: the time limit is near, but the job was already requeued %d times "
                "for it (max_num_timeout=%d): it runs on until the limit",
                rank,
                spent,
                self.settings.max_num_timeout,
            )
            return
        logger.info("rank %d: the time limit is near: checkpointing", rank)
        self._save()
        _marker(self.paths, rank).touch()
        if rank == 0:
            self._requeue(spent)
        self._wait_to_be_stopped()

    def _too_early(self) -> bool:
        """Whether the signal came before the backend's checkpoint time; then a timer sends it
        again at that time."""
        try:
            due = float(os.environ.get(CHECKPOINT_AT, "0"))
        except ValueError:
            return False
        early = due - time.time()
        if early <= 1.0:
            return False
        if self._timer is None:
            logger.info(
                "rank %d: checkpoint signal %.0f s early: checkpointing at the time planned",
                self.environment.global_rank,
                early,
            )
            number = self.settings.signal
            self._timer = threading.Timer(early, os.kill, (os.getpid(), number))
            self._timer.daemon = True
            self._timer.start()
        return True

    # -- steps -----------------------------------------------------------------------------

    def _save(self) -> None:
        rank = self.environment.global_rank
        function: Any = self.submission.function  # checkpointable: has a checkpoint method
        resumed = function.checkpoint(*self.submission.args, **self.submission.kwargs)
        target = checkpoint_path(self.paths, rank)
        if resumed is None:
            target.unlink(missing_ok=True)  # start again from the original submission
            logger.info("rank %d: checkpoint returned None: it will start from scratch", rank)
            return
        if not isinstance(resumed, DelayedSubmission):
            raise TypeError(
                f"{function!r}.checkpoint returned {type(resumed).__name__}, "
                "not a DelayedSubmission or None"
            )
        serialization.dump(resumed, target)
        logger.info("rank %d: checkpoint saved to %s", rank, target)

    def _requeue(self, spent: int) -> None:
        others = [_marker(self.paths, rank) for rank in range(1, self.environment.num_tasks)]
        deadline = time.monotonic() + RANKS_WAIT
        while not all(marker.exists() for marker in others) and time.monotonic() < deadline:
            time.sleep(0.1)
        missing = [m.name for m in others if not m.exists()]
        if missing:
            logger.warning("requeueing without the checkpoints of %s", ", ".join(missing))
        for rank in range(self.environment.num_tasks):
            _marker(self.paths, rank).unlink(missing_ok=True)
        _write_requeues(self.paths, {"timeout": spent + 1})
        (self.paths.job_dir / RESTART_MARKER).touch()
        from .plugins import get_plugin_manager

        # The requeue stops this process: not before the backend has finished asking for it.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        done = get_plugin_manager().hook.offload_job_requeue(
            backend=self.environment.backend,
            environment=self.environment,
            job_dir=self.paths.job_dir,
        )
        if not done:
            logger.error("the %s backend cannot requeue jobs", self.environment.backend)
            return
        logger.info(
            "job %s requeued (time-limit requeue %d of %d)",
            self.environment.job_id,
            spent + 1,
            self.settings.max_num_timeout,
        )

    def _wait_to_be_stopped(self) -> None:
        """Sleep until the scheduler stops this process (it will: a requeue or a kill)."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next SIGTERM ends the process
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline:
            time.sleep(1.0)
        logger.error(
            "rank %d was not stopped after checkpointing: exiting", self.environment.global_rank
        )
        os._exit(75)
