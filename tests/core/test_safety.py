"""Job folders are private, pickles that others could have written are refused, and input that
cannot be pickled fails at submit time."""

import os
import stat
import sys
import threading

import cloudpickle
import pytest

from offload.core import Executor, Job, SerializationError, UnsafeFileError, serialization

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def identity(value):
    return value


@pytest.fixture
def executor(tmp_path):
    return Executor(tmp_path / "jobs", "local")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_job_folders_are_private_to_their_owner(executor):
    job = executor.submit(identity, 1)
    assert job.result(timeout=60) == 1
    assert mode(executor.folder) == 0o700
    assert mode(job.paths.group_dir) == 0o700
    assert mode(job.paths.job_dir) == 0o700
    assert mode(job.paths.submission) == 0o600
    assert mode(job.paths.result(0)) == 0o600


def test_existing_folder_keeps_its_mode_but_job_folders_are_private(tmp_path):
    tmp_path.chmod(0o755)
    job = Executor(tmp_path, "local").submit(identity, 2)
    assert job.result(timeout=60) == 2
    assert mode(tmp_path) == 0o755
    assert mode(job.paths.group_dir) == 0o700


def test_result_writable_by_others_is_not_unpickled(executor):
    job = executor.submit(identity, 3)
    job.wait(timeout=60)
    job.paths.result(0).chmod(0o666)
    with pytest.raises(UnsafeFileError, match=r"writable by others.*chmod go-w"):
        job.result()


def test_result_owned_by_someone_else_is_not_unpickled(executor, monkeypatch):
    job = executor.submit(identity, 4)
    job.wait(timeout=60)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(job.paths.result(0)).st_uid + 1)
    with pytest.raises(UnsafeFileError, match=r"belongs to user id"):
        job.result()


def test_submission_writable_by_group_is_refused(executor):
    job = executor.submit(identity, 5)
    job.wait(timeout=60)
    job.paths.submission.chmod(0o620)
    with pytest.raises(UnsafeFileError):
        job.submission()


def test_unpicklable_argument_fails_at_submit_and_names_it(executor):
    with pytest.raises(SerializationError, match=r"keyword argument 'lock' <unlocked _thread.lock"):
        executor.submit(identity, value=1, lock=threading.Lock())
    assert not any(executor.folder.glob("*/0/submission.pkl"))


def test_unpicklable_function_fails_at_submit_and_names_it(executor):
    generator = (i for i in range(3))
    with pytest.raises(SerializationError, match=r"function .* cannot be pickled"):
        executor.submit(generator.__next__)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "value.pkl"
    with pytest.raises(TypeError):
        serialization.dump({"fine": 1, "lock": threading.Lock()}, target)
    assert list(tmp_path.iterdir()) == []
    serialization.dump({"fine": 1}, target)
    assert serialization.load(target) == {"fine": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["value.pkl"]


def test_attach_refuses_a_link_pointing_outside_the_folder(executor, tmp_path):
    job = executor.submit(identity, 6)
    job.wait(timeout=60)
    link = executor.folder / "by-id" / "evil"
    link.symlink_to(tmp_path)
    with pytest.raises(Exception, match=r"outside|no job"):
        Job.attach(executor.folder, "evil")


def test_a_bad_job_id_from_a_backend_is_refused_before_linking(executor, monkeypatch):
    from offload.core import SubmissionError
    from offload.local.launcher import LocalLauncher

    monkeypatch.setattr(LocalLauncher, "submit", lambda self, request: ["../evil"])
    with pytest.raises(SubmissionError, match=r"bad id.*'\.\./evil'"):
        executor.submit(identity, 1)
