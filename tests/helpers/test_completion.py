"""as_completed, wait_all and JobProgress on the local and debug backends."""

import io
import sys
import time

import cloudpickle
import pytest
from rich.console import Console

from offload.core import OffloadError
from offload.helpers import JobCounts, JobProgress, as_completed, wait_all
from offload.local import DebugExecutor, LocalExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def wait_for_file(path, value):
    while not path.exists():
        time.sleep(0.01)
    return value


def fail(message):
    raise ValueError(message)


def square(x):
    return x * x


@pytest.fixture
def executor(tmp_path):
    return LocalExecutor(tmp_path / "jobs")


def test_jobs_come_in_the_order_they_finish(executor, tmp_path):
    gates = [tmp_path / f"go{i}" for i in range(3)]
    jobs = [executor.submit(wait_for_file, gate, i) for i, gate in enumerate(gates)]
    finished = as_completed(jobs, timeout=60)
    order = []
    for index in (2, 0, 1):
        gates[index].touch()
        job = next(finished)
        order.append(job.result())
    assert order == [2, 0, 1]
    with pytest.raises(StopIteration):
        next(finished)


def test_each_job_comes_once_and_failures_come_too(executor):
    good = executor.submit(square, 3)
    bad = executor.submit(fail, "boom")
    seen = list(as_completed([good, bad, good], timeout=60))
    assert sorted(seen, key=id) == sorted([good, bad], key=id)
    assert good.result() == 9
    assert isinstance(bad.exception(), ValueError)


def test_timeout_names_the_jobs_left(executor, tmp_path):
    fast = executor.submit(square, 2)
    slow = executor.submit(wait_for_file, tmp_path / "never", None)
    seen = []
    with pytest.raises(TimeoutError, match=r"1 of 2 job\(s\) still unfinished after 2 s") as raised:
        for job in as_completed([slow, fast], timeout=2):
            seen.append(job)
    assert seen == [fast]
    assert slow.job_id in str(raised.value)
    slow.cancel()


def test_wait_all_returns_the_jobs_in_the_given_order(executor, tmp_path):
    (tmp_path / "go").touch()
    jobs = [executor.submit(wait_for_file, tmp_path / "go", i) for i in range(4)]
    assert wait_all(jobs, timeout=60) == jobs
    assert all(job.done() for job in jobs)
    assert [job.result() for job in jobs] == [0, 1, 2, 3]


def test_jobs_of_several_backends_at_once(executor, tmp_path):
    local_jobs = executor.map_array(square, [1, 2, 3])
    debug_jobs = DebugExecutor(tmp_path / "debug").map_array(square, [4, 5])
    seen = list(as_completed(local_jobs + debug_jobs, timeout=60))
    assert len(seen) == 5
    assert sorted(job.result() for job in seen) == [1, 4, 9, 16, 25]


def test_many_jobs_share_the_status_queries(executor):
    jobs = executor.map_array(square, range(200))
    watcher = jobs[0]._backend.watcher
    before = watcher.queries
    results = [job.result() for job in as_completed(jobs, timeout=120)]
    assert sorted(results) == [x * x for x in range(200)]
    # one query covers every job left; most jobs finish through their result files alone
    assert watcher.queries - before < 20


def test_an_unsubmitted_batch_job_is_refused(executor):
    with pytest.raises(OffloadError, match="not submitted yet"), executor.batch():
        as_completed([executor.submit(square, 1)])  # refused at once, before iterating


def test_progress_writes_plain_lines_when_stderr_is_not_a_terminal(executor, capsys):
    jobs = [executor.submit(square, 2), executor.submit(fail, "no")]
    assert wait_all(jobs, timeout=60, progress=True) == jobs
    lines = capsys.readouterr().err.splitlines()
    assert "offload: 0/2 jobs finished: 2 pending, 0 running, 0 done, 0 failed" in lines[0]
    assert lines[-1].endswith("offload: 2/2 jobs finished: 0 pending, 0 running, 1 done, 1 failed")


def test_progress_lines_are_rate_limited():
    stream = io.StringIO()
    progress = JobProgress(console=Console(file=stream), interval=3600)
    assert not progress.live
    progress.start(3)
    for done in range(1, 4):
        progress.update(JobCounts(pending=3 - done, done=done))
    progress.stop()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # the first and the last, nothing in between within the interval
    assert lines[0].endswith("0/3 jobs finished: 3 pending, 0 running, 0 done, 0 failed")
    assert lines[1].endswith("3/3 jobs finished: 0 pending, 0 running, 3 done, 0 failed")


def test_progress_is_a_live_bar_on_a_terminal(executor):
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    progress = JobProgress(console=console, description="squares")
    assert progress.live
    jobs = executor.map_array(square, range(5))
    for _ in as_completed(jobs, timeout=60, progress=progress):
        pass
    output = stream.getvalue()
    assert "squares" in output
    assert "5/5" in output
    assert "5 done" in output and "0 failed" in output
    assert "\x1b[" in output  # styled for a terminal


def test_counts_describe_themselves():
    counts = JobCounts(pending=1, running=2, done=3, failed=4)
    assert (counts.total, counts.finished) == (10, 7)
    assert str(counts) == "7/10 jobs finished: 1 pending, 2 running, 3 done, 4 failed"
