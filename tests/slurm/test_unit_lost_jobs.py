"""A Slurm job that ends without a result is a JobError naming the state, with advice and the
log tail; here sacct is a fake on PATH that reports each terminal state."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from offload.core import Job, JobError, JobPaths
from offload.core.plugins import get_plugin_manager

_IDS = itertools.count(990001)


@pytest.mark.parametrize(
    ("native", "state", "advice"),
    [
        ("OUT_OF_MEMORY", "OUT_OF_MEMORY", "raise mem_gb"),
        ("OUT_OF_ME+", "OUT_OF_MEMORY", "raise mem_gb"),
        ("NODE_FAIL", "NODE_FAIL", "node failed"),
        ("TIMEOUT", "TIMEOUT", "raise timeout_min"),
        ("CANCELLED by 1000", "CANCELLED", "was cancelled"),
        ("BOOT_FAIL", "FAILED", ""),
    ],
)
def test_a_terminal_state_without_result_is_a_clear_error(
    native: str, state: str, advice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = str(next(_IDS))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(f"#!/bin/sh\necho '{job_id}|{native}|0:125|None'\n")
    (bin_dir / "squeue").write_text("#!/bin/sh\nexit 0\n")
    for fake in bin_dir.iterdir():
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    job_dir = tmp_path / "jobs" / "group" / "0"
    job_dir.mkdir(parents=True)
    (job_dir / "stderr.0.log").write_text("training step 41\nslurmstepd: error: the end\n")
    (job_dir / "launcher.log").write_text("srun: error: node1: task 0: Killed\n")

    backend = get_plugin_manager().backend("slurm")
    monkeypatch.setattr(backend, "spec", dataclasses.replace(backend.spec, result_grace=0.0))
    job: Job[object] = Job(backend, JobPaths(job_dir), 1, job_id)
    backend.watcher.track([job.ref])
    backend.watcher.expect_change()
    with pytest.raises(JobError) as raised:
        job.result(timeout=30)
    error = raised.value
    assert error.state == state
    assert error.native_state == native
    message = str(error)
    assert f"slurm job {job_id} ended in state {state}" in message
    assert advice in message
    assert "slurmstepd: error: the end" in message, "the rank's stderr is quoted"
    assert "srun: error: node1: task 0: Killed" in message, "so is the batch script's log"
