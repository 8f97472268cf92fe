"""The submitting side of the local backend: starts supervisors, tracks them, cancels them."""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.core import JobRef, JobState, JobStatus, LaunchRequest, SubmissionError, checkpointing
from offload.core.layout import JobPaths

from . import spawner, supervisor
from .gpus import GpuPool, visible_gpus

logger = logging.getLogger("offload.local")

CANCEL_MARKER = "local-cancelled"

SUBMITTER_JOB_VARIABLES = (
    *checkpointing.JOB_VARIABLES,
    supervisor.JOB_ID,
    supervisor.ARRAY_JOB_ID,
    supervisor.ARRAY_TASK_ID,
    supervisor.RANK,
    supervisor.NUM_TASKS,
)
"""Variables that describe the job the submitter runs in, if any: a new job does not inherit
them (its own are set by the launcher and the supervisor)."""


@dataclass
class _Launch:
    job_id: str
    paths: JobPaths
    request: LaunchRequest
    array_index: int | None
    gpus: int = field(init=False)

    def __post_init__(self) -> None:
        self.gpus = int(self.request.parameters.get("gpus_per_node", 0))


def _limits(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The supervisor's time limit and checkpoint signal, from the job's parameters."""
    timeout_min = parameters.get("timeout_min")
    timeout = float(timeout_min) * 60 if timeout_min else None
    return {
        "timeout": timeout,
        "signal_delay": checkpointing.signal_delay(parameters) if timeout else 0.0,
        "checkpoint_signal": int(checkpointing.checkpoint_signal(parameters)),
    }


class _SpawnerClient:
    """The caller's end of one :mod:`offload.local.spawner` process."""

    def __init__(self, python: str, on_exit: Callable[[int, int], None]) -> None:
        self.environment = dict(os.environ)
        self._process = subprocess.Popen(
            [python, "-m", "offload.local.spawner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            env=self.environment,
        )
        self._replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._on_exit = on_exit
        threading.Thread(target=self._read, name="offload-local-spawner", daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            if "exited" in message:
                self._on_exit(int(message["exited"]), int(message["status"]))
            else:
                self._replies.put(message)
        self._replies.put({"error": f"the spawner process ended (code {self._process.wait()})"})

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        """Let the spawner end (the supervisors it started go on)."""
        if self._process.stdin is not None:
            self._process.stdin.close()

    def start(self, request: dict[str, Any]) -> int:
        """Start a supervisor; its pid."""
        assert self._process.stdin is not None
        with self._lock:
            try:
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            except OSError as error:
                raise SubmissionError(f"the local spawner process is gone: {error}") from error
            reply = self._replies.get()
        if "error" in reply:
            raise SubmissionError(f"the local spawner could not start the job: {reply['error']}")
        return int(reply["started"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalLauncher:
    """Starts each job as a supervisor process, in submission order, as GPUs allow.

    Supervisors are forked from a warm spawner process when the job's environment allows it,
    and started as a new interpreter otherwise.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._queue: collections.deque[_Launch] = collections.deque()
        self._gpu_pool: GpuPool | None = None
        self._spawners: dict[str, _SpawnerClient] = {}
        self._pids: dict[str, int] = {}  # job id -> supervisor pid, for jobs started here
        self._exits: dict[int, int] = {}  # supervisor pid -> wait status, once it ended
        self._devices: dict[int, list[str]] = {}  # supervisor pid -> GPUs to give back
        self._exits_lock = threading.Lock()  # never held while waiting for anything

    @property
    def gpu_pool(self) -> GpuPool:
        with self._lock:
            if self._gpu_pool is None:
                self._gpu_pool = GpuPool(visible_gpus())
            return self._gpu_pool

    def submit(self, request: LaunchRequest) -> list[str]:
        parameters = request.parameters
        if parameters.get("nodes", 1) != 1:
            raise SubmissionError(
                "The local backend runs jobs on this machine only: nodes must be "
                "1 (use tasks_per_node for several processes)."
            )
        gpus = int(parameters.get("gpus_per_node", 0))
        if gpus and gpus > len(self.gpu_pool.devices):
            raise SubmissionError(
                f"The job asks for {gpus} GPU(s) but this machine shows "
                f"{len(self.gpu_pool.devices)} (CUDA_VISIBLE_DEVICES or nvidia-smi)."
            )
        is_array = len(request.jobs) > 1
        launches = [
            _Launch(
                f"{request.group_dir.name}_{index}", paths, request, index if is_array else None
            )
            for index, paths in enumerate(request.jobs)
        ]
        for launch in launches:
            supervisor.write_status(launch.paths.job_dir, state="PENDING", submitter=os.getpid())
        with self._lock:
            self._queue.extend(launches)
        self._start_ready()
        return [launch.job_id for launch in launches]

    def _start_ready(self) -> None:
        with self._lock:
            while self._queue:
                launch = self._queue[0]
                devices: list[str] = []
                if launch.gpus:
                    taken = self.gpu_pool.take(launch.gpus)
                    if taken is None:
                        return  # first come, first served: later jobs wait behind this one
                    devices = taken
                self._queue.popleft()
                try:
                    pid = self._start(launch, devices)
                except (OSError, SubmissionError) as error:
                    supervisor.write_status(launch.paths.job_dir, state="FAILED", reason=str(error))
                    self.gpu_pool.give_back(devices)
                    continue
                self._pids[launch.job_id] = pid
                with self._exits_lock:
                    ended_already = pid in self._exits
                    if devices and not ended_already:
                        self._devices[pid] = devices
                if devices and ended_already:
                    self.gpu_pool.give_back(devices)
                logger.debug("local job %s started as pid %d", launch.job_id, pid)

    def _environment(self, launch: _Launch, devices: list[str]) -> dict[str, str]:
        environment = _inherited(os.environ)
        environment.update(launch.request.env_vars)
        environment[supervisor.JOB_ID] = launch.job_id
        for name in (supervisor.ARRAY_JOB_ID, supervisor.ARRAY_TASK_ID):
            environment.pop(name, None)
        if launch.array_index is not None:
            environment[supervisor.ARRAY_JOB_ID] = launch.request.group_dir.name
            environment[supervisor.ARRAY_TASK_ID] = str(launch.array_index)
        if launch.gpus:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        return environment

    def _start(self, launch: _Launch, devices: list[str]) -> int:
        """Start the job's supervisor; its pid."""
        request = launch.request
        environment = self._environment(launch, devices)
        limits = _limits(request.parameters)
        if startup_variables(environment) == startup_variables(os.environ):
            return self._spawner(request.python).start(
                {
                    "job_dir": str(launch.paths.job_dir),
                    "ntasks": request.num_tasks,
                    **limits,
                    "env": environment,
                    "cwd": os.getcwd(),
                }
            )
        return self._exec(launch, environment, limits)

    def _spawner(self, python: str) -> _SpawnerClient:
        """A live spawner for ``python`` that started with this process's startup variables."""
        client = self._spawners.get(python)
        if (
            client is None
            or not client.alive
            or startup_variables(client.environment) != startup_variables(os.environ)
        ):
            if client is not None:
                client.close()
            client = self._spawners[python] = _SpawnerClient(python, self._exited)
        return client

    def _exec(self, launch: _Launch, environment: dict[str, str], limits: dict[str, Any]) -> int:
        """Start the supervisor as a new interpreter (for jobs that change startup variables)."""
        command = [
            launch.request.python,
            "-m",
            "offload.local.supervisor",
            str(launch.paths.job_dir),
            "--ntasks",
            str(launch.request.num_tasks),
        ]
        if limits["timeout"]:
            command += ["--timeout", str(limits["timeout"])]
            command += ["--signal-delay", str(limits["signal_delay"])]
            command += ["--checkpoint-signal", str(limits["checkpoint_signal"])]
        log = os.open(launch.paths.stderr(0), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=environment,
                start_new_session=True,
            )
        finally:
            os.close(log)
        threading.Thread(
            target=lambda: self._exited(process.pid, _wait_status(process)),
            name=f"offload-local-{launch.job_id}",
            daemon=True,
        ).start()
        return process.pid

    def _exited(self, pid: int, status: int) -> None:
        """Called from a reader thread when a supervisor ended; must not wait for the launcher."""
        with self._exits_lock:
            self._exits[pid] = status
            devices = self._devices.pop(pid, None)
        if devices:
            self.gpu_pool.give_back(devices)
            # starting queued jobs waits for the spawner's replies, which this thread delivers
            threading.Thread(
                target=self._start_ready, name="offload-local-queue", daemon=True
            ).start()

    # -- status and cancel -------------------------------------------------------------------

    def status(self, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus]:
        return {ref.job_id: self._status(ref) for ref in jobs}

    def _status(self, ref: JobRef) -> JobStatus:
        job_dir = ref.paths.job_dir
        pid = self._pids.get(ref.job_id)
        exit_status = self._exits.get(pid) if pid is not None else None
        recorded = supervisor.read_status(job_dir)  # read after the exit: a final state comes first
        if recorded is None:
            return JobStatus(JobState.UNKNOWN, "", f"no {supervisor.STATUS_FILE} in {job_dir}")
        state = recorded["state"]
        if state not in ("PENDING", "RUNNING"):
            return JobStatus(JobState(state), state, recorded.get("reason", ""))
        if pid is not None:
            gone = exit_status is not None
        elif state == "RUNNING":
            gone = not _alive(int(recorded["pid"]))
        else:
            submitter = int(recorded.get("submitter", 0))
            if submitter != os.getpid() and not _alive(submitter):
                return JobStatus(
                    JobState.FAILED,
                    "LOST",
                    f"the process that submitted it (pid {submitter}) ended before starting it",
                )
            gone = False
        if not gone:
            waiting = any(launch.job_id == ref.job_id for launch in list(self._queue))
            return JobStatus(JobState(state), state, "waiting for GPUs" if waiting else "")
        recorded = supervisor.read_status(job_dir) or recorded
        if recorded["state"] not in ("PENDING", "RUNNING"):
            return JobStatus(
                JobState(recorded["state"]), recorded["state"], recorded.get("reason", "")
            )
        if (job_dir / CANCEL_MARKER).exists():
            return JobStatus(JobState.CANCELLED, "CANCELLED", "cancelled before it started")
        how = (
            f" ({supervisor.describe_wait_status(exit_status)})" if exit_status is not None else ""
        )
        return JobStatus(
            JobState.FAILED, "LOST", f"its supervisor process ended{how} without recording an end"
        )

    def cancel(self, jobs: Sequence[JobRef]) -> None:
        for ref in jobs:
            job_dir = ref.paths.job_dir
            with self._lock:
                queued = [launch for launch in self._queue if launch.job_id == ref.job_id]
                for launch in queued:
                    self._queue.remove(launch)
            if queued:
                supervisor.write_status(
                    job_dir, state="CANCELLED", reason="cancelled while waiting"
                )
                continue
            recorded = supervisor.read_status(job_dir) or {}
            if recorded.get("state") not in (None, "PENDING", "RUNNING"):
                continue  # already over
            Path(job_dir / CANCEL_MARKER).touch(mode=0o600)
            pid = self._pids.get(ref.job_id, recorded.get("pid"))
            if pid is None:
                supervisor.write_status(
                    job_dir, state="CANCELLED", reason="cancelled before it started"
                )
                continue
            try:
                os.killpg(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass


def _inherited(variables: Mapping[str, str]) -> dict[str, str]:
    """What a job inherits of ``variables``: all but those of the job the submitter runs in
    (a job submitted from inside a Slurm job would otherwise checkpoint at the outer job's
    time, and a rank's own variables would describe the outer job)."""
    return {k: v for k, v in variables.items() if k not in SUBMITTER_JOB_VARIABLES}


def startup_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """The variables a process reads only when it starts (so a forked job cannot change them)."""
    return {k: v for k, v in variables.items() if k.startswith(spawner.STARTUP_PREFIXES)}


def _wait_status(process: subprocess.Popen[bytes]) -> int:
    code = process.wait()
    return (-code) & 0x7F if code < 0 else code << 8
