"""The Slurm backend on the live test cluster: arrays, cancel, status calls, faults."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from offload.auto import choose_backend
from offload.core import (
    JobEnvironment,
    JobError,
    JobState,
    SubmissionError,
    cancel_jobs,
    checkpointing,
)
from offload.core.backend import Backend
from offload.core.testing import wait_until
from offload.slurm import SlurmExecutor, cluster, commands, preview

cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "tools" / "slurm-test-cluster"
TIMEOUT = 120


def describe() -> dict[str, Any]:
    environment = JobEnvironment.current()
    return {
        "job_id": environment.job_id,
        "array_task_id": environment.array_task_id,
        "global_rank": environment.global_rank,
        "hostnames": list(environment.hostnames),
        "node_name": os.environ.get("SLURMD_NODENAME"),
        "node": environment.node,
    }


def nap(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


@pytest.fixture
def executor(tmp_path: Path) -> SlurmExecutor:
    return SlurmExecutor(tmp_path / "jobs", timeout_min=10)


@pytest.fixture
def scheduler_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every Slurm command the client runs, in order."""
    calls: list[list[str]] = []
    real = commands.run

    def recording(args: Any, **kwargs: Any) -> str:
        calls.append(list(args))
        return real(args, **kwargs)

    monkeypatch.setattr(commands, "run", recording)
    return calls


