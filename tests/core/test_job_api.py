"""The Executor and Job API around the backends: batches, arrays, errors, re-attach, waiting."""

import pathlib
import sys
import threading
import time

import cloudpickle
import pytest

from offload.core import Executor, Job, OffloadError, RemoteError, SerializationError
from offload.core.backend import Backend

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def executor(tmp_path):
    return Executor(tmp_path / "jobs", "local")


def return_a_lock():
    return threading.Lock()


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def test_a_batch_job_has_no_id_until_the_block_ends(executor):
    with executor.batch():
        job = executor.submit(pow, 2, 2)
        with pytest.raises(OffloadError, match=r"not submitted yet"):
            _ = job.job_id
        with pytest.raises(OffloadError, match=r"inside 'with executor.batch"):
            executor.update_parameters(timeout_min=1)
    assert job.result(timeout=60) == 4


def test_a_batch_that_raises_submits_nothing(executor):
    with pytest.raises(RuntimeError), executor.batch():
        executor.submit(pow, 2, 2)
        raise RuntimeError("changed my mind")
    assert not executor.folder.exists() or not any(executor.folder.glob("*/group.json"))


def test_map_array_needs_iterables_of_one_length(executor):
    with pytest.raises(ValueError, match=r"different lengths"):
        executor.map_array(pow, [1, 2], [1])
    assert executor.map_array(pow, [], []) == []


def test_an_unpicklable_return_value_becomes_a_clear_error(executor):
    job = executor.submit(return_a_lock)
    with pytest.raises(SerializationError, match=r"return value .* cannot be pickled"):
        job.result(timeout=60)


def raise_from_a_module_only_the_job_has(directory):
    module = pathlib.Path(directory) / "only_on_the_node.py"
    module.write_text("class ProjectSpecificError(Exception):\n    pass\n")
    sys.path.insert(0, directory)
    from only_on_the_node import ProjectSpecificError

    raise ProjectSpecificError("raised on the node")


def test_an_exception_whose_type_is_unknown_here_keeps_name_and_traceback(executor, tmp_path):
    (tmp_path / "node").mkdir()
    job = executor.submit(raise_from_a_module_only_the_job_has, str(tmp_path / "node"))
    with pytest.raises(RemoteError) as raised:
        job.result(timeout=60)
    assert raised.value.type_name == "only_on_the_node.ProjectSpecificError"
    assert str(raised.value) == "only_on_the_node.ProjectSpecificError: raised on the node"
    assert "raise_from_a_module_only_the_job_has" in str(raised.value.__cause__)


def test_attach_to_an_unknown_id_explains(executor):
    executor.submit(pow, 1, 1).wait(timeout=60)
    with pytest.raises(OffloadError, match=r"no job 'nope'"):
        Job.attach(executor.folder, "nope")


def test_attach_in_this_process_reads_the_result(executor):
    job = executor.submit(pow, 3, 3)
    attached = Job.attach(executor.folder, job.job_id)
    assert attached.result(timeout=60) == 27
    assert attached.num_tasks == 1 and attached.backend == "local"


def test_wait_times_out_with_a_clear_message(executor):
    job = executor.submit(sleep_then, 30, "late")
    with pytest.raises(TimeoutError, match=r"1 of 1 job\(s\) still unfinished after 0.3 s"):
        job.wait(timeout=0.3)
    job.cancel()


def test_one_status_call_answers_for_every_pending_job(executor, monkeypatch):
    calls = []
    real_status = Backend.status

    def counting_status(self, jobs):
        calls.append(len(jobs))
        return real_status(self, jobs)

    monkeypatch.setattr(Backend, "status", counting_status)
    jobs = executor.map_array(sleep_then, [1.0] * 12, range(12))
    assert [job.result(timeout=120) for job in jobs] == list(range(12))
    assert calls, "the watcher never asked the backend"
    assert calls[0] >= 12, "the first query must cover every pending job at once"
    assert all(count >= 1 for count in calls)
    assert len(calls) < 200, f"{len(calls)} status calls for 12 jobs of 1 s: no backoff?"


def test_task_views_check_their_rank(executor):
    executor.update_parameters(tasks_per_node=2)
    job = executor.submit(pow, 2, 5)
    assert job.results(timeout=60) == [32, 32]
    assert job.task(1).result() == 32
    with pytest.raises(ValueError, match=r"ranks 0..1"):
        job.task(2)


def test_job_repr_and_describe(executor):
    job = executor.submit(pow, 1, 1)
    assert job.job_id in repr(job)
    assert job.task(0).result(timeout=60) == 1
    assert "rank 0" in repr(job.task(0))


def test_unknown_backend_lists_the_installed(tmp_path):
    from offload.core import BackendNotFoundError

    with pytest.raises(BackendNotFoundError, match=r"Installed backends: .*local"):
        Executor(tmp_path, "nonexistent")


def test_remote_error_text():
    error = RemoteError("pkg.Error", "message", "Traceback ...")
    assert str(error) == "pkg.Error: message"
