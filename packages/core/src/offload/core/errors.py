"""Exceptions raised by offload. Every one derives from :class:`OffloadError`."""

from __future__ import annotations

from collections.abc import Sequence


class OffloadError(Exception):
    """Base class of every error offload raises on its own account."""


class ParameterError(OffloadError, ValueError):
    """A job parameter is unknown, has the wrong type, or has a value that cannot be used."""


class SerializationError(OffloadError, TypeError):
    """A function, argument or result cannot be pickled or unpickled."""


class UnsafeFileError(OffloadError, PermissionError):
    """A pickle file could have been written by someone else, so it is not loaded."""


class BackendNotFoundError(OffloadError, LookupError):
    """No installed backend has the requested name, or none is available here."""


class SubmissionError(OffloadError):
    """The backend (e.g. the scheduler's submit command) refused a submission."""


class JobError(OffloadError):
    """A job ended without a result: cancelled, killed, timed out, crashed or lost.

    ``state`` is the normalized state, ``native_state`` the backend's own word for it and
    ``log_tail`` the last lines of the job's logs, when there were any.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str = "",
        state: str = "",
        native_state: str = "",
        log_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state
        self.native_state = native_state
        self.log_tail = log_tail


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised inside a job.

    It is set as ``__cause__`` of the re-raised exception, so Python prints the remote
    traceback above the local one.
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return "\n\n" + self.traceback_text.rstrip("\n")


class RemoteError(OffloadError):
    """An exception raised inside a job whose own type could not be rebuilt here.

    ``type_name`` is the qualified name of the original exception type and ``traceback_text``
    the remote traceback.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.traceback_text = traceback_text


def closest_names(name: str, candidates: Sequence[str], limit: int = 3) -> list[str]:
    """The candidates that look most like ``name``, best first (maybe none)."""
    import difflib

    return difflib.get_close_matches(name, list(candidates), n=limit, cutoff=0.6)
