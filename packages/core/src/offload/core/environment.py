"""JobEnvironment: where a running job is, as told by the backend that launched it."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobEnvironment:
    """The job a piece of code runs in: its ids, its rank and the nodes it spans.

    Call :meth:`JobEnvironment.current` inside a job to get it.

    Attributes:
        backend: the backend that launched the job (``"slurm"``, ``"local"``...).
        job_id: the job's native id; for an array element, the element's own id.
        array_job_id: the id of the array the job belongs to, else ``None``.
        array_task_id: the job's index in its array, else ``None``.
        num_tasks: ranks in the job (``nodes * tasks_per_node``).
        num_nodes: nodes in the job.
        node: index of this node among ``hostnames``.
        global_rank: rank of this process among all of the job's ranks (0-based).
        local_rank: rank of this process on its node (0-based).
        hostnames: the job's nodes, in order.
    """

    backend: str
    job_id: str
    array_job_id: str | None = None
    array_task_id: int | None = None
    num_tasks: int = 1
    num_nodes: int = 1
    node: int = 0
    global_rank: int = 0
    local_rank: int = 0
    hostnames: tuple[str, ...] = field(default_factory=tuple)

    @property
    def hostname(self) -> str:
        """The name of the node this process runs on ("" if the backend did not say)."""
        return self.hostnames[self.node] if self.node < len(self.hostnames) else ""

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.num_tasks // max(1, self.num_nodes))

    @classmethod
    def current(cls, backend: str | None = None) -> JobEnvironment:
        """The environment of the job this code runs in.

        With ``backend``, only that backend's description is taken (jobs can be nested: a local
        job inside a Slurm allocation). Raises ``RuntimeError`` outside a job.
        """
        found = _in_process.get()
        if found is not None and backend in (None, found.backend):
            return found
        from .plugins import get_plugin_manager

        manager = get_plugin_manager()
        answers = manager.hook.offload_job_environment()
        if not any(backend in (None, answer.backend) for answer in answers):
            manager.load_remaining_entry_points()  # a job's process knows its own plugin first
            answers = manager.hook.offload_job_environment()
        for answer in answers:
            if backend in (None, answer.backend):
                return answer  # type: ignore[no-any-return]
        wanted = f"the {backend!r} backend" if backend else "any installed backend"
        raise RuntimeError(
            f"This process is not running inside an offload job of {wanted} "
            f"(recognised: {sorted(a.backend for a in answers) or 'none'})."
        )


_in_process: contextvars.ContextVar[JobEnvironment | None] = contextvars.ContextVar(
    "offload_job_environment", default=None
)


@contextlib.contextmanager
def in_process_environment(environment: JobEnvironment) -> Iterator[None]:
    """Make :meth:`JobEnvironment.current` answer ``environment`` (for jobs run in-process)."""
    token = _in_process.set(environment)
    try:
        yield
    finally:
        _in_process.reset(token)
