"""Slurm's job states (as sacct, squeue and scontrol print them), normalized."""

from __future__ import annotations

from offload.core import JobState

_STATES = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUE_HOLD": JobState.REQUEUED,
    "REQUEUE_FED": JobState.REQUEUED,
    "REQUEUED": JobState.REQUEUED,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "PREEMPTED": JobState.PREEMPTED,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "REVOKED": JobState.CANCELLED,
    "CANCELLED": JobState.CANCELLED,
    "DEADLINE": JobState.TIMEOUT,
    "TIMEOUT": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "NODE_FAIL": JobState.NODE_FAIL,
}


def normalize(native: str) -> JobState:
    """The state for Slurm's word: ``"CANCELLED by 1000"`` → ``CANCELLED``, ``"OUT_OF_ME+"`` →
    ``OUT_OF_MEMORY`` (sacct truncates), anything unknown → ``UNKNOWN``."""
    word = native.strip().split(" ", 1)[0].upper()
    if word.endswith("+"):
        stem = word[:-1]
        matches = {state for name, state in _STATES.items() if name.startswith(stem)}
        return matches.pop() if len(matches) == 1 else JobState.UNKNOWN
    return _STATES.get(word, JobState.UNKNOWN)
