"""Which signals a rank handles while its function runs (the job side of checkpointing)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from offload.core import DelayedSubmission, JobEnvironment, JobPaths
from offload.core.checkpointing import SIGTERM_WAITS, CheckpointGuard, Settings


class Resumable:
    def __call__(self) -> None:
        pass

    def checkpoint(self) -> DelayedSubmission[None]:
        return DelayedSubmission(self)


def guard_for(function: object, tmp_path: Path) -> CheckpointGuard:
    return CheckpointGuard(
        JobPaths(tmp_path),
        JobEnvironment(backend="test", job_id="1"),
        DelayedSubmission(function),
        Settings(),
    )


@pytest.mark.parametrize(
    ("function", "waits", "handled"),
    [
        (time.sleep, None, False),  # SIGTERM ends the rank at once: nothing to save or wait for
        (time.sleep, "1", True),  # the scheduler requeues only a job that outlives its SIGTERM
        (Resumable(), None, True),  # it saves its state first
    ],
    ids=["plain", "plain, outlives SIGTERM", "checkpointable"],
)
def test_sigterm_is_handled_only_when_the_rank_has_something_to_do_on_it(
    tmp_path, monkeypatch, function, waits, handled
):
    if waits is None:
        monkeypatch.delenv(SIGTERM_WAITS, raising=False)
    else:
        monkeypatch.setenv(SIGTERM_WAITS, waits)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR2)
    guard = guard_for(function, tmp_path)
    with guard:
        assert (signal.getsignal(signal.SIGTERM) == guard._on_signal) is handled
        assert signal.getsignal(signal.SIGUSR2) == guard._on_signal, "the checkpoint signal, always"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR2)) == before
