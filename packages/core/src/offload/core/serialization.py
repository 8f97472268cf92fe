"""Pickling with cloudpickle: atomic writes, and loads that refuse files others could have written.

Unpickling runs code, so :func:`load` first checks that the file belongs to the current user and
is writable by nobody else. Writes go to a temporary file in the same folder that is then renamed
over the target, so a reader never sees half a file and concurrent writers never mix.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import cloudpickle

from .errors import SerializationError, UnsafeFileError

PROTOCOL = 5


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; on success rename it to ``path``, else remove it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def dump(obj: Any, path: Path) -> None:
    """Pickle ``obj`` to ``path`` atomically, private to the owner (mode 0600)."""
    with atomic_writer(path) as stream:
        cloudpickle.dump(obj, stream, protocol=PROTOCOL)


def dumps(obj: Any) -> bytes:
    data: bytes = cloudpickle.dumps(obj, protocol=PROTOCOL)
    return data


def check_private(path: Path) -> None:
    """Raise :class:`UnsafeFileError` unless ``path`` is owned by us and writable only by us."""
    _check_owner_only(path, os.stat(path))


def _check_owner_only(path: Path, info: os.stat_result) -> None:
    if info.st_uid != os.getuid():
        raise UnsafeFileError(
            f"{path} belongs to user id {info.st_uid}, not to you ({os.getuid()}): it is not "
            "loaded, because unpickling a file runs code that its writer chose. Use a job "
            "folder that only you can write to."
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeFileError(
            f"{path} is writable by others (mode {stat.filemode(info.st_mode)}): it is not "
            "loaded, because unpickling a file runs code that its writer chose. If you trust its "
            f"content, run 'chmod go-w {path}' and try again (for a submission.pkl refused "
            "inside a job, submit the job again)."
        )


def load(path: Path) -> Any:
    """Unpickle ``path`` after :func:`check_private`."""
    with open(path, "rb") as stream:
        # check the opened file itself, so it cannot be swapped between the check and the read
        _check_owner_only(path, os.fstat(stream.fileno()))
        return pickle.load(stream)


def describe(obj: Any, limit: int = 80) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_unpicklable(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Name the first part of a call that cannot be pickled ("" if each part pickles alone)."""
    parts: list[tuple[str, Any]] = [("function", function)]
    parts += [(f"positional argument {i}", value) for i, value in enumerate(args)]
    parts += [(f"keyword argument {key!r}", value) for key, value in kwargs.items()]
    for label, value in parts:
        try:
            dumps(value)
        except Exception as error:  # cloudpickle raises many types (TypeError, PicklingError...)
            return f"{label} {describe(value)} cannot be pickled: {error}"
    return ""


def unpicklable_error(
    function: Any, args: tuple[Any, ...], kwargs: dict[str, Any], error: BaseException
) -> SerializationError:
    culprit = (
        find_unpicklable(function, args, kwargs) or f"the submission cannot be pickled: {error}"
    )
    return SerializationError(
        f"Cannot submit {getattr(function, '__qualname__', describe(function))}: {culprit}. "
        "Jobs run in another process, so the function and its arguments must be picklable "
        "(pass a file path or the data instead of an open file, lock, connection or generator)."
    )
