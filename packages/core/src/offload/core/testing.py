"""The conformance suite every backend must pass, for backend authors.

Subclass :class:`BackendConformance` in a test module of your backend's package; pytest collects
the inherited tests::

    from offload.core.testing import BackendConformance

    class TestPbsConformance(BackendConformance):
        backend = "pbs"
        parameters = {"pbs_queue": "test"}     # anything your test system needs

The tests submit real jobs through the installed backend and check, end to end: submit and
result, arrays, batches, exception type and traceback, cancel, stdout and stderr, ranks in
``JobEnvironment``, ``env_vars``, normalized states, a job that dies without a result, and
re-attaching to a job from another process. Needs pytest (``pip install offload-core[testing]``).

:func:`wait_until` polls for a condition with a deadline, for a backend's own live tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from .backend import Backend
from .environment import JobEnvironment
from .errors import JobError, RemoteTraceback, SerializationError
from .executor import Executor
from .job import Job
from .plugins import get_plugin_manager
from .states import JobState


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str | Callable[[], object] = "the condition",
    interval: float = 0.05,
) -> None:
    """Call ``condition`` every ``interval`` seconds until it is true; ``AssertionError`` after
    ``timeout`` seconds, naming ``what`` (or what ``what()`` returns then: a job's status, say)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"gave up after {timeout:g} s waiting for {said}")
        time.sleep(interval)


# -- functions run inside the jobs (module-level, so the node imports them by name) ------------


def add(a: int, b: int) -> int:
    return a + b


def describe_environment() -> dict[str, Any]:
    environment = JobEnvironment.current()
    return {
        "backend": environment.backend,
        "job_id": environment.job_id,
        "array_job_id": environment.array_job_id,
        "array_task_id": environment.array_task_id,
        "num_tasks": environment.num_tasks,
        "num_nodes": environment.num_nodes,
        "node": environment.node,
        "global_rank": environment.global_rank,
        "local_rank": environment.local_rank,
        "hostnames": list(environment.hostnames),
    }


def raise_value_error(message: str) -> None:
    raise ValueError(message)


class UnrebuildableError(Exception):
    """An exception whose pickle cannot be loaded back (its __init__ needs two arguments)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


def raise_unrebuildable() -> None:
    raise UnrebuildableError("left", "right")


def print_both(out: str, err: str) -> str:
    print(out, flush=True)
    print(err, file=sys.stderr, flush=True)
    return "printed"


def read_variable(name: str) -> str | None:
    return os.environ.get(name)


def sleep_then_return(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


def exit_abruptly(marker: str) -> None:
    print(marker, file=sys.stderr, flush=True)
    os._exit(3)


def remote_traceback_text(error: BaseException) -> str:
    """The job-side traceback of ``error``: from its ``RemoteTraceback`` cause, or its own frames
    when the job ran in this process and the exception is the original object."""
    if isinstance(error.__cause__, RemoteTraceback):
        return error.__cause__.traceback_text
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


# -- the suite ------------------------------------------------------------------------------


class BackendConformance:
    """Tests that a backend must pass. Subclass it and set :attr:`backend`.

    Class attributes to adapt it:

    - ``backend``: the backend's name (required);
    - ``parameters``: job parameters every test job gets (a partition, a queue...);
    - ``timeout``: seconds to wait for one job (default 120);
    - ``rank_layouts``: parameter sets for the multi-rank test, each with ``tasks_per_node``
      and optionally ``nodes``;
    - ``runs_in_background``: ``False`` for a backend that runs jobs inside the caller's process;
      it skips the tests that need a job to outlive the test (a running job to attach to) or to
      crash its process.
    """

    backend: ClassVar[str]
    parameters: ClassVar[dict[str, Any]] = {}
    timeout: ClassVar[float] = 120.0
    rank_layouts: ClassVar[list[dict[str, int]]] = [{"tasks_per_node": 2}]
    runs_in_background: ClassVar[bool] = True

    def make_executor(self, folder: Path) -> Executor:
        """The executor the tests use; override to add options."""
        return Executor(folder, self.backend, **self.parameters)

    @pytest.fixture
    def executor(self, tmp_path: Path) -> Executor:
        """An executor on a fresh folder: under ``$OFFLOAD_TEST_FOLDER`` when it is set (a
        cluster needs a folder its nodes can see), else under pytest's ``tmp_path``."""
        shared = os.environ.get("OFFLOAD_TEST_FOLDER")
        if shared:
            folder = Path(shared) / f"{tmp_path.name}-{os.getpid()}-{time.time_ns()}"
        else:
            folder = tmp_path / "jobs"
        return self.make_executor(folder)

    def wait_for_terminal_state(self, job: Job[Any]) -> JobState:
        wait_until(lambda: job.state.is_terminal, self.timeout, f"{job} to reach a terminal state")
        return job.state

    # -- results -----------------------------------------------------------------------------

    def test_submit_returns_the_result(self, executor: Executor) -> None:
        job = executor.submit(add, 2, 3)
        assert isinstance(job.job_id, str) and job.job_id
        assert job.result(timeout=self.timeout) == 5
        assert job.done()
        assert job.exception() is None
        assert job.submission().args == (2, 3)

    def test_job_environment_names_the_backend_and_job(self, executor: Executor) -> None:
        job = executor.submit(describe_environment)
        described = job.result(timeout=self.timeout)
        assert described["backend"] == self.backend
        assert described["job_id"] == job.job_id
        assert (described["global_rank"], described["num_tasks"]) == (0, 1)
        assert described["array_task_id"] is None

    def test_map_array_returns_results_in_order(self, executor: Executor) -> None:
        jobs = executor.map_array(add, [1, 2, 3], [10, 20, 30])
        assert [job.result(timeout=self.timeout) for job in jobs] == [11, 22, 33]
        assert len({job.job_id for job in jobs}) == 3

    def test_array_elements_know_their_index(self, executor: Executor) -> None:
        jobs = executor.map_array(lambda _: describe_environment(), range(3))
        described = [job.result(timeout=self.timeout) for job in jobs]
        assert [d["array_task_id"] for d in described] == [0, 1, 2]
        assert len({d["array_job_id"] for d in described}) == 1
        assert described[0]["array_job_id"] is not None

    def test_batch_submits_when_the_block_ends(self, executor: Executor) -> None:
        with executor.batch():
            jobs = [executor.submit(add, i, i) for i in range(3)]
        assert all(job.job_id for job in jobs)
        assert [job.result(timeout=self.timeout) for job in jobs] == [0, 2, 4]

    def test_env_vars_reach_the_job(self, executor: Executor) -> None:
        executor.update_parameters(env_vars={"OFFLOAD_CONFORMANCE": "a value with spaces"})
        job = executor.submit(read_variable, "OFFLOAD_CONFORMANCE")
        assert job.result(timeout=self.timeout) == "a value with spaces"

    # -- failures ----------------------------------------------------------------------------

    def test_exception_keeps_its_type_and_traceback(self, executor: Executor) -> None:
        job = executor.submit(raise_value_error, "boom from the job")
        with pytest.raises(ValueError, match="boom from the job") as raised:
            job.result(timeout=self.timeout)
        assert "raise_value_error" in remote_traceback_text(raised.value)
        assert isinstance(job.exception(), ValueError)
        assert self.wait_for_terminal_state(job) == JobState.FAILED

    def test_exception_that_cannot_be_rebuilt_keeps_its_name(self, executor: Executor) -> None:
        job = executor.submit(raise_unrebuildable)
        with pytest.raises(Exception) as raised:
            job.result(timeout=self.timeout)
        assert "UnrebuildableError" in repr(raised.value) + str(raised.value.__class__)
        assert "left and right" in str(raised.value)
        assert "raise_unrebuildable" in remote_traceback_text(raised.value)

    def test_unpicklable_argument_fails_at_submit(self, executor: Executor) -> None:
        with pytest.raises(SerializationError, match="positional argument 0"):
            executor.submit(add, threading.Lock(), 1)

    def test_job_dying_without_result_quotes_its_log(self, executor: Executor) -> None:
        if not self.runs_in_background:
            pytest.skip("the backend runs jobs in this process: a crash would end the tests")
        job = executor.submit(exit_abruptly, "last words of the job")
        with pytest.raises(JobError) as raised:
            job.result(timeout=self.timeout)
        assert "last words of the job" in str(raised.value)
        assert raised.value.state == "FAILED"

    # -- control and logs --------------------------------------------------------------------

    def test_cancel(self, executor: Executor) -> None:
        job = executor.submit(sleep_then_return, 600, "not cancelled")
        job.cancel()
        assert self.wait_for_terminal_state(job) == JobState.CANCELLED
        with pytest.raises(JobError, match="CANCELLED"):
            job.result(timeout=self.timeout)

    def test_stdout_and_stderr_are_captured(self, executor: Executor) -> None:
        job = executor.submit(print_both, "to stdout", "to stderr")
        assert job.result(timeout=self.timeout) == "printed"
        assert "to stdout" in (job.stdout() or "")
        assert "to stderr" in (job.stderr() or "")

    def test_states_are_normalized(self, executor: Executor) -> None:
        job = executor.submit(add, 1, 1)
        assert isinstance(job.state, JobState)
        job.result(timeout=self.timeout)
        assert self.wait_for_terminal_state(job) == JobState.COMPLETED
        assert isinstance(job.status.native, str)

    def test_ranks_each_return_a_result(self, executor: Executor) -> None:
        for layout in self.rank_layouts:
            executor.update_parameters(**layout)
            job = executor.submit(describe_environment)
            described = job.results(timeout=self.timeout)
            tasks = layout.get("nodes", 1) * layout["tasks_per_node"]
            assert [d["global_rank"] for d in described] == list(range(tasks))
            assert all(d["num_tasks"] == tasks for d in described)
            per_node = layout["tasks_per_node"]
            assert [d["local_rank"] for d in described] == [r % per_node for r in range(tasks)]
            assert [d["node"] for d in described] == [r // per_node for r in range(tasks)]
            assert all(len(d["hostnames"]) == layout.get("nodes", 1) for d in described)
            assert job.task(tasks - 1).result()["global_rank"] == tasks - 1

    def test_one_status_call_covers_many_jobs(
        self, executor: Executor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sizes: list[int] = []
        real_status = Backend.status

        def counting(backend: Backend, jobs: Any) -> Any:
            sizes.append(len(jobs))
            return real_status(backend, jobs)

        monkeypatch.setattr(Backend, "status", counting)
        # the jobs outlast the wait before the first status query, so the waiting caller asks
        first_query = get_plugin_manager().backend(executor.backend).spec.poll_interval[0]
        jobs = executor.map_array(sleep_then_return, [first_query + 2.0] * 5, range(5))
        assert [job.result(timeout=self.timeout) for job in jobs] == list(range(5))
        assert sizes, "status was never asked about jobs that were still running"
        assert max(sizes) >= 5, f"status was asked about fewer jobs at once: {sizes}"

    # -- re-attach ---------------------------------------------------------------------------

    def test_reattach_from_another_process(self, executor: Executor) -> None:
        delay = 2 if self.runs_in_background else 0
        job = executor.submit(sleep_then_return, delay, "attached")
        if not self.runs_in_background:
            job.result(timeout=self.timeout)
        script = (
            "import sys\nfrom offload.core import Job\n"
            "print(Job.attach(sys.argv[1], sys.argv[2]).result(timeout=float(sys.argv[3])))\n"
        )
        finished = subprocess.run(
            [sys.executable, "-c", script, str(executor.folder), job.job_id, str(self.timeout)],
            capture_output=True,
            text=True,
            timeout=self.timeout + 30,
        )
        assert finished.returncode == 0, finished.stderr
        assert finished.stdout.strip() == "attached"
