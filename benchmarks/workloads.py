"""The benchmark's workloads, each for offload, for submitit and (where it applies) for a floor.

Every function returns the seconds it took; scheduler calls are counted around it by the caller.
The functions run inside jobs are defined here and pickled by value, so nodes need no copy of
this file.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ARRAY_TASKS = 200
SEPARATE_JOBS = 20
LOCAL_JOBS = 20
PARTITION = "debug"


def square(x: int) -> int:
    return x * x


def big_array(megabytes: int) -> Any:
    import numpy

    return numpy.ones(megabytes * 2**20 // 8, dtype=numpy.float64)


# -- executors ----------------------------------------------------------------------------------


def offload_slurm(folder: Path) -> Any:
    from offload.slurm import SlurmExecutor

    return SlurmExecutor(folder, timeout_min=10, slurm_partition=PARTITION)


def submitit_slurm(folder: Path) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(timeout_min=10, slurm_partition=PARTITION)
    return executor


def offload_slurm_importable(folder: Path) -> Any:
    """offload on Slurm, with this folder on the jobs' ``PYTHONPATH`` (for :mod:`tasks`)."""
    executor = offload_slurm(folder)
    executor.update_parameters(env_vars={"PYTHONPATH": str(Path(__file__).resolve().parent)})
    return executor


def offload_local(folder: Path) -> Any:
    from offload.local import LocalExecutor

    return LocalExecutor(folder, timeout_min=10)


def submitit_local(folder: Path) -> Any:
    import submitit

    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=10)
    return executor


# -- workloads ----------------------------------------------------------------------------------


def array_of_tasks(executor: Any, function: Any = square) -> float:
    """Workload 1: ``map_array`` of trivial tasks, to all results."""
    started = time.perf_counter()
    jobs = executor.map_array(function, range(ARRAY_TASKS))
    results = [job.result() for job in jobs]
    assert results == [x * x for x in range(ARRAY_TASKS)]
    return time.perf_counter() - started


def separate_jobs(executor: Any, count: int = SEPARATE_JOBS) -> float:
    """Workloads 2 and 4: ``count`` separate ``submit`` calls, then every result."""
    started = time.perf_counter()
    jobs = [executor.submit(square, x) for x in range(count)]
    assert [job.result() for job in jobs] == [x * x for x in range(count)]
    return time.perf_counter() - started


def one_job(executor: Any) -> float:
    """Workload 3: one job, submit to result."""
    started = time.perf_counter()
    assert executor.submit(square, 7).result() == 49
    return time.perf_counter() - started


def process_pool(count: int = LOCAL_JOBS) -> float:
    """Workload 4's other reference: the standard library's process pool, started cold."""
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor() as pool:
        futures = [pool.submit(square, x) for x in range(count)]
        assert [f.result() for f in futures] == [x * x for x in range(count)]
    return time.perf_counter() - started


def big_result(executor: Any, megabytes: int) -> float:
    """Workload 5: a job returns a large NumPy array; seconds from submit to the array here."""
    started = time.perf_counter()
    value = executor.submit(big_array, megabytes).result()
    assert value.nbytes == megabytes * 2**20
    return time.perf_counter() - started


def plain_file_io(folder: Path, megabytes: int) -> float:
    """Workload 5's floor: write the same bytes to a file and read them back."""
    import numpy

    value = big_array(megabytes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plain.bin"
    started = time.perf_counter()
    with open(path, "wb") as stream:
        stream.write(memoryview(value).cast("B"))
    with open(path, "rb") as stream:
        back = numpy.frombuffer(stream.read(), dtype=numpy.float64)
    assert back.nbytes == value.nbytes
    path.unlink()
    return time.perf_counter() - started


FLOOR_TASK = "import sys; print(int(sys.argv[1]) ** 2)"
FLOOR_TASK_WITH_CLOUDPICKLE = "import sys, cloudpickle; print(int(sys.argv[1]) ** 2)"


def bare_array_floor(folder: Path, tasks: int = ARRAY_TASKS, task: str = FLOOR_TASK) -> float:
    """Workload 1's floor: one bare ``sbatch --array`` of the same tasks, waited for by polling
    squeue every 0.25 s. ``task`` is the Python code each runs (the element's index in
    ``sys.argv[1]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "floor.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"#SBATCH --array=0-{tasks - 1}\n#SBATCH --partition={PARTITION}\n"
        f"#SBATCH --output={folder}/%a.out\n#SBATCH --time=10\n"
        f'{sys.executable} -c "{task}" $SLURM_ARRAY_TASK_ID\n'
    )
    started = time.perf_counter()
    job_id = subprocess.run(
        ["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=True
    ).stdout.strip()
    while subprocess.run(
        ["squeue", "--noheader", "--jobs", job_id, "--format=%i"], capture_output=True, text=True
    ).stdout.strip():
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    assert all((folder / f"{i}.out").exists() for i in range(tasks))
    return elapsed


def cpu_seconds() -> float:
    """CPU time used by this process so far (user + system)."""
    times = os.times()
    return times.user + times.system
