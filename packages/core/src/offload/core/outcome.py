"""What a job's rank leaves behind when it ends: a value, or an exception with its traceback."""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import serialization
from .errors import RemoteError, RemoteTraceback, SerializationError, UnsafeFileError

# Outcomes of jobs run inside this very process (the in-process debug backend): the exception is
# the original object, with its live traceback, for post-mortem debugging.
_IN_PROCESS: dict[Path, Outcome] = {}


@dataclass
class Outcome:
    """The end of one rank: ``value`` when ``success``, otherwise the exception's description.

    ``exception`` holds the pickled exception (unpickled lazily, as its type may not be
    importable in the caller), ``type_name``, ``message`` and ``traceback_text`` describe it
    whatever happens.
    """

    success: bool
    value: Any = None
    type_name: str = ""
    message: str = ""
    traceback_text: str = ""
    exception: bytes = b""
    live_exception: BaseException | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_exception(cls, error: BaseException) -> Outcome:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        try:
            payload = serialization.dumps(error)
            pickle.loads(payload)  # some exceptions pickle but cannot be rebuilt
        except Exception:
            payload = b""
        kind = type(error)
        return cls(
            success=False,
            type_name=f"{kind.__module__}.{kind.__qualname__}",
            message=str(error),
            traceback_text=text,
            exception=payload,
            live_exception=error,
        )

    def rebuild_exception(self) -> BaseException:
        """The remote exception, of its original type when possible, with the remote traceback."""
        if self.live_exception is not None:
            return self.live_exception
        error: BaseException | None = None
        if self.exception:
            try:
                error = pickle.loads(self.exception)
            except Exception:  # its type cannot be rebuilt here: describe it instead
                error = None
        if not isinstance(error, BaseException):
            error = RemoteError(self.type_name, self.message, self.traceback_text)
        error.__cause__ = RemoteTraceback(self.traceback_text)
        return error

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["live_exception"] = None
        return state


def write(outcome: Outcome, path: Path) -> Outcome:
    """Write ``outcome`` atomically and return what was written.

    A return value that cannot be pickled turns into an error outcome that says so.
    """
    try:
        serialization.dump(outcome, path, plain_first=True)
        return outcome
    except Exception as error:
        if not outcome.success:
            raise
        value = serialization.describe(outcome.value)
        failure = SerializationError(f"the job's return value {value} cannot be pickled: {error}")
        replacement = Outcome.from_exception(failure)
        serialization.dump(replacement, path)
        return replacement


def remember_in_process(path: Path, outcome: Outcome) -> None:
    """Keep ``outcome`` in memory for a caller in this process (the original exception object)."""
    _IN_PROCESS[path] = outcome


def read(path: Path) -> Outcome:
    """The outcome stored at ``path``: from memory if it ran in this process, else from the file."""
    outcome = _IN_PROCESS.get(path)
    if outcome is not None:
        return outcome
    try:
        loaded = serialization.load(path)
    except (FileNotFoundError, UnsafeFileError):
        raise
    except Exception as error:
        raise SerializationError(
            f"cannot unpickle the result in {path}: {error}. The job's value needs a module or "
            "class that is not importable here (install the same packages as on the node)."
        ) from error
    if not isinstance(loaded, Outcome):
        raise SerializationError(f"{path} does not hold an offload result")
    return loaded
