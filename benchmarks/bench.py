"""offload against submitit on the live Slurm test cluster: ``nox -s bench`` runs this.

    python benchmarks/bench.py [--repeat N] [--only 1,3,4] [--folder DIR]

Each workload runs with offload and with submitit in the same run, alternating, ``--repeat``
times; the table gives the median seconds of each, their ratio, and the scheduler calls
(sbatch, squeue, sacct, scontrol, scancel run by the client) of the median run. Workload 1 also
has its floor: the same tasks as one bare ``sbatch --array``, waited for by polling squeue every
0.25 s, and that floor again with tasks that import cloudpickle, as rebuilding a function sent
by value needs; offload runs it twice, with the function sent by value and with a function the
jobs import by name. Workload 6 waits 60 s on 2,000 held jobs and reports the client's CPU share.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tasks
import workloads
from counting import CallCounter

PENDING_JOBS = 2000
WINDOW = 60.0
"""Seconds workload 6 waits on its pending jobs."""


@dataclass
class Measure:
    """Repeated runs of one contender on one workload."""

    seconds: list[float] = field(default_factory=list)
    calls: list[Counter[str]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def median_run_calls(self) -> Counter[str]:
        """The calls, by command, of the run with the median number of calls."""
        ranked = sorted(self.calls, key=lambda calls: sum(calls.values()))
        return ranked[len(ranked) // 2] if ranked else Counter()

    def median_calls(self) -> int:
        return sum(self.median_run_calls().values())


@dataclass(frozen=True)
class Workload:
    number: int
    title: str
    contenders: dict[str, Callable[[Path], float]]
    unit: str = "s"
    once: bool = False  # a long measurement, run once whatever --repeat says


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
    """Workload 6: 2,000 held jobs, asked ``done()`` every second for a minute, as a caller
    polling its jobs would. Returns the client's CPU share (%); the scheduler calls counted are
    those of that minute only."""
    executor = make(folder)
    executor.update_parameters(slurm_additional_parameters={"hold": True})
    jobs = [
        job
        for start in range(0, PENDING_JOBS, 1000)  # two arrays: within MaxArraySize for both
        for job in executor.map_array(workloads.square, range(start, start + 1000))
    ]
    counter.take()  # the submissions are not part of the minute
    cpu, started = workloads.cpu_seconds(), time.perf_counter()
    while time.perf_counter() - started < WINDOW:
        assert not any([job.done() for job in jobs])
        time.sleep(1.0)
    share = 100 * (workloads.cpu_seconds() - cpu) / (time.perf_counter() - started)
    calls = counter.take()
    arrays = sorted({str(job.job_id).split("_")[0] for job in jobs})
    subprocess.run([counter.real["scancel"], *arrays], check=False)
    counter.restore(calls)
    return share


def plan(arguments: argparse.Namespace, counter: CallCounter) -> list[Workload]:
    """Every workload: its contenders, each a function of a fresh folder returning seconds."""
    w, size = workloads, arguments.megabytes
    return [
        Workload(1, f"{w.ARRAY_TASKS}-task array", {
            "offload": lambda f: w.array_of_tasks(w.offload_slurm(f)),
            "submitit": lambda f: w.array_of_tasks(w.submitit_slurm(f)),
            "offload, by reference": lambda f: w.array_of_tasks(
                w.offload_slurm_importable(f), tasks.square
            ),
            "floor (bare sbatch)": w.bare_array_floor,
            # what unpickling a function sent by value costs each task at least
            "floor + cloudpickle": lambda f: w.bare_array_floor(
                f, task=w.FLOOR_TASK_WITH_CLOUDPICKLE
            ),
        }),
        Workload(2, f"{w.SEPARATE_JOBS} submits", {
            "offload": lambda f: w.separate_jobs(w.offload_slurm(f)),
            "submitit": lambda f: w.separate_jobs(w.submitit_slurm(f)),
        }),
        Workload(3, "one job", {
            "offload": lambda f: w.one_job(w.offload_slurm(f)),
            "submitit": lambda f: w.one_job(w.submitit_slurm(f)),
        }),
        Workload(4, f"{w.LOCAL_JOBS} local jobs", {
            "offload": lambda f: w.separate_jobs(w.offload_local(f), w.LOCAL_JOBS),
            "submitit": lambda f: w.separate_jobs(w.submitit_local(f), w.LOCAL_JOBS),
            "ProcessPoolExecutor": lambda f: w.process_pool(),
        }),
        Workload(5, f"{size} MB result", {
            "offload": lambda f: w.big_result(w.offload_local(f), size),
            "submitit": lambda f: w.big_result(w.submitit_local(f), size),
            "plain file I/O": lambda f: w.plain_file_io(f, size),
        }),
        Workload(6, f"{PENDING_JOBS} pending, 1 min", {
            "offload": lambda f: waiting_on_pending(w.offload_slurm, f, counter),
            "submitit": lambda f: waiting_on_pending(w.submitit_slurm, f, counter),
        }, unit="% CPU", once=True),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="1,2,3,4,5,6", help="workload numbers, comma-separated")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--megabytes", type=int, default=1024, help="workload 5's array size")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the table into this page"
    )
    arguments = parser.parse_args(argv)
    wanted = {int(n) for n in arguments.only.split(",")}
    folder = arguments.folder or Path(tempfile.mkdtemp(prefix="offload-bench-"))
    counter = CallCounter(folder / "bin")
    counter.install()
    rows = []
    for workload in plan(arguments, counter):
        if workload.number in wanted:
            print(f"{workload.number}. {workload.title}", flush=True)
            repeat = 1 if workload.once else arguments.repeat
            rows.append((workload, measure(workload.contenders, repeat, folder, counter)))
    print_table(rows)
    if arguments.markdown:
        write_markdown(arguments.markdown, rows, sys.argv[1:] if argv is None else argv)
    return 0


Rows = list[tuple[Workload, dict[str, Measure]]]

TARGETS = [
    # (workload, contender, reference, at most this ratio of contender / reference)
    (1, "offload", "floor (bare sbatch)", 1.10),
    (1, "offload", "submitit", 0.8),
    (2, "offload", "submitit", 0.5),
    (4, "offload", "submitit", 0.3),
    (5, "offload", "plain file I/O", 2.0),  # at least half the throughput
]
CPU_TARGET = 2.0
"""Workload 6: the client's CPU share (%) while it waits, at most."""


