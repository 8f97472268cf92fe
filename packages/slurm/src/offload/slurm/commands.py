"""Running Slurm's client commands (sbatch, sacct, squeue, scontrol, scancel) from Python.

Every call has a time limit and is logged at DEBUG level on ``offload.slurm.commands``. The
commands are found on ``PATH``; failures become :class:`SlurmCommandError` with Slurm's message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Sequence

from offload.core import OffloadError

logger = logging.getLogger("offload.slurm.commands")

DEFAULT_TIMEOUT = 60.0
"""Seconds a Slurm command may take; ``$OFFLOAD_SLURM_COMMAND_TIMEOUT`` overrides it."""

_TRANSIENT = (
    "temporarily unable",
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "slurm_persist_conn_open",
    "connection timed out",
    "resource temporarily unavailable",
)
"""Words in Slurm's messages that mean 'try again later', not 'this request is wrong'."""

_NOT_RECEIVED = (
    "temporarily unable to accept",
    "unable to contact slurm controller",
    "connection refused",
)
"""Of those, the ones that mean the controller never took the request."""


class SlurmCommandError(OffloadError):
    """A Slurm command failed, timed out or could not be started."""

    def __init__(self, args: Sequence[str], message: str, returncode: int | None = None) -> None:
        self.command = list(args)
        self.message = message.strip()
        self.returncode = returncode
        how = "timed out" if returncode is None else f"failed (exit {returncode})"
        super().__init__(f"{' '.join(self.command[:1])} {how}: {self.message or 'no message'}")

    @property
    def not_received(self) -> bool:
        """Whether the controller surely did not take the request (it could not be reached or
        said it was busy), so that sending it again cannot duplicate it."""
        text = self.message.lower()
        return any(word in text for word in _NOT_RECEIVED)

    @property
    def transient(self) -> bool:
        """Whether retrying later may work (the controller was busy or unreachable)."""
        text = self.message.lower()
        return self.returncode is None or any(word in text for word in _TRANSIENT)


def command_timeout() -> float:
    try:
        return float(os.environ.get("OFFLOAD_SLURM_COMMAND_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def execute(
    args: Sequence[str], *, timeout: float | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a Slurm command and return how it ended, whatever its exit code.

    Raises :class:`SlurmCommandError` only when it could not run: not on ``PATH``, not
    runnable, or no answer within the time limit.
    """
    limit = command_timeout() if timeout is None else timeout
    started = time.perf_counter()
    try:
        finished = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=limit,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
        )
    except FileNotFoundError:
        raise SlurmCommandError(
            args, f"{args[0]} is not on PATH: is this a Slurm login node?", 127
        ) from None
    except OSError as error:  # on PATH but not runnable: not executable, bad interpreter...
        raise SlurmCommandError(args, f"{args[0]} could not be started: {error}", 126) from None
    except subprocess.TimeoutExpired:
        raise SlurmCommandError(args, f"no answer within {limit:g} s") from None
    logger.debug(
        "%s: exit %d in %.3f s",
        " ".join(args[:3]),
        finished.returncode,
        time.perf_counter() - started,
    )
    return finished


def run(args: Sequence[str], *, timeout: float | None = None) -> str:
    """Run a Slurm command; return its stdout, or raise :class:`SlurmCommandError`."""
    finished = execute(args, timeout=timeout)
    if finished.returncode != 0:
        raise SlurmCommandError(args, finished.stderr or finished.stdout, finished.returncode)
    return finished.stdout


def run_with_retries(
    args: Sequence[str],
    *,
    attempts: int = 4,
    first_delay: float = 1.0,
    idempotent: bool = True,
) -> str:
    """:func:`run`, tried again with growing delays while the failure is transient.

    A command that is not ``idempotent`` (``sbatch``) is tried again only when the controller
    surely did not take it (unreachable, or busy and saying so): after a timeout it may have
    queued the job before the answer was lost, and a second call would queue it twice.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return run(args)
        except SlurmCommandError as error:
            retry = error.transient if idempotent else error.not_received
            if not retry or attempt == attempts:
                raise
            logger.warning(
                "%s failed (%s); attempt %d of %d in %.0f s",
                args[0],
                error.message,
                attempt + 1,
                attempts,
                delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
