"""FunctionSequence: function calls run one after another in one job, resumable after a requeue."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from offload.core.submission import DelayedSubmission

from .checkpoint import Checkpointable

Step = DelayedSubmission[Any] | tuple[Any, ...]
"""A step: a ``DelayedSubmission``, or a tuple ``(function, args[, kwargs])``."""


def _as_submission(step: Step) -> DelayedSubmission[Any]:
    if isinstance(step, DelayedSubmission):
        return step
    if isinstance(step, tuple) and 1 <= len(step) <= 3:
        function = step[0]
        args: Sequence[Any] = step[1] if len(step) > 1 else ()
        kwargs: dict[str, Any] = step[2] if len(step) > 2 else {}
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise TypeError(f"the arguments of step {step!r} must be a tuple or a list")
        if not isinstance(kwargs, dict):
            raise TypeError(f"the keyword arguments of step {step!r} must be a dict")
        return DelayedSubmission(function, *args, **kwargs)
    raise TypeError(
        f"a step is a DelayedSubmission or a tuple (function, args[, kwargs]), not {step!r}"
    )


class FunctionSequence(Checkpointable):
    """Steps (function calls) run in order in one job; calling the sequence returns their results.

    ::

        sequence = FunctionSequence([(prepare, ("data.csv",)), (train, (), {"epochs": 3})])
        sequence.add(evaluate, "test.csv")
        job = executor.submit(sequence)
        prepared, trained, score = job.result()

    The sequence remembers which steps are done and what they returned (:attr:`results`). As a
    :class:`Checkpointable`, it resubmits itself when its job is checkpointed, so the requeued
    job starts at the first unfinished step: a step that was interrupted midway runs again from
    its start, unless its function has a ``checkpoint`` method (a :class:`Checkpointable`), in
    which case the step is replaced by what that method returns and so resumes from its own
    checkpoint.
    """

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self.steps: list[DelayedSubmission[Any]] = [_as_submission(step) for step in steps]
        self.results: list[Any] = []
        """What the finished steps returned, in order: step ``i`` is done when ``i < len``."""

    def add(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> FunctionSequence:
        """Append the step ``function(*args, **kwargs)``; returns the sequence."""
        self.steps.append(DelayedSubmission(function, *args, **kwargs))
        return self

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[DelayedSubmission[Any]]:
        return iter(self.steps)

    @property
    def done(self) -> int:
        """How many steps have finished."""
        return len(self.results)

    def __call__(self) -> list[Any]:
        """Run every step not done yet, in order; return the results of all steps."""
        while len(self.results) < len(self.steps):
            value = self.steps[len(self.results)].result()
            self.results.append(value)
        return list(self.results)

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission[Any] | None:
        """Checkpoint the running step if it can be, then resubmit the sequence itself."""
        index = len(self.results)
        if index < len(self.steps):
            step = self.steps[index]
            own = getattr(step.function, "checkpoint", None)
            if callable(own):
                replacement = own(*step.args, **step.kwargs)
                if replacement is not None:
                    self.steps[index] = replacement
        return super().checkpoint(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<FunctionSequence {self.done}/{len(self.steps)} steps done>"
