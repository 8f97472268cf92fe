"""The debug backend runs jobs in this process: original exceptions, output on the terminal."""

import pytest

from offload.core import JobState
from offload.local import DebugExecutor

RAISED = []


def raise_and_keep():
    error = KeyError("kept")
    RAISED.append(error)
    raise error


def greet(name):
    print(f"hello {name}")
    return name


@pytest.fixture
def executor(tmp_path):
    return DebugExecutor(tmp_path / "jobs")


def test_exception_is_the_original_object(executor):
    job = executor.submit(raise_and_keep)
    with pytest.raises(KeyError) as raised:
        job.result()
    assert raised.value is RAISED[-1]
    assert raised.value.__traceback__ is not None


def test_jobs_run_when_waited_for_and_output_is_shown_and_kept(executor, capsys):
    job = executor.submit(greet, "world")
    assert job.stdout() is None
    assert job.result() == "world"
    assert capsys.readouterr().out == "hello world\n"
    assert job.stdout() == "hello world\n"
    assert job.state is JobState.COMPLETED


def test_post_mortem_opens_pdb(executor, monkeypatch):
    opened = []
    monkeypatch.setattr("pdb.post_mortem", lambda traceback: opened.append(traceback))
    executor.update_parameters(debug_post_mortem=True)
    job = executor.submit(raise_and_keep)
    with pytest.raises(KeyError):
        job.result()
    assert len(opened) == 1 and opened[0] is not None