def table(rows: Rows) -> list[list[str]]:
    """The result table: one line per contender of each workload."""
    lines = [["workload", "contender", "median", "vs offload", "scheduler calls"]]
    for workload, results in rows:
        base = results["offload"].median
        for name, result in results.items():
            ratio = result.median / base if base else float("nan")
            lines.append(
                [
                    f"{workload.number}. {workload.title}",
                    name,
                    f"{result.median:.2f} {workload.unit}",
                    f"{ratio:.2f}x",
                    describe_calls(result),
                ]
            )
    return lines


def describe_calls(result: Measure) -> str:
    """The scheduler calls of the median run: ``"7 (1 sbatch, 6 sacct)"``."""
    calls = result.median_run_calls()
    if not calls:
        return "0"
    parts = ", ".join(f"{count} {name}" for name, count in sorted(calls.items()))
    return f"{sum(calls.values())} ({parts})"


def verdicts(rows: Rows) -> list[str]:
    """Each target of the workloads that ran, with the measured ratio and whether it is met."""
    found = {workload.number: results for workload, results in rows}
    lines = []
    for number, contender, reference, limit in TARGETS:
        if number not in found:
            continue
        ratio = found[number][contender].median / found[number][reference].median
        what = f"{contender} / {reference} = {ratio:.2f}, target at most {limit:g}"
        lines.append(f"workload {number}: {what}: {_verdict(ratio <= limit)}")
    if 6 in found:
        cpu = found[6]["offload"].median
        lines.append(
            f"workload 6: {cpu:.2f} % CPU, target under {CPU_TARGET:g} %: "
            f"{_verdict(cpu < CPU_TARGET)}"
        )
    for number, results in sorted(found.items()):
        if "submitit" in results:
            ours, theirs = results["offload"].median_calls(), results["submitit"].median_calls()
            lines.append(
                f"workload {number}: scheduler calls {ours} (submitit {theirs}): "
                f"{_verdict(ours <= theirs)}"
            )
    return lines


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_table(rows: Rows) -> None:
    lines = table(rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    print()
    for index, line in enumerate(lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    print()
    for verdict in verdicts(rows):
        print(verdict)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_markdown(path: Path, rows: Rows, argv: list[str]) -> None:
    """Put the run's table, targets and setting between the markers of ``path``."""
    lines = table(rows)
    out = [f"| {' | '.join(lines[0])} |", f"|{'|'.join(' --- ' for _ in lines[0])}|"]
    out += [f"| {' | '.join(line)} |" for line in lines[1:]]
    out += ["", *(f"- {verdict}" for verdict in verdicts(rows)), ""]
    command = " ".join(["nox -s bench", *(["--", *argv] if argv else [])])
    out += [f"Run on {setting()}, with `{command}`."]
    text = path.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + "\n" + "\n".join(out) + "\n" + text[end:])
    print(f"table written to {path}")


def setting() -> str:
    """The date, the machine and the versions the run used."""
    import platform

    import submitit

    slurm = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{slurm}, submitit {submitit.__version__}"
    )


if __name__ == "__main__":
    sys.exit(main())
