"""StatusReader against a fake scheduler: sacct, squeue, their failures and the fallbacks."""

from __future__ import annotations

import os
import time

import pytest

from offload.core import JobPaths, JobRef, JobState, JobStatus
from offload.slurm import commands, status
from offload.slurm.commands import SlurmCommandError
from offload.slurm.status import StatusReader

ACCOUNTING_OFF = "sacct: error: Slurm accounting storage is disabled"
SOCKET_TIMEOUT = "sacct: error: Socket timed out on send/recv operation"


@pytest.fixture(autouse=True)
def no_slurm_on_path(tmp_path, monkeypatch):
    """Whatever a test forgets to fake fails here instead of reaching a real Slurm."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))


class FakeScheduler:
    """Stands in for ``commands.run``: answers sacct and squeue, records every call.

    An answer is the command's output, an exception to raise, or a function of the arguments.
    """

    def __init__(self) -> None:
        self.answers: dict[str, object] = {"sacct": "", "squeue": ""}
        self.calls: list[list[str]] = []

    def __call__(self, args, *, timeout=None):
        args = list(args)
        assert args[0] in self.answers, f"unexpected command {args}"
        self.calls.append(args)
        answer = self.answers[args[0]]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(args)
        return answer

    def commands(self) -> list[str]:
        return [call[0] for call in self.calls]

    def sacct_ids(self) -> list[list[str]]:
        """The ``-j`` list of each sacct call."""
        return [call[call.index("-j") + 1].split(",") for call in self.calls if call[0] == "sacct"]


def failure(message: str, command: str = "sacct") -> SlurmCommandError:
    return SlurmCommandError([command], message, 1)


@pytest.fixture
def scheduler(monkeypatch):
    fake = FakeScheduler()
    monkeypatch.setattr(commands, "run", fake)
    return fake


@pytest.fixture
def refs(tmp_path):
    """``refs("1", "2_0")``: job refs whose folders exist under tmp_path."""

    def make(*job_ids: str) -> list[JobRef]:
        made = []
        for index, job_id in enumerate(job_ids):
            job_dir = tmp_path / "group" / str(index)
            job_dir.mkdir(parents=True, exist_ok=True)
            made.append(JobRef(job_id, JobPaths(job_dir)))
        return made

    return make


def test_sacct_answers_alone_when_it_knows_every_job(scheduler, refs):
    scheduler.answers["sacct"] = "11|RUNNING|0:0|None\n12|FAILED|1:0|NonZeroExitCode\n"
    reader = StatusReader()
    answer = reader.statuses(refs("11", "12"))
    assert answer == {
        "11": JobStatus(JobState.RUNNING, "RUNNING", ""),
        "12": JobStatus(JobState.FAILED, "FAILED", "exit code 1"),
    }
    assert scheduler.commands() == ["sacct"]
    assert scheduler.calls[0][:5] == [
        "sacct",
        "-X",
        "-n",
        "-P",
        "--format=JobID,State,ExitCode,Reason",
    ]
    assert reader.uses_sacct


def test_only_the_jobs_asked_for_are_answered(scheduler, refs):
    scheduler.answers["sacct"] = "20_0|COMPLETED|0:0|None\n20_[1-9]|PENDING|0:0|Priority\n"
    answer = StatusReader().statuses(refs("20_0", "20_3"))
    assert sorted(answer) == ["20_0", "20_3"]
    assert answer["20_3"].state is JobState.PENDING


def test_array_elements_are_asked_through_their_array_id(scheduler, refs):
    scheduler.answers["sacct"] = (
        "7_0|COMPLETED|0:0|None\n"
        "7_1|RUNNING|0:0|None\n"
        "7_[2-4%2]|PENDING|0:0|JobArrayTaskLimit\n"
        "9|TIMEOUT|0:15|TimeLimit\n"
    )
    wanted = refs("7_0", "7_1", "7_2", "7_3", "7_4", "9")
    answer = StatusReader().statuses(wanted)
    assert scheduler.sacct_ids() == [["7", "9"]]  # one id per array, each once
    assert [answer[ref.job_id].state for ref in wanted] == [
        JobState.COMPLETED,
        JobState.RUNNING,
        JobState.PENDING,
        JobState.PENDING,
        JobState.PENDING,
        JobState.TIMEOUT,
    ]


def test_ids_are_passed_in_chunks(scheduler, refs, monkeypatch):
    monkeypatch.setattr(status, "CHUNK", 2)

    def sacct(args):
        ids = args[args.index("-j") + 1].split(",")
        rows = [f"{job_id}|RUNNING|0:0|None" for job_id in ids if job_id != "6"]
        if "6" in ids:
            rows.append("6_[0-1]|PENDING|0:0|Priority")
        return "\n".join(rows)

    scheduler.answers["sacct"] = sacct
    wanted = refs("1", "2", "3", "4", "5", "6_0", "6_1")
    reader = StatusReader()
    answer = reader.statuses(wanted)
    chunks = scheduler.sacct_ids()
    assert len(chunks) == 3  # 6 distinct ids (1..5 and the array 6), 2 per call
    assert all(len(chunk) <= 2 for chunk in chunks)
    assert sorted(id_ for chunk in chunks for id_ in chunk) == ["1", "2", "3", "4", "5", "6"]
    assert scheduler.commands() == ["sacct"] * 3  # every job answered: squeue is not asked
    assert sorted(answer) == ["1", "2", "3", "4", "5", "6_0", "6_1"]
    assert answer["6_1"].state is JobState.PENDING


def test_a_chunk_of_exactly_chunk_ids_is_one_call(scheduler, refs, monkeypatch):
    monkeypatch.setattr(status, "CHUNK", 3)
    scheduler.answers["sacct"] = "1|RUNNING|0:0|None\n2|RUNNING|0:0|None\n3|RUNNING|0:0|None\n"
    StatusReader().statuses(refs("3", "1", "2"))
    assert scheduler.sacct_ids() == [["1", "2", "3"]]


def test_a_job_sacct_does_not_list_for_a_while_is_asked_of_squeue(scheduler, refs, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(status.time, "monotonic", lambda: now[0])
    scheduler.answers["sacct"] = "30|RUNNING|0:0|None\n"
    scheduler.answers["squeue"] = "31|PENDING|Priority\n"
    reader = StatusReader()
    wanted = refs("30", "31")
    running = JobStatus(JobState.RUNNING, "RUNNING", "")
    assert reader.statuses(wanted) == {"30": running}, "31's records may be on their way"
    now[0] += status.SACCT_LAG - 1
    assert reader.statuses(wanted) == {"30": running}
    assert scheduler.commands() == ["sacct", "sacct"], "one call per poll meanwhile"
    now[0] += 1
    assert reader.statuses(wanted) == {
        "30": running,
        "31": JobStatus(JobState.PENDING, "PENDING", "Priority"),
    }
    assert scheduler.commands() == ["sacct", "sacct", "sacct", "squeue"]
    squeue = scheduler.calls[-1]
    assert "--array" in squeue and "--noheader" in squeue and "--states=all" in squeue
    assert any(arg.startswith("--user=") for arg in squeue)


def test_accounting_disabled_switches_to_squeue_for_good(scheduler, refs):
    scheduler.answers["sacct"] = failure(ACCOUNTING_OFF)
    scheduler.answers["squeue"] = "40|RUNNING|None\n"
    reader = StatusReader()
    wanted = refs("40", "41")
    assert reader.statuses(wanted)["40"] == JobStatus(JobState.RUNNING, "RUNNING", "")
    assert scheduler.commands() == ["sacct", "squeue"]
    assert not reader.uses_sacct
    reader.statuses(wanted)
    reader.statuses(wanted)
    assert scheduler.commands() == ["sacct", "squeue", "squeue", "squeue"]


def test_squeue_only_judges_jobs_it_no_longer_lists_by_their_files(scheduler, refs):
    scheduler.answers["sacct"] = failure(ACCOUNTING_OFF)
    scheduler.answers["squeue"] = "50|RUNNING|None\n"
    wanted = refs("50", "51", "52")
    wanted[1].paths.result(0).write_bytes(b"result")
    answer = StatusReader().statuses(wanted)
    assert answer["50"] == JobStatus(JobState.RUNNING, "RUNNING", "")
    assert answer["51"].state is JobState.COMPLETED
    assert answer["51"].native == "ENDED"
    assert answer["52"].state is JobState.FAILED
    assert "no result was written" in answer["52"].reason


def test_squeue_only_looks_for_rank_zeros_result(scheduler, refs):
    scheduler.answers["sacct"] = failure(ACCOUNTING_OFF)
    (job,) = refs("60")
    job.paths.result(1).write_bytes(b"rank 1 only")
    assert StatusReader().statuses([job])["60"].state is JobState.FAILED


def test_transient_sacct_failure_falls_back_to_squeue_for_that_poll_only(scheduler, refs):
    scheduler.answers["sacct"] = failure(SOCKET_TIMEOUT)
    scheduler.answers["squeue"] = "70|RUNNING|None\n71|PENDING|Priority\n"
    reader = StatusReader()
    wanted = refs("70", "71")
    answer = reader.statuses(wanted)
    assert answer == {
        "70": JobStatus(JobState.RUNNING, "RUNNING", ""),
        "71": JobStatus(JobState.PENDING, "PENDING", "Priority"),
    }
    assert reader.uses_sacct  # a failure is no proof that accounting is off
    scheduler.answers["sacct"] = "70|COMPLETED|0:0|None\n71|COMPLETED|0:0|None\n"
    answer = reader.statuses(wanted)
    assert {job_id: s.state for job_id, s in answer.items()} == {
        "70": JobState.COMPLETED,
        "71": JobState.COMPLETED,
    }
    assert scheduler.commands() == ["sacct", "squeue", "sacct"]


def test_a_failing_chunk_keeps_the_answers_of_the_earlier_ones(scheduler, refs, monkeypatch):
    monkeypatch.setattr(status, "CHUNK", 1)

    def sacct(args):
        if args[-1] == "2":
            raise failure(SOCKET_TIMEOUT)
        return f"{args[-1]}|RUNNING|0:0|None\n"

    scheduler.answers["sacct"] = sacct
    scheduler.answers["squeue"] = "2|PENDING|Priority\n3|PENDING|Priority\n"
    answer = StatusReader().statuses(refs("1", "2", "3"))
    assert {job_id: s.state for job_id, s in answer.items()} == {
        "1": JobState.RUNNING,
        "2": JobState.PENDING,
        "3": JobState.PENDING,
    }
    assert scheduler.sacct_ids() == [["1"], ["2"]]  # no third call after the failure


def test_both_failing_gives_an_empty_answer_without_raising(scheduler, refs):
    scheduler.answers["sacct"] = failure(SOCKET_TIMEOUT)
    scheduler.answers["squeue"] = failure(
        "squeue: error: Unable to contact slurm controller", "squeue"
    )
    reader = StatusReader()
    assert reader.statuses(refs("80", "81")) == {}
    assert scheduler.commands() == ["sacct", "squeue"]
    assert reader.uses_sacct


def test_squeue_failing_with_accounting_off_calls_no_job_lost(scheduler, refs):
    scheduler.answers["sacct"] = failure(ACCOUNTING_OFF)
    scheduler.answers["squeue"] = SlurmCommandError(["squeue"], "no answer within 60 s")
    wanted = refs("85")
    assert StatusReader().statuses(wanted) == {}  # not FAILED: squeue could not be asked


def test_preempted_jobs_are_judged_by_squeue(scheduler, refs):
    scheduler.answers["sacct"] = (
        "90|PREEMPTED|0:0|None\n91|PREEMPTED|0:0|None\n92|PREEMPTED|0:0|None\n93|RUNNING|0:0|None\n"
    )
    scheduler.answers["squeue"] = "90|PENDING|BeginTime\n91|RUNNING|None\n93|RUNNING|None\n"
    answer = StatusReader().statuses(refs("90", "91", "92", "93"))
    assert answer["90"] == JobStatus(JobState.REQUEUED, "PENDING", "BeginTime")
    assert answer["91"] == JobStatus(JobState.RUNNING, "RUNNING", "")
    assert answer["92"] == JobStatus(JobState.CANCELLED, "PREEMPTED", "preempted and not requeued")
    assert answer["93"].state is JobState.RUNNING
    assert scheduler.commands() == ["sacct", "squeue"]


def test_requeued_without_a_reason_says_requeued(scheduler, refs):
    scheduler.answers["sacct"] = "95|PREEMPTED|0:0|None\n"
    scheduler.answers["squeue"] = "95|PENDING|None\n"
    assert StatusReader().statuses(refs("95"))["95"] == JobStatus(
        JobState.REQUEUED, "PENDING", "requeued"
    )


def test_preempted_stays_preempted_when_squeue_fails(scheduler, refs):
    scheduler.answers["sacct"] = "96|PREEMPTED|0:0|None\n"
    scheduler.answers["squeue"] = failure("squeue: error: Socket timed out", "squeue")
    answer = StatusReader().statuses(refs("96"))
    assert answer["96"] == JobStatus(JobState.PREEMPTED, "PREEMPTED")
    assert not answer["96"].state.is_terminal


def test_preempted_array_element(scheduler, refs):
    scheduler.answers["sacct"] = "97_0|PREEMPTED|0:0|None\n97_1|COMPLETED|0:0|None\n"
    scheduler.answers["squeue"] = "97_0|PENDING|BeginTime\n"
    answer = StatusReader().statuses(refs("97_0", "97_1"))
    assert answer["97_0"].state is JobState.REQUEUED
    assert answer["97_1"].state is JobState.COMPLETED
    assert scheduler.sacct_ids() == [["97"]]


def test_no_jobs_asks_nothing(scheduler):
    reader = StatusReader()
    assert reader.statuses([]) == {}
    assert scheduler.calls == []


def test_a_requeued_job_that_checkpointed_may_start_at_once(scheduler, refs):
    """Slurm holds requeued jobs for minutes; the marker a checkpointed job leaves lifts that,
    also for a job that ran and was requeued between two polls (never seen running)."""
    scheduler.answers["sacct"] = "31|RUNNING|0:0|None\n32|PENDING|0:0|None\n33|RUNNING|0:0|None\n"
    scheduler.answers["scontrol"] = ""
    waiting, unseen, running = refs("31", "32", "33")
    reader = StatusReader()
    reader.statuses([waiting, unseen, running])  # 31 and 33 run; 32's run falls between polls
    scheduler.answers["sacct"] = "31|PENDING|0:0|None\n32|PENDING|0:0|None\n33|RUNNING|0:0|None\n"
    marker = waiting.paths.job_dir / "awaiting-restart"
    marker.touch()
    reader.statuses([waiting])
    assert "scontrol" not in scheduler.commands(), "not within seconds of the requeue"
    old = time.time() - 10
    os.utime(marker, (old, old))
    for job in (unseen, running):  # running: not pending yet, left for later
        (job.paths.job_dir / "awaiting-restart").touch()
        os.utime(job.paths.job_dir / "awaiting-restart", (old, old))
    reader.statuses([waiting, unseen, running])
    updates = [call for call in scheduler.calls if call[0] == "scontrol"]
    assert updates == [
        ["scontrol", "update", "JobId=31", "StartTime=now"],
        ["scontrol", "update", "JobId=32", "StartTime=now"],
    ]
    assert not marker.exists()
    assert (running.paths.job_dir / "awaiting-restart").exists()
    reader.statuses([waiting, unseen])
    assert len([call for call in scheduler.calls if call[0] == "scontrol"]) == 2, "once each"
