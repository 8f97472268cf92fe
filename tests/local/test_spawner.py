"""Local jobs are forked from a warm spawner, unless their environment needs a fresh interpreter."""

import os
import signal
import subprocess
import sys
import textwrap

import cloudpickle
import pytest

from offload.core import Job
from offload.local import LocalExecutor, local_plugin

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def executor(tmp_path):
    return LocalExecutor(tmp_path / "jobs")


def import_and_describe(module_name):
    module = __import__(module_name)
    return module.WHERE, os.environ["PYTHONPATH"]


def working_directory():
    return os.getcwd()


def test_a_job_that_changes_pythonpath_gets_a_fresh_interpreter(executor, tmp_path):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "only_on_extra_path.py").write_text("WHERE = 'extra path'\n")
    executor.update_parameters(env_vars={"PYTHONPATH": str(tmp_path / "extra")})
    job = executor.submit(import_and_describe, "only_on_extra_path")
    assert job.result(timeout=60) == ("extra path", str(tmp_path / "extra"))


def test_jobs_run_in_the_callers_current_directory(executor, tmp_path, monkeypatch):
    executor.submit(pow, 1, 1).result(timeout=60)  # the spawner starts in the first directory
    monkeypatch.chdir(tmp_path)
    assert executor.submit(working_directory).result(timeout=60) == str(tmp_path)


def test_a_dead_spawner_is_replaced(executor):
    executor.submit(pow, 1, 1).result(timeout=60)
    spawners = local_plugin.launcher()._spawners
    for client in spawners.values():
        os.kill(client._process.pid, signal.SIGKILL)
        client._process.wait()
    assert executor.submit(pow, 2, 5).result(timeout=60) == 32


def test_jobs_outlive_the_process_that_submitted_them(tmp_path):
    folder = tmp_path / "jobs"
    script = textwrap.dedent(f"""
        import time
        from offload.local import LocalExecutor
        job = LocalExecutor({str(folder)!r}).submit(time.sleep, 2)
        print(job.job_id)
    """)
    submitted = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    job = Job.attach(folder, submitted.stdout.strip())
    assert job.result(timeout=60) is None
    assert job.state.value == "COMPLETED"
