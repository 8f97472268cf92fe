"""Checkpointable: the default checkpoint resubmits the object with its progress."""

import sys

import cloudpickle
import pytest

from offload.core import DelayedSubmission
from offload.helpers import Checkpointable
from offload.local import LocalExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Counter(Checkpointable):
    """Counts up to ``target``, one step per call of ``step``; the count is its state."""

    def __init__(self):
        self.count = 0
        self.calls = 0

    def __call__(self, target, stop_at=None):
        self.calls += 1
        while self.count < target:
            if stop_at is not None and self.count == stop_at:
                # what the job runner does when the job is about to stop: ask for a checkpoint
                resumed = self.checkpoint(target, stop_at=None)
                return cloudpickle.dumps(resumed)
            self.count += 1
        return self.count, self.calls


class Restarting(Checkpointable):
    """Keeps nothing worth resuming: its checkpoint asks to start again from scratch."""

    def __call__(self):
        return "ran"

    def checkpoint(self, *args, **kwargs):
        return None


class NextStage(Checkpointable):
    """A checkpoint that resumes with other arguments."""

    def __call__(self, stage):
        return f"stage {stage}"

    def checkpoint(self, stage):
        return DelayedSubmission(self, stage + 1)


def test_checkpointable_needs_a_call_method():
    with pytest.raises(TypeError, match="abstract"):
        Checkpointable()


def test_default_checkpoint_resubmits_the_same_object_with_the_same_arguments():
    counter = Counter()
    resumed = counter.checkpoint(5, stop_at=None)
    assert isinstance(resumed, DelayedSubmission)
    assert resumed.function is counter
    assert resumed.args == (5,)
    assert resumed.kwargs == {"stop_at": None}


def test_progress_travels_in_the_pickled_attributes():
    counter = Counter()
    counter.count = 3  # as if three steps were done before the job was stopped
    resumed = cloudpickle.loads(cloudpickle.dumps(counter.checkpoint(5)))
    assert resumed.function is not counter
    assert resumed.result() == (5, 1)  # resumed at 3: only two more steps, in one call


def test_checkpoint_may_return_none_or_other_arguments():
    assert Restarting().checkpoint() is None
    resumed = NextStage().checkpoint(1)
    assert resumed.result() == "stage 2"


def test_a_checkpointed_job_resumes_in_a_new_job_where_it_stopped(tmp_path):
    executor = LocalExecutor(tmp_path / "jobs")
    counter = Counter()
    first = executor.submit(counter, 10, stop_at=4)
    saved = cloudpickle.loads(first.result(timeout=60))
    assert isinstance(saved, DelayedSubmission)
    assert saved.function.count == 4  # the state at checkpoint time, pickled in the job
    assert counter.count == 0  # the caller's object was never touched
    second = executor.submit(saved.function, *saved.args, **saved.kwargs)
    assert second.result(timeout=60) == (10, 2)  # went on from 4; the second call of the object
