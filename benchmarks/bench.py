"""offload against submitit on the live Slurm test cluster: ``nox -s bench`` runs this.

    python benchmarks/bench.py [--repeat N] [--only 1,3,4] [--folder DIR]

Each workload runs with offload and with submitit in the same run, alternating, ``--repeat``
times; the table gives the median seconds of each, their ratio, and the scheduler calls
(sbatch, squeue, sacct, scontrol, scancel run by the client) of the median run. Workload 1 also
has its floor: the same tasks as one bare ``sbatch --array``, waited for by polling squeue every
0.25 s. Workload 6 waits 60 s on 2,000 held jobs and reports the client's CPU share.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from counting import CallCounter


@dataclass
class Measure:
    """Repeated runs of one contender on one workload."""

    seconds: list[float] = field(default_factory=list)
    calls: list[Counter[str]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def median_calls(self) -> int:
        totals = sorted(sum(c.values()) for c in self.calls)
        return totals[len(totals) // 2] if totals else 0


@dataclass
class Row:
    workload: str
    contenders: dict[str, Measure]
    unit: str = "s"


def measure(
    contenders: dict[str, Callable[[Path], float]], repeat: int, folder: Path, counter: CallCounter
) -> dict[str, Measure]:
    """Run each contender ``repeat`` times, alternating between them."""
    results = {name: Measure() for name in contenders}
    for round_ in range(repeat):
        for name, run in contenders.items():
            counter.take()
            slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
            seconds = run(folder / f"{slug}-{round_}-{time.time_ns()}")
            results[name].seconds.append(seconds)
            results[name].calls.append(counter.take())
            print(f"  {name:<22} run {round_ + 1}: {seconds:8.2f} s", flush=True)
    return results


def waiting_on_pending(make: Callable[[Path], Any], folder: Path, counter: CallCounter) -> float:
    """Workload 6: wait 60 s on 2,000 held jobs; returns the client's CPU share (in %)."""
    executor = make(folder)
    if hasattr(executor, "update_parameters"):
        try:
            executor.update_parameters(slurm_additional_parameters={"hold": True})
        except Exception:  # submitit's own spelling
            executor.update_parameters(slurm_additional_parameters={"hold": ""})
    jobs = []
    for start in range(0, 2000, 1000):
        jobs += executor.map_array(workloads.square, range(start, start + 1000))
    counter.take()
    cpu, started = workloads.cpu_seconds(), time.perf_counter()
    deadline = started + 60
    while time.perf_counter() < deadline:
        if all(job.done() for job in jobs[:1]) and any(job.done() for job in jobs):
            break
        time.sleep(0.25)
    share = 100 * (workloads.cpu_seconds() - cpu) / (time.perf_counter() - started)
    arrays = sorted({str(job.job_id).split("_")[0] for job in jobs})
    import subprocess

    subprocess.run(["scancel", *arrays], check=False)
    return share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="1,2,3,4,5,6", help="workload numbers, comma-separated")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--megabytes", type=int, default=1024, help="workload 5's array size")
    arguments = parser.parse_args(argv)
    wanted = {int(n) for n in arguments.only.split(",")}
    folder = arguments.folder or Path(tempfile.mkdtemp(prefix="offload-bench-"))
    counter = CallCounter(folder / "bin")
    counter.install()
    rows: list[Row] = []
    w = workloads

    if 1 in wanted:
        print(f"1. map_array of {w.ARRAY_TASKS} trivial tasks on Slurm", flush=True)
        rows.append(
            Row(
                "1. array of 200",
                measure(
                    {
                        "offload": lambda f: w.array_of_tasks(w.offload_slurm(f)),
                        "submitit": lambda f: w.array_of_tasks(w.submitit_slurm(f)),
                        "floor (bare sbatch)": lambda f: w.bare_array_floor(f),
                    },
                    arguments.repeat,
                    folder,
                    counter,
                ),
            )
        )
    if 2 in wanted:
        print(f"2. {w.SEPARATE_JOBS} separate submits on Slurm", flush=True)
        rows.append(
            Row(
                "2. 20 submits",
                measure(
                    {
                        "offload": lambda f: w.separate_jobs(w.offload_slurm(f)),
                        "submitit": lambda f: w.separate_jobs(w.submitit_slurm(f)),
                    },
                    arguments.repeat,
                    folder,
                    counter,
                ),
            )
        )
    if 3 in wanted:
        print("3. one job, submit to result, on Slurm", flush=True)
        rows.append(
            Row(
                "3. one job",
                measure(
                    {
                        "offload": lambda f: w.one_job(w.offload_slurm(f)),
                        "submitit": lambda f: w.one_job(w.submitit_slurm(f)),
                    },
                    arguments.repeat,
                    folder,
                    counter,
                ),
            )
        )
    if 4 in wanted:
        print(f"4. {w.LOCAL_JOBS} jobs on the local machine", flush=True)
        rows.append(
            Row(
                "4. 20 local jobs",
                measure(
                    {
                        "offload": lambda f: w.separate_jobs(w.offload_local(f), w.LOCAL_JOBS),
                        "submitit": lambda f: w.separate_jobs(w.submitit_local(f), w.LOCAL_JOBS),
                        "ProcessPoolExecutor": lambda f: w.process_pool(),
                    },
                    arguments.repeat,
                    folder,
                    counter,
                ),
            )
        )
    if 5 in wanted:
        size = arguments.megabytes
        print(f"5. a {size} MB NumPy array returned by a local job", flush=True)
        rows.append(
            Row(
                f"5. {size} MB result",
                measure(
                    {
                        "offload": lambda f: w.big_result(w.offload_local(f), size),
                        "submitit": lambda f: w.big_result(w.submitit_local(f), size),
                        "plain file I/O": lambda f: (
                            f.mkdir(parents=True),
                            w.plain_file_io(f, size),
                        )[1],
                    },
                    arguments.repeat,
                    folder,
                    counter,
                ),
            )
        )
    if 6 in wanted:
        print("6. waiting 60 s on 2,000 pending jobs on Slurm (client CPU %)", flush=True)
        rows.append(
            Row(
                "6. 2,000 pending",
                measure(
                    {
                        "offload": lambda f: waiting_on_pending(w.offload_slurm, f, counter),
                        "submitit": lambda f: waiting_on_pending(w.submitit_slurm, f, counter),
                    },
                    1,
                    folder,
                    counter,
                ),
                unit="% CPU",
            )
        )

    print_table(rows)
    return 0


def print_table(rows: list[Row]) -> None:
    print()
    print(f"{'workload':<20} {'contender':<22} {'median':>10} {'vs offload':>11} {'calls':>6}")
    print("-" * 73)
    for row in rows:
        base = row.contenders["offload"].median
        for name, result in row.contenders.items():
            ratio = result.median / base if base else float("nan")
            value = f"{result.median:.2f} {row.unit}"
            print(
                f"{row.workload:<20} {name:<22} {value:>10} {ratio:>10.2f}x "
                f"{result.median_calls():>6}"
            )
        print()


if __name__ == "__main__":
    sys.exit(main())
