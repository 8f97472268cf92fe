"""Checkpointable: a base class for callables whose jobs can be stopped, saved and requeued.

When a job is about to be stopped (its time limit is near, or it is preempted), offload's job
runner looks for a ``checkpoint`` attribute on the submitted callable and, in every rank, calls
``callable.checkpoint(*args, **kwargs)`` with the job's original arguments. It returns the call to
run instead when the job starts again, as a :class:`~offload.core.DelayedSubmission`, or ``None``
to start again from the original submission.

Keep the progress in attributes of the callable: the default :meth:`Checkpointable.checkpoint`
resubmits the object itself, and the object is pickled again as it is at that moment.
"""

from __future__ import annotations

import abc
from typing import Any

from offload.core.submission import DelayedSubmission


class Checkpointable(abc.ABC):
    """A callable that a job runner can checkpoint and requeue; subclasses implement ``__call__``.

    The pattern::

        class Train(Checkpointable):
            def __init__(self):
                self.epoch = 0  # progress lives in attributes

            def __call__(self, epochs):
                while self.epoch < epochs:
                    ...  # one epoch of work
                    self.epoch += 1
                return "trained"

        job = executor.submit(Train(), 100)

    If the job is stopped at epoch 42, the runner calls ``checkpoint(100)``, which returns
    ``DelayedSubmission(self, 100)``: the requeued job unpickles the object with ``epoch == 42``
    and goes on from there. Override :meth:`checkpoint` to save more (write a model's weights to a
    file, say), then return ``super().checkpoint(*args, **kwargs)``, or return a
    ``DelayedSubmission`` with other arguments (``DelayedSubmission(self, epochs, resume=path)``).
    Return ``None`` to start again from the original submission.

    ``checkpoint`` runs in every rank of the job, possibly while ``__call__`` is still running (a
    signal handler interrupts it), so it should be quick and must not wait for ``__call__``.
    """

    @abc.abstractmethod
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The job's work; the arguments are those given to ``submit``."""

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission[Any] | None:
        """What to run when the job starts again: by default this very object, same arguments."""
        return DelayedSubmission(self, *args, **kwargs)
