"""clean_env: scheduler variables out of os.environ inside the block, back after it."""

import os
import subprocess
import sys

import cloudpickle
import pytest

from offload.core import checkpointing
from offload.helpers import clean_env
from offload.local import LocalExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])

INHERITED = {
    "SLURM_JOB_ID": "12",
    "SLURM_PROCID": "1",
    "SLURMD_NODENAME": "node1",
    "SBATCH_PARTITION": "debug",
    "SRUN_CPUS_PER_TASK": "2",
    "PMIX_RANK": "1",
    "OFFLOAD_LOCAL_JOB_ID": "x",
    "OFFLOAD_SLURM_ARRAY_OFFSET": "3",
    "OFFLOAD_SIGTERM_WAITS": "1",
    "OFFLOAD_CHECKPOINT_AT": "1700000000",
    "MASTER_PORT": "23456",
    "RANK": "1",
}


def test_scheduler_variables_are_removed_then_restored(monkeypatch):
    for name, value in INHERITED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    monkeypatch.setenv("HOME_AWAY", "kept")
    with clean_env() as removed:
        assert removed == INHERITED
        assert not any(name in os.environ for name in INHERITED)
        assert os.environ["SLURM_CONF"] == "/etc/slurm/slurm.conf"  # configuration, kept
        assert os.environ["HOME_AWAY"] == "kept"
        os.environ["SLURM_JOB_ID"] = "set inside"
        os.environ["NEW_ONE"] = "stays"
    assert {name: os.environ[name] for name in INHERITED} == INHERITED
    assert os.environ["NEW_ONE"] == "stays"
    monkeypatch.delenv("NEW_ONE")


def test_the_job_side_variables_of_offload_are_removed(monkeypatch):
    """A job submitted inside the block must not checkpoint at the current job's time."""
    for name in checkpointing.JOB_VARIABLES:
        monkeypatch.setenv(name, "1")
    with clean_env() as removed:
        assert set(checkpointing.JOB_VARIABLES) <= set(removed)
        assert not any(name in os.environ for name in checkpointing.JOB_VARIABLES)


def test_keep_leaves_named_variables(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_PROCID", "0")
    with clean_env(keep=["SLURM_JOB_ID"]) as removed:
        assert removed == {"SLURM_PROCID": "0"}
        assert os.environ["SLURM_JOB_ID"] == "12"
    assert os.environ["SLURM_PROCID"] == "0"


def test_variables_come_back_when_the_block_raises(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    with pytest.raises(RuntimeError), clean_env():
        raise RuntimeError("inside")
    assert os.environ["SLURM_JOB_ID"] == "12"


PROBE = """
from offload.core import JobEnvironment

try:
    print(JobEnvironment.current().job_id)
except RuntimeError:
    print("not in a job")
"""


def what_a_child_process_sees():
    probe = [sys.executable, "-c", PROBE]
    outside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    with clean_env():
        inside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    return outside, inside


def test_processes_started_in_the_block_are_not_taken_for_the_job(tmp_path):
    job = LocalExecutor(tmp_path / "jobs").submit(what_a_child_process_sees)
    outside, inside = job.result(timeout=60)
    assert outside == job.job_id  # without clean_env, a child believes it is part of the job
    assert inside == "not in a job"
