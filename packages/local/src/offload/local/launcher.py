"""The submitting side of the local backend: starts supervisors, tracks them, cancels them."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from offload.core import JobRef, JobState, JobStatus, LaunchRequest, SubmissionError
from offload.core.layout import JobPaths

from . import supervisor
from .gpus import GpuPool, visible_gpus

logger = logging.getLogger("offload.local")

CANCEL_MARKER = "local-cancelled"


@dataclass
class _Launch:
    job_id: str
    paths: JobPaths
    request: LaunchRequest
    array_index: int | None
    gpus: int = field(init=False)

    def __post_init__(self) -> None:
        self.gpus = int(self.request.parameters.get("gpus_per_node", 0))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalLauncher:
    """Starts each job as a supervisor process, in submission order, as GPUs allow."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._queue: collections.deque[_Launch] = collections.deque()
        self._gpu_pool: GpuPool | None = None

    @property
    def gpu_pool(self) -> GpuPool:
        with self._lock:
            if self._gpu_pool is None:
                self._gpu_pool = GpuPool(visible_gpus())
            return self._gpu_pool

    def submit(self, request: LaunchRequest) -> list[str]:
        parameters = request.parameters
        if parameters.get("nodes", 1) != 1:
            raise SubmissionError("The local backend runs jobs on this machine only: nodes must be "
                                  "1 (use tasks_per_node for several processes).")
        gpus = int(parameters.get("gpus_per_node", 0))
        if gpus and gpus > len(self.gpu_pool.devices):
            raise SubmissionError(
                f"The job asks for {gpus} GPU(s) but this machine shows "
                f"{len(self.gpu_pool.devices)} (CUDA_VISIBLE_DEVICES or nvidia-smi)."
            )
        is_array = len(request.jobs) > 1
        launches = [
            _Launch(f"{request.group_dir.name}_{index}", paths, request, index if is_array else None)
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
                self._start(launch, devices)

    def _start(self, launch: _Launch, devices: list[str]) -> None:
        request = launch.request
        environment = dict(os.environ)
        environment.update(request.env_vars)
        environment[supervisor.JOB_ID] = launch.job_id
        for name in (supervisor.ARRAY_JOB_ID, supervisor.ARRAY_TASK_ID):
            environment.pop(name, None)
        if launch.array_index is not None:
            environment[supervisor.ARRAY_JOB_ID] = request.group_dir.name
            environment[supervisor.ARRAY_TASK_ID] = str(launch.array_index)
        if launch.gpus:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        command = [request.python, "-m", "offload.local.supervisor", str(launch.paths.job_dir),
                   "--ntasks", str(request.num_tasks)]
        timeout_min = request.parameters.get("timeout_min")
        if timeout_min:
            command += ["--timeout", str(float(timeout_min) * 60)]
        log = os.open(launch.paths.stderr(0), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       env=environment, start_new_session=True)
        except OSError as error:
            supervisor.write_status(launch.paths.job_dir, state="FAILED",
                                    reason=f"could not start {request.python}: {error}")
            if devices:
                self.gpu_pool.give_back(devices)
            return
        finally:
            os.close(log)
        self._processes[launch.job_id] = process
        logger.debug("local job %s started as pid %d", launch.job_id, process.pid)
        if devices:
            threading.Thread(target=self._release_after, args=(process, devices),
                             name=f"offload-local-gpus-{launch.job_id}", daemon=True).start()

    def _release_after(self, process: subprocess.Popen[bytes], devices: list[str]) -> None:
        process.wait()
        self.gpu_pool.give_back(devices)
        self._start_ready()

    # -- status and cancel -------------------------------------------------------------------

    def status(self, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus]:
        return {ref.job_id: self._status(ref) for ref in jobs}

    def _status(self, ref: JobRef) -> JobStatus:
        job_dir = ref.paths.job_dir
        process = self._processes.get(ref.job_id)
        exited = process is not None and process.poll() is not None
        recorded = supervisor.read_status(job_dir)  # read after poll(): a final state is written before exit
        if recorded is None:
            return JobStatus(JobState.UNKNOWN, "", f"no {supervisor.STATUS_FILE} in {job_dir}")
        state = recorded["state"]
        if state not in ("PENDING", "RUNNING"):
            return JobStatus(JobState(state), state, recorded.get("reason", ""))
        if process is not None:
            gone = exited
        elif state == "RUNNING":
            gone = not _alive(int(recorded["pid"]))
        else:
            submitter = int(recorded.get("submitter", 0))
            if submitter != os.getpid() and not _alive(submitter):
                return JobStatus(JobState.FAILED, "LOST",
                                 f"the process that submitted it (pid {submitter}) ended before starting it")
            gone = False
        if not gone:
            waiting = any(launch.job_id == ref.job_id for launch in list(self._queue))
            reason = "waiting for GPUs" if waiting else ""
            return JobStatus(JobState(state), state, reason)
        recorded = supervisor.read_status(job_dir) or recorded
        if recorded["state"] not in ("PENDING", "RUNNING"):
            return JobStatus(JobState(recorded["state"]), recorded["state"], recorded.get("reason", ""))
        if (job_dir / CANCEL_MARKER).exists():
            return JobStatus(JobState.CANCELLED, "CANCELLED", "cancelled before it started")
        code = f" with code {process.returncode}" if process is not None else ""
        return JobStatus(JobState.FAILED, "LOST", f"its supervisor process exited{code} without recording an end")

    def cancel(self, jobs: Sequence[JobRef]) -> None:
        for ref in jobs:
            job_dir = ref.paths.job_dir
            with self._lock:
                queued = [launch for launch in self._queue if launch.job_id == ref.job_id]
                for launch in queued:
                    self._queue.remove(launch)
            if queued:
                supervisor.write_status(job_dir, state="CANCELLED", reason="cancelled while waiting")
                continue
            recorded = supervisor.read_status(job_dir) or {}
            if recorded.get("state") not in (None, "PENDING", "RUNNING"):
                continue  # already over
            Path(job_dir / CANCEL_MARKER).touch(mode=0o600)
            process = self._processes.get(ref.job_id)
            pid = process.pid if process is not None else recorded.get("pid")
            if pid is None:
                supervisor.write_status(job_dir, state="CANCELLED", reason="cancelled before it started")
                continue
            try:
                os.killpg(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