def squeue_state(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "--noheader", "--array", "--states=all", "--format=%T", "--jobs", job_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# -- choosing and submitting --------------------------------------------------------------------


def test_auto_executor_picks_slurm_where_sbatch_is() -> None:
    assert choose_backend() == "slurm"


def test_an_unknown_partition_is_refused_with_sbatchs_message(executor: SlurmExecutor) -> None:
    executor.update_parameters(slurm_partition="no-such-partition")
    with pytest.raises(SubmissionError, match=r"sbatch refused.*invalid partition"):
        executor.submit(nap, 0)
    assert not [p for p in executor.folder.iterdir() if p.name != "by-id"], "nothing is left"


def test_parameters_reach_sbatch(executor: SlurmExecutor) -> None:
    executor.update_parameters(
        name="offload test job",
        timeout_min=7,
        mem_gb=0.5,
        cpus_per_task=2,
        slurm_partition="high",
        slurm_comment="a comment with 'quotes'",
        slurm_additional_parameters={"hold": True},
    )
    job = executor.submit(nap, 0, "released")
    shown = subprocess.run(
        ["scontrol", "show", "job", job.job_id], capture_output=True, text=True, check=True
    ).stdout
    assert "JobName=offload test job" in shown
    assert "TimeLimit=00:07:00" in shown
    assert "Partition=high" in shown
    assert "Comment=a comment with 'quotes'" in shown
    assert "MinCPUsNode=2" in shown
    assert "mem=512M" in shown
    assert "JobState=PENDING" in shown and "Reason=JobHeldUser" in shown
    subprocess.run(["scontrol", "release", job.job_id], check=True)
    assert job.result(timeout=TIMEOUT) == "released"


def job_side_variables() -> dict[str, str]:
    return {name: os.environ[name] for name in checkpointing.JOB_VARIABLES if name in os.environ}


def test_a_job_submitted_from_inside_a_job_gets_its_own_job_side_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch passes the submitter's environment on: inside a job, that job's checkpoint time
    and SIGTERM behaviour would reach the new job, with or without a time limit of its own."""
    monkeypatch.setenv(checkpointing.CHECKPOINT_AT, "12345")
    monkeypatch.setenv(checkpointing.SIGTERM_WAITS, "0")
    untimed = SlurmExecutor(tmp_path / "jobs").submit(job_side_variables)
    timed = SlurmExecutor(tmp_path / "jobs", timeout_min=5).submit(job_side_variables)
    assert untimed.result(timeout=TIMEOUT) == {checkpointing.SIGTERM_WAITS: "1"}
    seen = timed.result(timeout=TIMEOUT)
    assert seen[checkpointing.SIGTERM_WAITS] == "1"
    assert float(seen[checkpointing.CHECKPOINT_AT]) > time.time() + 60, "its own, minutes away"


def test_multi_node_ranks_see_their_nodes(executor: SlurmExecutor) -> None:
    executor.update_parameters(nodes=2, tasks_per_node=2)
    job = executor.submit(describe)
    described = job.results(timeout=TIMEOUT)
    assert [d["global_rank"] for d in described] == [0, 1, 2, 3]
    assert all(d["hostnames"] == ["node1", "node2"] for d in described)
    assert [d["node_name"] for d in described] == ["node1", "node1", "node2", "node2"]
    assert job.task(3).result()["node"] == 1
    assert (job.paths.job_dir / "stderr.3.log").exists()


# -- arrays ---------------------------------------------------------------------------------


def test_map_array_is_one_sbatch_call(
    executor: SlurmExecutor, scheduler_calls: list[list[str]]
) -> None:
    assert executor.map_array(describe) == [], "nothing to run: no sbatch call"
    jobs = executor.map_array(lambda i: i * i, range(20))
    assert [call[0] for call in scheduler_calls].count("sbatch") == 1
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1
    assert [job.result(timeout=TIMEOUT) for job in jobs] == [i * i for i in range(20)]


def test_arrays_over_max_array_size_are_split(
    executor: SlurmExecutor, monkeypatch: pytest.MonkeyPatch, scheduler_calls: list[list[str]]
) -> None:
    assert cluster.max_array_size() == 1001  # what the test cluster's slurm.conf says
    monkeypatch.setattr(cluster, "max_array_size", lambda: 3)
    jobs = executor.map_array(lambda _: describe(), range(7))
    sbatch_calls = [call for call in scheduler_calls if call[0] == "sbatch"]
    assert len(sbatch_calls) == 3
    array_ids = [job.job_id.split("_")[0] for job in jobs]
    assert len(set(array_ids)) == 3
    assert [job.job_id.split("_")[1] for job in jobs] == ["0", "1", "2", "0", "1", "2", "0"]
    described = [job.result(timeout=TIMEOUT) for job in jobs]
    assert [d["array_task_id"] for d in described] == list(range(7))
    assert [d["job_id"] for d in described] == [job.job_id for job in jobs]
    # the launcher log of a later chunk is reachable from its job folder too
    assert "launcher.log" in os.listdir(jobs[4].paths.job_dir)


def test_array_parallelism_reaches_slurm(executor: SlurmExecutor) -> None:
    executor.update_parameters(slurm_array_parallelism=2)
    jobs = executor.map_array(nap, [1] * 4, range(4))
    array_id = jobs[0].job_id.split("_")[0]
    shown = subprocess.run(
        ["scontrol", "show", "job", array_id], capture_output=True, text=True, check=True
    ).stdout
    assert "ArrayTaskThrottle=2" in shown
    assert [job.result(timeout=TIMEOUT) for job in jobs] == [0, 1, 2, 3]


def test_batch_is_one_array(executor: SlurmExecutor, scheduler_calls: list[list[str]]) -> None:
    with executor.batch():
        jobs = [executor.submit(pow, 2, i) for i in range(5)]
    assert [call[0] for call in scheduler_calls].count("sbatch") == 1
    assert [job.result(timeout=TIMEOUT) for job in jobs] == [1, 2, 4, 8, 16]


def test_waiting_on_a_big_array_costs_a_constant_number_of_calls_per_poll(
    executor: SlurmExecutor, scheduler_calls: list[list[str]]
) -> None:
    jobs = executor.map_array(nap, [0.2] * 100, range(100))
    watcher = Backend.watcher.fget(jobs[0]._backend)  # type: ignore[attr-defined]
    queries_before = watcher.queries
    # Ask for states (not only result files) until every job is seen terminal.
    wait_until(lambda: all(job.state.is_terminal for job in jobs), TIMEOUT, "100 terminal states")
    assert [job.result() for job in jobs] == list(range(100))
    status_calls = [call for call in scheduler_calls if call[0] in ("sacct", "squeue")]
    queries = watcher.queries - queries_before
    assert queries >= 1
    assert len(status_calls) <= 2 * queries, (len(status_calls), queries)
    array_id = jobs[0].job_id.split("_")[0]
    for call in status_calls:
        if call[0] == "sacct":
            asked = call[call.index("-j") + 1].split(",")
            assert array_id in asked, "the array is asked about through its id"
            assert not [i for i in asked if i.startswith(array_id + "_")], "not one id per task"


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_one_array_task_then_the_whole_array(executor: SlurmExecutor) -> None:
    jobs = executor.map_array(nap, [600] * 3, range(3))
    jobs[1].cancel()
    wait_until(lambda: jobs[1].state is JobState.CANCELLED, TIMEOUT, "task 1 cancelled")
    assert not jobs[0].state.is_terminal and not jobs[2].state.is_terminal
    cancel_jobs(jobs)
    wait_until(
        lambda: all(job.state is JobState.CANCELLED for job in jobs), TIMEOUT, "all cancelled"
    )
    with pytest.raises(JobError, match="CANCELLED"):
        jobs[0].result(timeout=TIMEOUT)


def test_cancelling_a_finished_job_is_not_an_error(executor: SlurmExecutor) -> None:
    job = executor.submit(pow, 3, 3)
    assert job.result(timeout=TIMEOUT) == 27
    wait_until(lambda: job.state.is_terminal, TIMEOUT, "a terminal state")
    job.cancel()
    assert job.state is JobState.COMPLETED


# -- dry run --------------------------------------------------------------------------------


def test_preview_shows_the_script_without_submitting(executor: SlurmExecutor) -> None:
    executor.update_parameters(slurm_setup=["echo set up"], timeout_min=3)
    before = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    (shown,) = executor.preview(test_only=True)
    assert "#SBATCH --time=3:00" in shown.script and "echo set up" in shown.script
    assert shown.accepted is True and "to start at" in (shown.test_only or "")
    assert not executor.folder.exists()
    after = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    assert after == before
    executor.update_parameters(slurm_partition="no-such-partition")
    (refused,) = preview(executor, test_only=True)
    assert refused.accepted is False and "invalid partition" in (refused.test_only or "")


def test_the_preview_is_the_script_slurm_gets(executor: SlurmExecutor) -> None:
    """Byte for byte, but for the group folder's name, which each submission makes anew."""
    executor.update_parameters(
        slurm_setup=["echo set up"], slurm_comment="previewed", signal_delay_s=30
    )
    (shown,) = executor.preview()
    job = executor.submit(pow, 2, 3)
    try:
        stored = subprocess.run(
            ["scontrol", "write", "batch_script", job.job_id, "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        job.cancel()
    planned_folder = str(Path(shown.path).parent)
    assert planned_folder != str(job.paths.group_dir)
    assert shown.script.replace(planned_folder, str(job.paths.group_dir)) == stored


def test_preview_of_a_split_array(executor: SlurmExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "max_array_size", lambda: 4)
    scripts = executor.preview(10)
    assert [s.script.count("#SBATCH --array=") for s in scripts] == [1, 1, 1]
    assert "--array=0-1" in scripts[2].script and "+ 8))" in scripts[2].script


# -- faults ---------------------------------------------------------------------------------


def test_a_time_limit_is_a_clear_error_with_the_log_tail(executor: SlurmExecutor) -> None:
    executor.update_parameters(timeout_min=1)
    job = executor.submit(nap, 600)
    with pytest.raises(JobError) as raised:
        job.result(timeout=240)
    assert raised.value.state == "TIMEOUT"
    message = str(raised.value)
    assert "time limit" in message and "timeout_min" in message
    assert "DUE TO TIME LIMIT" in message


def test_a_transient_sacct_failure_is_retried_without_a_wrong_state(
    executor: SlurmExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake sacct on PATH fails its first calls as an overloaded slurmdbd would."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    counter = tmp_path / "sacct-calls"
    real_sacct = subprocess.run(["which", "sacct"], capture_output=True, text=True).stdout.strip()
    (fakes / "sacct").write_text(
        "#!/bin/bash\n"
        f"echo x >> {counter}\n"
        f"if (( $(wc -l < {counter}) <= 1 )); then\n"
        '  echo "sacct: error: Socket timed out on send/recv operation" >&2; exit 1\n'
        "fi\n"
        f'exec {real_sacct} "$@"\n'
    )
    (fakes / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakes}{os.pathsep}{os.environ['PATH']}")
    seen: list[JobState] = []
    real_status = Backend.status

    def recording(backend: Backend, jobs: Any) -> Any:
        answer = real_status(backend, jobs)
        seen.extend(status.state for status in answer.values())
        return answer

    monkeypatch.setattr(Backend, "status", recording)
    job = executor.submit(nap, 4, "survived")
    while not job.state.is_terminal:  # poll the scheduler, not only the result file
        time.sleep(0.3)
    assert job.result(timeout=TIMEOUT) == "survived"
    assert len(counter.read_text().split()) >= 2, "sacct was asked again after its failure"
    assert job.state is JobState.COMPLETED
    assert not [s for s in seen if s.is_terminal and s is not JobState.COMPLETED], seen


def test_the_caller_waits_through_a_controller_outage(
    executor: SlurmExecutor, controller_outage: Any
) -> None:
    """With accounting, sacct (answered by slurmdbd) still tells the job's state; the outage
    with failing status queries is proven in test_no_accounting.py."""
    # The job may start only after the outage: its begin time is a few seconds away.
    executor.update_parameters(slurm_additional_parameters={"begin": "now+4"})
    job = executor.submit(pow, 2, 5)
    with controller_outage(10) as outage:
        assert job.result(timeout=TIMEOUT) == 32
        assert outage.over, "the result came once the controller was started again"
    # The result file comes before the scheduler has seen the batch script end.
    wait_until(lambda: job.state.is_terminal, TIMEOUT, "a terminal state")
    assert job.state is JobState.COMPLETED
