"""A tour of offload: run functions as jobs and get their results back.

    python examples/demo.py [FOLDER]      (or: nox -s demo)

AutoExecutor picks the best backend installed here: Slurm on a cluster, else the local machine
(also when Slurm's commands are installed but no controller answers).
Job files and logs go to FOLDER (default: ./offload_logs). Exits 1 if any result is wrong.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from typing import Any

from offload.auto import AutoExecutor, choose_backend
from offload.core import JobEnvironment

failures: list[str] = []


def check(label: str, got: Any, expected: Any, start: float) -> None:
    """Print one line of the report (with the seconds since ``start``); remember failures."""
    ok = got == expected
    seconds = time.perf_counter() - start
    print(f"  {'ok  ' if ok else 'FAIL'} {label:<34} -> {got!r}  ({seconds:.2f} s)")
    if not ok:
        failures.append(f"{label}: got {got!r}, expected {expected!r}")


# The functions below run inside the jobs, in another process (or on another machine).


def slow_square(x: int) -> int:
    time.sleep(0.2)
    return x * x


def divide(a: float, b: float) -> float:
    return a / b


def where_am_i() -> str:
    env = JobEnvironment.current()
    return (
        f"rank {env.global_rank}/{env.num_tasks} (local rank {env.local_rank}) of "
        f"{env.backend} job {env.job_id} on {env.hostname or '?'}"
    )


def backend_here() -> str | None:
    """None (AutoExecutor's own choice), or "local" when Slurm's commands are installed but no
    controller answers (a stopped test cluster, a laptop with the Slurm client)."""
    if choose_backend() != "slurm":
        return None
    try:
        answered = subprocess.run(["sinfo", "--noheader"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        answered = None
    if answered is not None and answered.returncode == 0:
        return None
    print("Slurm's commands are here, but no Slurm controller answers: using the local machine.")
    return "local"


def main() -> int:
    folder = sys.argv[1] if len(sys.argv) > 1 else "offload_logs"
    executor = AutoExecutor(folder=folder, cluster=backend_here(), timeout_min=5)
    print(f"offload demo: backend {executor.cluster!r}, job files in {executor.folder}\n")

    print("1. One job: executor.submit(math.factorial, 20)")
    start = time.perf_counter()
    job = executor.submit(math.factorial, 20)
    check(f"job {job.job_id}", job.result(timeout=120), 2432902008176640000, start)

    print("\n2. An array of jobs: executor.map_array(slow_square, range(5))")
    start = time.perf_counter()
    jobs = executor.map_array(slow_square, range(5))
    print(f"  job ids: {', '.join(j.job_id for j in jobs)}")
    check("results", [j.result(timeout=120) for j in jobs], [0, 1, 4, 9, 16], start)

    print("\n3. A batch: submits inside 'with executor.batch():' go out as one array")
    start = time.perf_counter()
    with executor.batch():
        batch = [executor.submit(pow, 2, n) for n in (8, 16, 32)]
    print(f"  job ids: {', '.join(j.job_id for j in batch)}")
    check("results", [j.result(timeout=120) for j in batch], [256, 65536, 2**32], start)

    print("\n4. A job that fails: executor.submit(divide, 1, 0)")
    start = time.perf_counter()
    failing = executor.submit(divide, 1, 0)
    try:
        failing.result(timeout=120)
    except ZeroDivisionError as error:
        check(f"job {failing.job_id} raised", type(error).__name__, "ZeroDivisionError", start)
        remote = getattr(error.__cause__, "traceback_text", "").rstrip().splitlines()
        print("  the remote traceback is attached as error.__cause__ (its first and last lines):")
        for line in [*remote[:1], "  ...", *remote[-4:]]:
            print(f"    | {line}")
        if not any("in divide" in line for line in remote):
            failures.append("the remote traceback does not name the function that failed")
    else:
        check(f"job {failing.job_id} raised", None, "ZeroDivisionError", start)

    print("\n5. One job, two ranks: tasks_per_node=2, each rank reads its JobEnvironment")
    executor.update_parameters(tasks_per_node=2)
    start = time.perf_counter()
    multi = executor.submit(where_am_i)
    ranks = multi.results(timeout=120)  # one value per rank
    for line in ranks:
        print(f"    {line}")
    check(f"job {multi.job_id}", [r.split(" (")[0] for r in ranks], ["rank 0/2", "rank 1/2"], start)

    if failures:
        print(f"\n{len(failures)} check(s) FAILED:", *failures, sep="\n  ")
        return 1
    print(f"\nAll results are right. Logs and results of every job are in {executor.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
