"""DelayedSubmission: a function call waiting to be run in a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class DelayedSubmission(Generic[R]):
    """A function with its arguments, to be called later (in a job).

    This is what is pickled into a job's folder. A checkpointing callable returns a new
    ``DelayedSubmission`` from its ``checkpoint`` method to say how to resume.
    """

    def __init__(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> None:
        if not callable(function):
            raise TypeError(f"{function!r} is not callable")
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def result(self) -> R:
        """Call the function with the stored arguments and return what it returns."""
        return self.function(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"DelayedSubmission({name}, {len(self.args)} args, {len(self.kwargs)} kwargs)"
