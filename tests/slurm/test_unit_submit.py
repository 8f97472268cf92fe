"""Submitting and cancelling with fake ``sbatch``, ``scancel`` and ``scontrol`` on PATH.

``submit_jobs`` is the function itself, imported before any fixture could wrap the module's
attribute: the fake job ids of these tests never reach a clean-up that asks a real scancel.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from offload.core import JobPaths, JobRef, LaunchRequest, SubmissionError
from offload.slurm.commands import SlurmCommandError
from offload.slurm.submit import cancel, cancel_ids, parse_job_id
from offload.slurm.submit import submit as submit_jobs


def max_array_size(fake_bin: Any, size: int) -> None:
    fake_bin.add("scontrol", f"print('MaxArraySize = {size}')")


SBATCH_IDS = "print(f'{100 + call}', end='')"
"""sbatch answers 100, then 101, 102... (--parsable: the id alone)"""


def make_request(tmp_path: Path, num_jobs: int, **parameters) -> LaunchRequest:
    group_dir = tmp_path / "logs" / "20240101-000000-abcdef"
    jobs = [JobPaths(group_dir / str(index)) for index in range(num_jobs)]
    for job in jobs:
        job.job_dir.mkdir(parents=True)
    return LaunchRequest(group_dir, jobs, parameters, sys.executable)


# --- sbatch's answer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "job_id"),
    [("123", "123"), ("123\n", "123"), ("  123  \n", "123"), ("123;cluster", "123")],
)
def test_parse_job_id(output, job_id):
    assert parse_job_id(output) == job_id


@pytest.mark.parametrize(
    "output", ["", "\n", "Submitted batch job 123", "abc", "12a", ";cluster", "-1", "1.5"]
)
def test_parse_job_id_refuses_garbage(output):
    with pytest.raises(SubmissionError, match="instead of a job id"):
        parse_job_id(output)


# --- submit ----------------------------------------------------------------------------------


def test_single_job(fake_bin, tmp_path, sleeps):
    fake_bin.add("sbatch", "print('4242')")
    request = make_request(tmp_path, 1, timeout_min=1)
    assert submit_jobs(request) == ["4242"]
    script = request.group_dir / "slurm-batch.sh"
    assert fake_bin.calls("sbatch") == [["--parsable", str(script)]]
    assert "#SBATCH --time=1:00" in script.read_text()
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    assert fake_bin.calls("scontrol") == []  # a single job needs no array limit
    assert sorted(p.name for p in request.group_dir.iterdir() if p.is_file()) == [
        "slurm-batch.sh"
    ]  # no temporary file left behind
    assert sleeps == []


def test_id_with_a_cluster_name(fake_bin, tmp_path):
    fake_bin.add("sbatch", "print('77;west')")
    assert submit_jobs(make_request(tmp_path, 1)) == ["77"]


def test_array_within_the_limit_is_one_sbatch_call(fake_bin, tmp_path, sleeps):
    max_array_size(fake_bin, 1001)
    fake_bin.add("sbatch", SBATCH_IDS)
    request = make_request(tmp_path, 3, slurm_array_parallelism=2)
    assert submit_jobs(request) == ["100_0", "100_1", "100_2"]
    (call,) = fake_bin.calls("sbatch")
    assert call == ["--parsable", str(request.group_dir / "slurm-batch.sh")]
    assert "#SBATCH --array=0-2%2\n" in Path(call[1]).read_text()


def test_one_sbatch_call_per_chunk_and_ids_per_element(fake_bin, tmp_path, sleeps):
    max_array_size(fake_bin, 2)
    fake_bin.add("sbatch", SBATCH_IDS)
    request = make_request(tmp_path, 5)
    ids = submit_jobs(request)
    assert ids == ["100_0", "100_1", "101_0", "101_1", "102_0"]
    scripts = [call[-1] for call in fake_bin.calls("sbatch")]
    assert [Path(s).name for s in scripts] == [
        "slurm-batch.sh",
        "slurm-batch.2.sh",
        "slurm-batch.4.sh",
    ]
    texts = [Path(s).read_text() for s in scripts]
    assert [[x for x in t.splitlines() if x.startswith("#SBATCH --array")] for t in texts] == [
        ["#SBATCH --array=0-1"],
        ["#SBATCH --array=0-1"],
        ["#SBATCH --array=0-0"],
    ]
    assert [t.count("export OFFLOAD_SLURM_ARRAY_OFFSET=") for t in texts] == [1, 1, 1]
    assert "OFFLOAD_SLURM_ARRAY_OFFSET=4\n" in texts[2]
    assert sleeps == []  # no pause between submissions
    assert fake_bin.calls("scancel") == []


def test_a_refused_chunk_cancels_the_chunks_already_submitted(fake_bin, tmp_path, sleeps):
    max_array_size(fake_bin, 2)
    fake_bin.add(
        "sbatch",
        "if call == 1:\n"
        "    print('sbatch: error: Batch job submission failed: Job violates accounting/QOS"
        " policy (job submit limit, user\\'s size and/or time limits)', file=sys.stderr)\n"
        "    sys.exit(1)\n" + SBATCH_IDS,
    )
    fake_bin.add("scancel", "")
    request = make_request(tmp_path, 5)
    with pytest.raises(SubmissionError) as raised:
        submit_jobs(request)
    message = str(raised.value)
    assert "Job violates accounting/QOS policy" in message
    assert str(request.group_dir / "slurm-batch.2.sh") in message
    assert len(fake_bin.calls("sbatch")) == 2  # the third chunk is not tried
    assert fake_bin.calls("scancel") == [["100"]]
    assert sleeps == []  # a refusal is not retried


def test_a_refused_single_job_cancels_nothing(fake_bin, tmp_path, sleeps):
    fake_bin.add(
        "sbatch",
        "print('sbatch: error: invalid partition specified: nope', file=sys.stderr)\nsys.exit(1)",
    )
    fake_bin.add("scancel", "")
    with pytest.raises(SubmissionError, match=r"sbatch refused the job: .*invalid partition"):
        submit_jobs(make_request(tmp_path, 1, slurm_partition="nope"))
    assert fake_bin.calls("scancel") == []


def test_a_garbled_answer_for_a_later_chunk_cancels_the_earlier(fake_bin, tmp_path, sleeps):
    max_array_size(fake_bin, 1)
    fake_bin.add("sbatch", "print('300' if call == 0 else 'sbatch: what?')")
    fake_bin.add("scancel", "")
    with pytest.raises(SubmissionError, match="'sbatch: what\\?' instead of a job id"):
        submit_jobs(make_request(tmp_path, 3))
    assert fake_bin.calls("scancel") == [["300"]]


def test_a_transient_sbatch_failure_is_retried(fake_bin, tmp_path, sleeps):
    fake_bin.add(
        "sbatch",
        "if call == 0:\n"
        "    print('sbatch: error: Unable to contact slurm controller (connect failure)',"
        " file=sys.stderr)\n"
        "    sys.exit(1)\n"
        "print('55')",
    )
    assert submit_jobs(make_request(tmp_path, 1)) == ["55"]
    assert len(fake_bin.calls("sbatch")) == 2
    assert sleeps == [1.0]


def test_sbatch_missing(fake_bin, tmp_path, sleeps):
    with pytest.raises(SubmissionError, match="sbatch is not on PATH"):
        submit_jobs(make_request(tmp_path, 1))


def test_a_template_error_submits_nothing(fake_bin, tmp_path):
    fake_bin.add("sbatch", "print('1')")
    with pytest.raises(SubmissionError, match="not found"):
        submit_jobs(make_request(tmp_path, 1, slurm_template="missing.j2"))
    assert fake_bin.calls("sbatch") == []


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_passes_many_ids_per_call(fake_bin, sleeps):
    fake_bin.add("scancel", "")
    ids = [f"{n}_0" for n in range(2500)]
    cancel_ids(ids)
    calls = fake_bin.calls("scancel")
    assert [len(call) for call in calls] == [1000, 1000, 500]
    assert [job_id for call in calls for job_id in call] == ids


def test_cancel_job_refs(fake_bin, tmp_path):
    fake_bin.add("scancel", "")
    cancel([JobRef("7_1", JobPaths(tmp_path / "1")), JobRef("8", JobPaths(tmp_path / "2"))])
    assert fake_bin.calls("scancel") == [["7_1", "8"]]


@pytest.mark.parametrize(
    "message",
    [
        "scancel: error: Kill job error on job id 5: Job/step already completing or completed",
        "scancel: error: Invalid job id 5",
        "scancel: error: invalid job id specified",
    ],
)
def test_cancelling_ended_jobs_is_no_error(fake_bin, sleeps, message):
    fake_bin.add("scancel", f"print({message!r}, file=sys.stderr)\nsys.exit(1)")
    cancel_ids(["5"])
    assert len(fake_bin.calls("scancel")) == 1


def test_other_cancel_failures_are_raised(fake_bin, sleeps):
    fake_bin.add(
        "scancel",
        "print('scancel: error: Kill job error on job id 5: Access/permission denied',"
        " file=sys.stderr)\nsys.exit(1)",
    )
    with pytest.raises(SlurmCommandError, match="permission denied"):
        cancel_ids(["5"])


def test_nothing_to_cancel_calls_nothing(fake_bin):
    fake_bin.add("scancel", "")
    cancel_ids([])
    assert fake_bin.calls("scancel") == []
