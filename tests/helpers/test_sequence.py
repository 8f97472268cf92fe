"""FunctionSequence: steps in order, results kept, resumption at the first unfinished step."""

import sys
import time

import cloudpickle
import pytest

from offload.core import DelayedSubmission
from offload.helpers import Checkpointable, FunctionSequence
from offload.local import LocalExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Stopped(Exception):
    """Stands for the end of the process after a checkpoint."""


def record(log_path, name, value):
    with open(log_path, "a") as stream:
        stream.write(name + "\n")
    return value


def calls(log_path):
    return log_path.read_text().split()


class Interrupter:
    """A step that, the first time, checkpoints the whole sequence (as the job runner would from
    its signal handler) and stops; the requeued copy runs it normally."""

    def __init__(self, log_path, saved):
        self.log_path = log_path
        self.saved = saved
        self.sequence = None

    def __call__(self, value):
        record(self.log_path, "interrupted-step", None)
        if self.saved.exists():
            return value
        self.saved.write_bytes(cloudpickle.dumps(self.sequence.checkpoint()))
        raise Stopped


class Epochs(Checkpointable):
    """A resumable step: counts epochs in an attribute."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.epoch = 0

    def __call__(self, epochs, stop_at=None):
        while self.epoch < epochs:
            if self.epoch == stop_at:
                raise Stopped
            self.epoch += 1
            record(self.log_path, f"epoch{self.epoch}", None)
        return self.epoch

    def checkpoint(self, epochs, stop_at=None):
        return DelayedSubmission(self, epochs)  # resume without the stop


def test_steps_run_in_order_and_return_all_results(tmp_path):
    log = tmp_path / "log"
    sequence = FunctionSequence(
        [
            DelayedSubmission(record, log, "a", 1),
            (record, (log, "b", 2)),
            (record, [log, "c"], {"value": 3}),
        ]
    )
    sequence.add(record, log, "d", value=4)
    assert len(sequence) == 4 and sequence.done == 0
    assert sequence() == [1, 2, 3, 4]
    assert calls(log) == ["a", "b", "c", "d"]
    assert sequence.results == [1, 2, 3, 4] and sequence.done == 4
    assert sequence() == [1, 2, 3, 4]  # nothing left to run
    assert calls(log) == ["a", "b", "c", "d"]


def test_bad_steps_are_refused():
    with pytest.raises(TypeError, match="DelayedSubmission or a tuple"):
        FunctionSequence([print])
    with pytest.raises(TypeError, match="must be a tuple or a list"):
        FunctionSequence([(print, "abc")])
    with pytest.raises(TypeError, match="must be a dict"):
        FunctionSequence([(print, (), [1])])


def test_checkpoint_resumes_at_the_interrupted_step(tmp_path):
    log, saved = tmp_path / "log", tmp_path / "saved.pkl"
    interrupter = Interrupter(log, saved)
    sequence = FunctionSequence(
        [(record, (log, "first", 1)), (interrupter, ("second",)), (record, (log, "third", 3))]
    )
    interrupter.sequence = sequence
    with pytest.raises(Stopped):
        sequence()
    resumed = cloudpickle.loads(saved.read_bytes())
    assert isinstance(resumed.function, FunctionSequence)
    assert resumed.function.done == 1
    assert resumed.result() == [1, "second", 3]
    # the finished step did not run again; the interrupted one ran again from its start
    assert calls(log) == ["first", "interrupted-step", "interrupted-step", "third"]


def test_a_checkpointable_step_resumes_from_its_own_checkpoint(tmp_path):
    log = tmp_path / "log"
    epochs = Epochs(log)
    sequence = FunctionSequence([(record, (log, "setup", "ok")), (epochs, (5,), {"stop_at": 3})])
    with pytest.raises(Stopped):
        sequence()
    resumed = cloudpickle.loads(cloudpickle.dumps(sequence.checkpoint()))
    assert resumed.function.steps[1].kwargs == {}  # replaced by the step's own checkpoint
    assert resumed.result() == ["ok", 5]
    assert calls(log) == ["setup", "epoch1", "epoch2", "epoch3", "epoch4", "epoch5"]


def test_a_step_whose_checkpoint_returns_none_runs_again_unchanged(tmp_path):
    class FromScratch(Checkpointable):
        def __call__(self, x):
            return x * 2

        def checkpoint(self, x):
            return None

    step = DelayedSubmission(FromScratch(), 21)
    sequence = FunctionSequence([step])
    resumed = sequence.checkpoint()
    assert resumed.function is sequence and sequence.steps[0] is step
    assert resumed.result() == [42]


def test_a_sequence_runs_as_a_job(tmp_path):
    log = tmp_path / "log"
    sequence = FunctionSequence([(record, (log, "x", 1)), (record, (log, "y", 2))])
    job = LocalExecutor(tmp_path / "jobs").submit(sequence)
    assert job.result(timeout=60) == [1, 2]
    assert calls(log) == ["x", "y"]
    assert sequence.done == 0  # the caller's copy is untouched


class SlowCount(Checkpointable):
    """Counts to ``target``, a tenth of a second per step, resumable from its attributes."""

    def __init__(self):
        self.done = 0
        self.starts = 0

    def __call__(self, target):
        self.starts += 1
        while self.done < target:
            time.sleep(0.1)
            self.done += 1
        return self.done, self.starts


@pytest.mark.slow
def test_a_sequence_job_is_requeued_and_resumes_at_the_unfinished_step(tmp_path):
    # 6 s limit, checkpoint signal 3 s before it: the 8 s step needs requeues
    executor = LocalExecutor(tmp_path / "jobs", timeout_min=0.1, signal_delay_s=3)
    log = tmp_path / "log"
    sequence = FunctionSequence(
        [(record, (log, "setup", "ready")), (SlowCount(), (80,)), (record, (log, "report", "ok"))]
    )
    job = executor.submit(sequence)
    ready, (counted, starts), ok = job.result(timeout=120)
    assert (ready, counted, ok) == ("ready", 80, "ok")
    assert starts >= 2  # the counting step was resumed from its own checkpoint
    assert calls(log) == ["setup", "report"]  # the finished first step never ran again
