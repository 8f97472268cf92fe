"""What a backend declares about itself, and the handle core uses to call its hooks."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BackendNotFoundError, OffloadError, SubmissionError
from .layout import JobPaths, check_job_id
from .parameters import Parameter
from .states import JobStatus

if TYPE_CHECKING:
    import pluggy

    from .watcher import StatusWatcher

_NAME = re.compile(r"^[a-z][a-z0-9]*$")


def _always() -> bool:
    return True


@dataclass(frozen=True)
class BackendSpec:
    """A backend's answer to :func:`~offload.core.hookspecs.offload_backends`.

    Attributes:
        name: lower-case letters and digits; also the prefix of the backend's own parameters
            (``slurm`` → ``slurm_partition``) and the ``cluster=`` name in ``AutoExecutor``.
        description: one line shown in listings and errors.
        priority: ``AutoExecutor`` picks the available backend with the highest priority
            (a scheduler: 100 or more; the local machine: 10; in-process debugging: 0).
        is_available: cheap check that the backend can submit from here (e.g. its submit
            command is on ``PATH``).
        requirements: what ``is_available`` needs, said to the user when it is false.
        parameters: the backend's own parameters, each name starting with ``name + "_"``.
        poll_interval: shortest and longest time, in seconds, between two status queries of the
            watcher. Within them, queries are spaced by half the time since the newest job was
            submitted; the first comes the shortest interval after a submission.
        result_grace: seconds a result file may lag behind a terminal state (shared file
            systems); core waits that long before calling a job lost.
    """

    name: str
    description: str
    priority: int = 10
    is_available: Callable[[], bool] = _always
    requirements: str = ""
    parameters: Sequence[Parameter] = ()
    poll_interval: tuple[float, float] = (0.5, 10.0)
    result_grace: float = 0.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"backend name {self.name!r}: use lower-case letters and digits")
        prefix = self.name + "_"
        strays = [p.name for p in self.parameters if not p.name.startswith(prefix)]
        if strays:
            raise ValueError(
                f"backend {self.name!r}: parameters {strays} must start with {prefix!r}"
            )


@dataclass(frozen=True)
class JobRef:
    """A submitted job as the hooks see it: its native id and its folder."""

    job_id: str
    paths: JobPaths


@dataclass(frozen=True)
class LaunchRequest:
    """Submissions prepared by core for a backend to launch (one job, or an array of them).

    Each job's folder already holds its pickled submission. The backend starts, for every job and
    every rank, ``command(job_dir)`` on the node, with ``env_vars`` set and the rank's stdout and
    stderr going to ``paths.stdout(rank)`` and ``paths.stderr(rank)``.

    Attributes:
        group_dir: the folder holding every job of this request; job ``i`` lives in
            ``group_dir / str(i)``.
        jobs: one entry per job (array element), in order.
        parameters: validated parameters: the generic ones and the backend's own.
        python: the Python interpreter to run on the node.
    """

    group_dir: Path
    jobs: Sequence[JobPaths]
    parameters: Mapping[str, Any]
    python: str

    @property
    def num_tasks(self) -> int:
        """Ranks per job: ``nodes * tasks_per_node``."""
        return int(self.parameters.get("nodes", 1)) * int(self.parameters.get("tasks_per_node", 1))

    @property
    def env_vars(self) -> Mapping[str, str]:
        """Environment variables to set for every rank (the ``env_vars`` parameter)."""
        return dict(self.parameters.get("env_vars", {}))

    def command(self, job_dir: str | Path) -> list[str]:
        """The command that runs one rank of the job whose folder is ``job_dir``."""
        return [self.python, "-m", "offload.core.run", str(job_dir)]


@dataclass(frozen=True)
class PluginOrigin:
    """The entry-point name and module of a plugin: enough for a job's process to load that
    plugin alone, without scanning every installed distribution's entry points."""

    name: str
    module: str


class Backend:
    """Core's handle on one backend: its spec, and calls into its hooks."""

    def __init__(
        self, spec: BackendSpec, hook: pluggy.HookRelay, plugin: PluginOrigin | None = None
    ) -> None:
        self.spec = spec
        self.plugin = plugin
        """Where the plugin that declared this backend comes from, when it is a module."""
        self._hook = hook
        self._watcher: StatusWatcher | None = None
        self._watcher_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    def submit(self, request: LaunchRequest) -> list[str]:
        try:
            ids = self._hook.offload_submit(backend=self.name, request=request)
        except OffloadError:
            raise
        except Exception as error:  # a backend's own failure: keep its message and chain it
            raise SubmissionError(f"{self.name} backend could not submit: {error}") from error
        if ids is None:
            raise BackendNotFoundError(f"no plugin implements offload_submit for {self.name!r}")
        ids = [str(job_id) for job_id in ids]
        for job_id in ids:
            try:
                check_job_id(job_id)
            except OffloadError as error:
                raise SubmissionError(f"{self.name} backend returned a bad id: {error}") from None
        if len(ids) != len(request.jobs):
            raise SubmissionError(
                f"{self.name} backend returned {len(ids)} job ids for {len(request.jobs)} jobs"
            )
        return ids

    def status(self, jobs: Sequence[JobRef]) -> Mapping[str, JobStatus]:
        answer: Mapping[str, JobStatus] | None = self._hook.offload_status(
            backend=self.name, jobs=list(jobs)
        )
        if answer is None:
            raise BackendNotFoundError(f"no plugin implements offload_status for {self.name!r}")
        return answer

    def cancel(self, jobs: Sequence[JobRef]) -> None:
        done = self._hook.offload_cancel(backend=self.name, jobs=list(jobs))
        if done is None:
            raise BackendNotFoundError(f"no plugin implements offload_cancel for {self.name!r}")

    @property
    def watcher(self) -> StatusWatcher:
        """The process-wide :class:`~offload.core.watcher.StatusWatcher` of this backend."""
        with self._watcher_lock:
            if self._watcher is None:
                from .watcher import StatusWatcher

                self._watcher = StatusWatcher(self)
            return self._watcher


__all__ = ["Backend", "BackendSpec", "JobRef", "LaunchRequest"]
