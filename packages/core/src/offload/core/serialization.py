"""Pickling with cloudpickle: atomic writes, and loads that refuse files others could have written.

Unpickling runs code, so :func:`load` first checks that the file belongs to the current user and
is writable by nobody else. Writes go to a temporary file in the same folder that is then renamed
over the target, so a reader never sees half a file and concurrent writers never mix.

:func:`dump` writes pickle protocol 5 with large contiguous buffers (NumPy arrays, say) out of
band: written from their own memory, read straight into the memory they are rebuilt on. The file
holds, in order:

- a header: ``MAGIC`` (8 bytes), the format version, the number of buffers (both uint32) and
  the length of the pickle (uint64), all little-endian;
- the pickle;
- the length of each buffer (uint64 each; after the pickle, so that the pickle is streamed);
- the buffers' raw bytes, one after the other.

:func:`load` also reads plain pickles (files written before this format, or with :func:`dumps`):
they never start with ``MAGIC``, whose first byte is no pickle opcode.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import pickle
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import SerializationError, UnsafeFileError

PROTOCOL = 5
MAGIC = b"\x00OFFLOAD"
VERSION = 1
_HEADER = struct.Struct("<8sIIQ")
_LENGTH = struct.Struct("<Q")
# Buffers smaller than this stay inside the pickle; from _MAPPED on, they are read into anonymous
# memory maps: bytearray(n) first writes zeros over every page, which slows a 1 GiB load by a third.
OUT_OF_BAND_MIN = 64 * 1024
_MAPPED = 1024 * 1024


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


def dump(obj: Any, path: Path, *, plain_first: bool = False) -> None:
    """Pickle ``obj`` to ``path`` atomically, private to the owner (mode 0600).

    Buffers of :data:`OUT_OF_BAND_MIN` bytes or more are written after the pickle (see above).
    With ``plain_first``, the standard pickler is tried first, and cloudpickle only if it fails:
    a job that returns plain data then never imports cloudpickle, a real share of a short task.
    """
    buffers: list[pickle.PickleBuffer] = []
    with atomic_writer(path) as stream:
        stream.write(bytes(_HEADER.size))
        _pickle_into(stream, obj, buffers, plain_first)
        pickle_length = stream.tell() - _HEADER.size
        _write_buffers(stream, buffers)
        stream.seek(0)
        stream.write(_HEADER.pack(MAGIC, VERSION, len(buffers), pickle_length))


def _pickle_into(
    stream: IO[bytes], obj: Any, buffers: list[pickle.PickleBuffer], plain_first: bool
) -> None:
    """Pickle ``obj`` at the stream's position, out-of-band buffers into ``buffers``."""
    start = stream.tell()
    if plain_first:
        try:
            pickle.Pickler(stream, protocol=PROTOCOL, buffer_callback=_collector(buffers)).dump(obj)
            return
        except (pickle.PicklingError, AttributeError, TypeError):  # by value, then
            buffers.clear()
            stream.seek(start)
            stream.truncate()
    import cloudpickle

    cloudpickle.Pickler(stream, protocol=PROTOCOL, buffer_callback=_collector(buffers)).dump(obj)


def _collector(buffers: list[pickle.PickleBuffer]) -> Callable[[pickle.PickleBuffer], bool]:
    """A ``buffer_callback`` that takes large contiguous buffers out of band, into ``buffers``."""

    def keep_in_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            with buffer.raw() as view:
                if view.nbytes < OUT_OF_BAND_MIN:
                    return True
        except BufferError:  # not contiguous: in band, where pickle refuses it clearly
            return True
        buffers.append(buffer)
        return False

    return keep_in_band


def _write_buffers(stream: IO[bytes], buffers: list[pickle.PickleBuffer]) -> None:
    lengths = []
    for buffer in buffers:
        with buffer.raw() as view:
            lengths.append(view.nbytes)
    stream.write(struct.pack(f"<{len(lengths)}Q", *lengths))
    for buffer in buffers:
        with buffer.raw() as view:
            stream.write(view)


def dumps(obj: Any) -> bytes:
    """``obj`` as a plain pickle (every buffer in band), which :func:`load` also reads."""
    import cloudpickle

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
    """Unpickle ``path`` after :func:`check_private`: a file of :func:`dump` or a plain pickle."""
    with open(path, "rb") as stream:
        # check the opened file itself, so it cannot be swapped between the check and the read
        info = os.fstat(stream.fileno())
        _check_owner_only(path, info)
        head = stream.read(_HEADER.size)
        if not head.startswith(MAGIC[:1]):
            stream.seek(0)
            return pickle.load(stream)
        buffers = _read_buffers(path, stream, head, info.st_size)
        stream.seek(_HEADER.size)
        return pickle.load(stream, buffers=buffers)


def _read_buffers(path: Path, stream: io.BufferedReader, head: bytes, size: int) -> list[Any]:
    """The out-of-band buffers of the file whose header is ``head``, checked against ``size``."""
    if len(head) < _HEADER.size or not head.startswith(MAGIC):
        raise _truncated(path, size)
    _, version, count, pickle_length = _HEADER.unpack(head)
    if version != VERSION:
        raise SerializationError(
            f"{path} is in offload's pickle format version {version}, but this offload reads "
            f"only version {VERSION}: load it with the offload version that wrote it."
        )
    stream.seek(_HEADER.size + pickle_length)
    table = stream.read(count * _LENGTH.size)
    if len(table) < count * _LENGTH.size:
        raise _truncated(path, size)
    lengths = struct.unpack(f"<{count}Q", table)
    expected = _HEADER.size + pickle_length + len(table) + sum(lengths)
    if size != expected:
        raise _truncated(path, size, expected)
    return [_read_buffer(path, stream, length) for length in lengths]


def _read_buffer(path: Path, stream: io.BufferedReader, length: int) -> Any:
    """The next ``length`` bytes of ``stream``, in writable memory read into directly."""
    buffer: bytearray | mmap.mmap
    if length >= _MAPPED:
        buffer = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE)
    else:
        buffer = bytearray(length)
    with memoryview(buffer) as view:
        filled = 0
        while filled < length:
            count = stream.readinto(view[filled:])
            if not count:
                raise _truncated(path, stream.tell())
            filled += count
    return buffer


def _truncated(path: Path, size: int, expected: int | None = None) -> SerializationError:
    should = "" if expected is None else f" instead of {expected}"
    return SerializationError(
        f"{path} is truncated or damaged ({size} bytes{should}): it is not an offload pickle "
        "that was written completely."
    )


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
