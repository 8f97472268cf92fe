"""Job states from Slurm: ``sacct`` when accounting is on, ``squeue`` when it is not.

One call answers for many jobs: array elements are asked for through their array's id, and ids
are passed in chunks of :data:`CHUNK`. A job that ``sacct`` does not list (its records reach the
database a moment after ``sbatch`` returns) is asked of ``squeue`` once it has been missing for
:data:`SACCT_LAG` seconds, so that a poll is one call.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence

from offload.core import JobRef, JobState, JobStatus
from offload.core.checkpointing import RESTART_MARKER

from . import commands
from .commands import SlurmCommandError
from .states import normalize

logger = logging.getLogger("offload.slurm.status")

RELEASE_AFTER = 5.0
"""Seconds after a checkpoint's requeue before its job may be told to start at once: a node
refuses to start a job again within the second its previous run was killed."""

CHUNK = 1000
"""Job ids per sacct or squeue call."""

SACCT_LAG = 10.0
"""Seconds a job may be missing from sacct's answer (its records are on their way to the
database) before squeue is asked about it."""

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
        self._seen_started: set[str] = set()  # ids once seen past PENDING
        self._missing_since: dict[str, float] = {}  # ids sacct did not list, since when

    @property
    def uses_sacct(self) -> bool:
        return self._accounting is not False

    def statuses(self, refs: Sequence[JobRef]) -> dict[str, JobStatus]:
        """The status of each job in ``refs`` that Slurm could tell; never raises for a
        scheduler failure (the jobs are left out, and asked about at the next poll).

        sacct answers first (when the cluster has accounting). squeue is asked only when sacct
        failed, left jobs out for :data:`SACCT_LAG` seconds, or called some PREEMPTED (squeue
        tells whether they were requeued). Jobs left out for less are left out of the answer.
        """
        rows, sacct_answered = self._from_sacct(refs) if self.uses_sacct else ({}, True)
        answer = {ref.job_id: rows[ref.job_id] for ref in refs if ref.job_id in rows}
        missing = [ref for ref in refs if ref.job_id not in answer]
        preempted = [job_id for job_id, s in answer.items() if s.state is JobState.PREEMPTED]
        if self._overdue(answer, missing) or not sacct_answered or preempted:
            queued = self._from_squeue()
            for job_id in preempted:
                answer[job_id] = _after_preemption(job_id, queued)
            if queued is not None:
                known = {**rows, **queued}
                arrays = {array_id(job_id) for job_id in known if "_" in job_id}
                for ref in missing:
                    if ref.job_id in queued:
                        answer[ref.job_id] = queued[ref.job_id]
                    elif sacct_answered:  # after a sacct failure, wait for it rather than guess
                        answer[ref.job_id] = self._vanished(ref, known, arrays)
        self._seen_started.update(
            job_id for job_id, status in answer.items() if status.state not in _NOT_STARTED
        )
        self._release_checkpointed(refs, answer)
        return answer

    def _overdue(self, answer: dict[str, JobStatus], missing: Sequence[JobRef]) -> bool:
        """Whether a job has been missing from sacct's answers for too long (always, without
        accounting: squeue is then the only source)."""
        if not self.uses_sacct:
            return bool(missing)
        now = time.monotonic()
        with self._lock:
            for job_id in answer:
                self._missing_since.pop(job_id, None)
            since = [self._missing_since.setdefault(ref.job_id, now) for ref in missing]
        return any(now - first >= SACCT_LAG for first in since)

    def _release_checkpointed(self, refs: Sequence[JobRef], answer: dict[str, JobStatus]) -> None:
        """Let requeued jobs that saved a checkpoint start again at once.

        Slurm holds a requeued batch job for about two minutes (its begin time moves ahead);
        the job cannot lift that itself, as the requeue stops it. A job that checkpointed leaves
        a marker in its folder: its begin time is reset here, once per requeue.
        """
        for ref in refs:
            status = answer.get(ref.job_id)
            if status is None or status.state not in (JobState.PENDING, JobState.REQUEUED):
                continue
            marker = ref.paths.job_dir / RESTART_MARKER
            try:
                age = time.time() - marker.stat().st_mtime
            except FileNotFoundError:
                continue
            if age < RELEASE_AFTER:
                continue  # the nodes refuse a restart until the old run's credential expired
            marker.unlink(missing_ok=True)
            try:
                commands.run(["scontrol", "update", f"JobId={ref.job_id}", "StartTime=now"])
                logger.info("job %s checkpointed and was requeued: may start at once", ref.job_id)
            except SlurmCommandError as error:
                logger.warning("could not let job %s start at once: %s", ref.job_id, error)

    def _vanished(self, ref: JobRef, known: dict[str, JobStatus], arrays: set[str]) -> JobStatus:
        """A job that neither sacct nor squeue lists, judged by its files and its array.

        After ``sbatch`` returns, a live job is always listed by squeue. It stops being listed
        ``MinJobAge`` after it ended, and at once when it was an array element cancelled before
        it started (sacct does not list those either).
        """
        if ref.paths.result(0).exists():
            return JobStatus(JobState.COMPLETED, "ENDED", "no longer listed by Slurm")
        base = array_id(ref.job_id)
        if base != ref.job_id and ref.job_id not in self._seen_started:
            whole = known.get(base)
            if whole is not None and whole.state.is_terminal:
                return whole  # the whole array ended (cancelled) before this element started
            if base in arrays:  # its array is still known: this element was dropped from it
                return JobStatus(
                    JobState.CANCELLED, "REMOVED", "removed from its array before it started"
                )
        return JobStatus(
            JobState.FAILED, "ENDED", "no longer listed by Slurm, and no result was written"
        )

    def _from_sacct(self, refs: Sequence[JobRef]) -> tuple[dict[str, JobStatus], bool]:
        """sacct's rows for the arrays and jobs of ``refs``, and whether every call worked."""
        ids = sorted({array_id(ref.job_id) for ref in refs})
        found: dict[str, JobStatus] = {}
        for chunk in _chunks(ids):
            args = ["sacct", "-X", "-n", "-P", "--format=JobID,State,ExitCode,Reason"]
            try:
                output = commands.run([*args, "-j", ",".join(chunk)])
            except SlurmCommandError as error:
                if _ACCOUNTING_OFF in error.message.lower():
                    with self._lock:
                        if self._accounting is not False:
                            logger.info("Slurm accounting is disabled: job states come from squeue")
                        self._accounting = False
                    return {}, True
                logger.warning("sacct failed, asking squeue instead: %s", error)
                return found, False
            with self._lock:
                self._accounting = True
            found.update(parse_sacct(output))
        return found, True

    def _from_squeue(self) -> dict[str, JobStatus] | None:
        """What squeue lists of this user's jobs (those that ended within ``MinJobAge`` too),
        or ``None`` when it could not be asked."""
        args = ["squeue", "--array", "--noheader", "--states=all", "--format=%i|%T|%r"]
        try:
            return parse_squeue(commands.run([*args, f"--user={os.getuid()}"]))
        except SlurmCommandError as error:
            logger.warning("squeue failed, will ask again: %s", error)
            return None


_NOT_STARTED = frozenset({JobState.PENDING, JobState.UNKNOWN})


def _after_preemption(job_id: str, queued: dict[str, JobStatus] | None) -> JobStatus:
    """A job sacct calls PREEMPTED: requeued if squeue still lists it as waiting, else over."""
    if queued is None:
        return JobStatus(JobState.PREEMPTED, "PREEMPTED")
    now = queued.get(job_id)
    if now is None or now.state.is_terminal:
        return JobStatus(JobState.CANCELLED, "PREEMPTED", "preempted and not requeued")
    if now.state is JobState.PENDING:
        return JobStatus(JobState.REQUEUED, now.native, now.reason or "requeued")
    return now
