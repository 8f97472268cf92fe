"""CommandFunction: a shell command as a callable that can be submitted (and requeued) as a job."""

from __future__ import annotations

import codecs
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, TextIO

from offload.core.errors import OffloadError
from offload.core.submission import DelayedSubmission

from .checkpoint import Checkpointable

STDERR_TAIL_LINES = 20
"""Lines of the command's stderr quoted in a :class:`CommandFailedError`."""
_TAIL_CHARS = 64 * 1024
_OUTPUT_GRACE = 10.0
"""Seconds to wait, once the command has exited, for processes it left behind to close its
output; what they write later is lost."""


class CommandFailedError(OffloadError):
    """A command run by :class:`CommandFunction` exited with a non-zero code (or was killed).

    ``command`` is the command line, ``returncode`` its exit code (``-N`` when signal N killed
    it) and ``stderr_tail`` the last lines of its stderr. ``checkpointed`` says that a checkpoint
    stopped it.
    """

    def __init__(
        self,
        command: Sequence[str],
        returncode: int,
        stderr_tail: str = "",
        checkpointed: bool = False,
    ) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.checkpointed = checkpointed
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            how = f"was killed by {name} (exit code {returncode})"
        else:
            how = f"exited with code {returncode}"
        message = f"Command {shlex.join(self.command)} {how}"
        if checkpointed:
            message += ", stopped by a checkpoint of its job"
        if stderr_tail.strip():
            message += f". Last lines of its stderr:\n{stderr_tail}"
        else:
            message += " (its stderr was empty)."
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.command, self.returncode, self.stderr_tail, self.checkpointed))


class CommandFunction(Checkpointable):
    """A command line that runs when called, as a job's function or in this process.

    ``CommandFunction(["python", "train.py", "--lr", "0.1"])`` runs that command. Calling the
    object adds arguments to the command line: each positional argument as a string, then each
    keyword argument ``key=value`` as ``--key=value`` (the key is written as given, underscores
    included); ``key=True`` adds ``--key`` alone, and ``key=False`` or ``key=None`` adds nothing.
    So ``function("data.csv", epochs=3, fast=True)`` runs ``python train.py --lr 0.1 data.csv
    --epochs=3 --fast``.

    The call returns what the command printed on stdout, as a string. With ``verbose`` (the
    default) the command's stdout and stderr are also passed through, as they come, to this
    process's ``sys.stdout`` and ``sys.stderr``: in a job, its log files. A non-zero exit raises
    :class:`CommandFailedError`, which quotes the end of the command's stderr.

    ``cwd`` is the folder the command runs in (default: the current one); ``env`` holds
    variables added to the environment (``os.environ``) for the command.

    The command runs in a process group of its own. On Linux it also gets SIGTERM if the
    process that started it dies, so that cancelling a job stops its command. As a
    :class:`Checkpointable`, a job running it is requeued like one running a function: its
    :meth:`checkpoint` sends SIGTERM to the command's process group, SIGKILL to what is left of
    it ``stop_timeout`` seconds later at most, and resubmits the same command line, which then
    starts again from the beginning (resuming is the command's own business: give it a
    checkpoint file to look for).
    """

    def __init__(
        self,
        command: Sequence[str | os.PathLike[str]],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        verbose: bool = True,
        *,
        stop_timeout: float = 3.0,
    ) -> None:
        if isinstance(command, (str, bytes)):
            raise TypeError(
                "CommandFunction takes the command as a list of arguments, not one string: "
                f"use shlex.split({command!r}), or ['sh', '-c', {command!r}] for shell syntax"
            )
        self.command = [os.fspath(part) for part in command]
        if not self.command:
            raise ValueError("CommandFunction needs a command, not an empty list")
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.env = None if env is None else dict(env)
        self.verbose = verbose
        self.stop_timeout = stop_timeout
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stopped: set[int] = set()

    def __getstate__(self) -> dict[str, Any]:
        runtime = ("_lock", "_running", "_stopped")
        return {key: value for key, value in self.__dict__.items() if key not in runtime}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"CommandFunction({shlex.join(self.command)!r})"

    def command_line(self, *args: Any, **kwargs: Any) -> list[str]:
        """The command line a call with these arguments runs."""
        line = self.command + [str(arg) for arg in args]
        for key, value in kwargs.items():
            if value is True:
                line.append(f"--{key}")
            elif value is not False and value is not None:
                line.append(f"--{key}={value}")
        return line

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        """Run the command with these extra arguments; return its stdout."""
        line = self.command_line(*args, **kwargs)
        environment = None if self.env is None else {**os.environ, **self.env}
        process = subprocess.Popen(
            line,
            cwd=self.cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_parent_death_signal(os.getpid()),
        )
        assert process.stdout is not None and process.stderr is not None
        output: list[str] = []
        errors: list[str] = [""]

        def keep_tail(text: str) -> None:
            errors[0] = (errors[0] + text)[-_TAIL_CHARS:]

        readers = [
            _start_pump(process.stdout, sys.stdout if self.verbose else None, output.append),
            _start_pump(process.stderr, sys.stderr if self.verbose else None, keep_tail),
        ]
        with self._lock:
            self._running.add(process)
        try:
            returncode = process.wait()
        finally:
            if process.returncode is None:  # interrupted here: do not leave the command behind
                _stop_group(process, self.stop_timeout)
                try:
                    process.wait(1.0)
                except subprocess.TimeoutExpired:
                    pass
            with self._lock:
                self._running.discard(process)
                checkpointed = process.pid in self._stopped
                self._stopped.discard(process.pid)
        for reader in readers:
            reader.join(_OUTPUT_GRACE)
        if returncode != 0:
            tail = "\n".join(errors[0].splitlines()[-STDERR_TAIL_LINES:])
            raise CommandFailedError(line, returncode, tail, checkpointed)
        return "".join(output)

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission[Any] | None:
        """Stop the running command (SIGTERM, later SIGKILL), then resubmit the same call."""
        with self._lock:
            running = list(self._running)
            self._stopped.update(process.pid for process in running)
        for process in running:
            _stop_group(process, self.stop_timeout)
        return super().checkpoint(*args, **kwargs)


def _start_pump(
    stream: IO[bytes], sink: TextIO | None, keep: Callable[[str], None]
) -> threading.Thread:
    """A thread copying ``stream`` to ``sink`` (when given) and to ``keep``, as it comes."""

    def pump() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        read = getattr(stream, "read1", stream.read)
        out = sink
        with stream:
            while True:
                chunk = read(65536)
                text = decoder.decode(chunk, final=not chunk)
                if text:
                    keep(text)
                    if out is not None:
                        try:
                            out.write(text)
                            out.flush()
                        except (OSError, ValueError):  # a closed or broken sink: keep reading
                            out = None
                if not chunk:
                    return

    thread = threading.Thread(target=pump, name="offload-command-output", daemon=True)
    thread.start()
    return thread


def _stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM to the command's process group; SIGKILL to what is left once it has exited or
    ``timeout`` seconds later. Does not reap the process (its caller's ``wait`` does)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout
    while not _has_exited(process) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has ended, without reaping it (another thread may be waiting)."""
    if process.returncode is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # no waitid (macOS): poll, which reaps
        return process.poll() is not None
    try:
        found = waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return True
    return found is not None


_PR_SET_PDEATHSIG = 1


def _parent_death_signal(parent: int) -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that makes the child get SIGTERM when ``parent`` dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    number = int(signal.SIGTERM)

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, number)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
            os.kill(os.getpid(), number)

    return set_signal
