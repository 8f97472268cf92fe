"""Job states from Slurm: ``sacct`` when accounting is on, ``squeue`` when it is not.

One call answers for many jobs: array elements are asked for through their array's id, and ids
are passed in chunks of :data:`CHUNK`. A job that ``sacct`` does not list yet (its records reach
the database a moment after ``sbatch`` returns) is asked of ``squeue`` in the same poll.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence

from offload.core import JobRef, JobState, JobStatus

from . import commands
from .commands import SlurmCommandError
from .states import normalize

logger = logging.getLogger("offload.slurm.status")

CHUNK = 1000
"""Job ids per sacct or squeue call."""

_BRACKETS = re.compile(r"^(\d+)_\[([^\]]*)\]$")
_ACCOUNTING_OFF = "accounting storage is disabled"


def array_id(job_id: str) -> str:
    """``"123_4"`` → ``"123"``; a plain id is its own."""
    return job_id.split("_", 1)[0]


def expand_ids(field: str) -> list[str]:
    """The element ids of one sacct/squeue JobID field: ``"7_[2-4%2]"`` → ``7_2, 7_3, 7_4``."""
    match = _BRACKETS.match(field)
    if not match:
        return [field]
    base, ranges = match.group(1), match.group(2).split("%", 1)[0]
    ids: list[str] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            ids.extend(f"{base}_{n}" for n in range(int(first), int(last or first) + 1))
    return ids


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _reason(state: JobState, exit_code: str, reason: str) -> str:
    if state is JobState.FAILED and exit_code and exit_code != "0:0":
        code, _, signal = exit_code.partition(":")
        return f"killed by signal {signal}" if signal not in ("", "0") else f"exit code {code}"
    return "" if reason in ("", "None") else reason


def parse_sacct(output: str) -> dict[str, JobStatus]:
    """Parse ``sacct -X -n -P --format=JobID,State,ExitCode,Reason`` lines."""
    statuses: dict[str, JobStatus] = {}
    for line in output.splitlines():
        fields = line.split("|")
        if len(fields) < 4 or not fields[0]:
            continue
        job_field, native, exit_code, reason = fields[:4]
        native = native.strip()
        state = normalize(native)
        status = JobStatus(state, native, _reason(state, exit_code, reason))
        for job_id in expand_ids(job_field.strip()):
            statuses[job_id] = status
    return statuses


def parse_squeue(output: str) -> dict[str, JobStatus]:
    """Parse ``squeue --array --noheader --format=%i|%T|%r`` lines."""
    statuses: dict[str, JobStatus] = {}
    for line in output.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        native = fields[1].strip()
        state = normalize(native)
        for job_id in expand_ids(fields[0].strip()):
            statuses[job_id] = JobStatus(state, native, _reason(state, "", fields[2].strip()))
    return statuses


class StatusReader:
    """Answers the status hook; remembers whether this cluster has accounting."""

    def __init__(self) -> None:
        self._accounting: bool | None = None  # None: not known yet, sacct is tried
        self._lock = threading.Lock()
        self.calls = 0
        """Scheduler calls made (sacct and squeue), for tests and benchmarks."""

    @property
    def uses_sacct(self) -> bool:
        return self._accounting is not False

    def statuses(self, refs: Sequence[JobRef]) -> dict[str, JobStatus]:
        """The status of each job in ``refs`` that Slurm could tell; never raises for a
        scheduler failure (the jobs are left out, and asked about at the next poll)."""
        wanted = [ref.job_id for ref in refs]
        answer: dict[str, JobStatus] = {}
        if self.uses_sacct:
            answer = self._from_sacct(wanted)
        missing = [job_id for job_id in wanted if job_id not in answer]
        preempted = [j for j in wanted if answer.get(j, _NONE).state is JobState.PREEMPTED]
        if missing or preempted:
            queued = self._from_squeue(refs)
            for job_id in missing:
                if job_id in queued:
                    answer[job_id] = queued[job_id]
            for job_id in preempted:
                answer[job_id] = _after_preemption(queued.get(job_id), queued is _FAILED)
        return {job_id: answer[job_id] for job_id in wanted if job_id in answer}

    def _from_sacct(self, wanted: Sequence[str]) -> dict[str, JobStatus]:
        ids = sorted({array_id(job_id) for job_id in wanted})
        found: dict[str, JobStatus] = {}
        for chunk in _chunks(ids):
            args = ["sacct", "-X", "-n", "-P", "--format=JobID,State,ExitCode,Reason"]
            try:
                self.calls += 1
                output = commands.run([*args, "-j", ",".join(chunk)])
            except SlurmCommandError as error:
                if _ACCOUNTING_OFF in error.message.lower():
                    with self._lock:
                        if self._accounting is not False:
                            logger.info("Slurm accounting is disabled: job states come from squeue")
                        self._accounting = False
                else:
                    logger.warning("sacct failed, asking squeue instead: %s", error)
                return found
            with self._lock:
                self._accounting = True
            found.update(parse_sacct(output))
        return found

    def _from_squeue(self, refs: Sequence[JobRef]) -> dict[str, JobStatus]:
        """squeue's answer for ``refs``: jobs it no longer lists are decided by their files.

        Returns the shared :data:`_FAILED` mapping when squeue could not be asked at all.
        """
        args = ["squeue", "--array", "--noheader", "--states=all", "--format=%i|%T|%r"]
        try:
            self.calls += 1
            listed = parse_squeue(commands.run([*args, f"--user={os.getuid()}"]))
        except SlurmCommandError as error:
            logger.warning("squeue failed, will ask again: %s", error)
            return _FAILED
        for ref in refs:
            if ref.job_id not in listed and self._accounting is False:
                listed[ref.job_id] = _gone(ref)
        return listed


_NONE = JobStatus(JobState.UNKNOWN)
_FAILED: dict[str, JobStatus] = {}


def _gone(ref: JobRef) -> JobStatus:
    """A job squeue no longer lists (it ended more than MinJobAge ago), judged by its files."""
    has_results = ref.paths.result(0).exists()
    if has_results:
        return JobStatus(JobState.COMPLETED, "ENDED", "no longer listed by squeue")
    return JobStatus(
        JobState.FAILED, "ENDED", "no longer listed by squeue, and no result was written"
    )


def _after_preemption(queued: JobStatus | None, squeue_failed: bool) -> JobStatus:
    """A job sacct calls PREEMPTED: requeued if squeue still lists it, else over."""
    if queued is None:
        if squeue_failed:
            return JobStatus(JobState.PREEMPTED, "PREEMPTED")
        return JobStatus(JobState.CANCELLED, "PREEMPTED", "preempted and not requeued")
    if queued.state is JobState.PENDING:
        return JobStatus(JobState.REQUEUED, queued.native, queued.reason or "requeued")
    return queued
