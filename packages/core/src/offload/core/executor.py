"""Executor: submits functions as jobs to one backend."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from . import layout, serialization
from .backend import Backend, LaunchRequest
from .checkpointing import DEFAULT_MAX_NUM_TIMEOUT, DEFAULT_SIGNAL
from .errors import OffloadError
from .job import Job
from .parameters import validate_parameters
from .plugins import PluginManager, get_plugin_manager
from .submission import DelayedSubmission

logger = logging.getLogger("offload.core.executor")

R = TypeVar("R")


class Executor:
    """Submits functions as jobs to one backend, with one set of parameters.

    ``folder`` holds the jobs' files (see :mod:`offload.core.layout`); it is created private to
    its owner. ``backend`` names an installed backend (``"local"``, ``"slurm"``...). Keyword
    arguments are job parameters, as for :meth:`update_parameters`. ``python`` is the interpreter
    that runs the jobs (default: the one running this code).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        backend: str,
        *,
        python: str | None = None,
        plugin_manager: PluginManager | None = None,
        **parameters: Any,
    ) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self._plugins = plugin_manager or get_plugin_manager()
        self._backend: Backend = self._plugins.backend(backend)
        self.python = python or sys.executable
        self.parameters: dict[str, Any] = {}
        self._own: dict[str, Any] = {}
        self._batch: list[tuple[DelayedSubmission[Any], Job[Any]]] | None = None
        self.update_parameters(**parameters)

    @property
    def backend(self) -> str:
        """The name of the backend this executor submits to."""
        return self._backend.name

    def update_parameters(self, **parameters: Any) -> None:
        """Set job parameters for the next submissions.

        Generic names work on every backend: ``timeout_min``, ``mem_gb``, ``cpus_per_task``,
        ``gpus_per_node``, ``tasks_per_node``, ``nodes``, ``name`` and ``env_vars`` (a dict of
        environment variables set in the job). A backend's own parameters carry its name as a
        prefix (``slurm_partition``); those of other installed backends are checked and ignored.
        A misspelled name raises :class:`~offload.core.errors.ParameterError` naming the closest
        valid ones.
        """
        if self._batch is not None:
            raise OffloadError(
                "update_parameters cannot be called inside 'with executor.batch():'"
                " (all jobs of a batch share their parameters)"
            )
        others = [b.spec for b in self._plugins.backends().values() if b is not self._backend]
        merged = {**self.parameters, **parameters}
        self._own = validate_parameters(merged, self._backend.spec, others)
        self.parameters = merged

    # -- submitting ------------------------------------------------------------------------

    def submit(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> Job[R]:
        """Run ``function(*args, **kwargs)`` as a job; returns its :class:`Job` at once.

        The call is pickled now: an unpicklable function or argument raises
        :class:`~offload.core.errors.SerializationError` here, naming it.
        """
        submission = DelayedSubmission(function, *args, **kwargs)
        if self._batch is not None:
            job: Job[R] = Job(self._backend, layout.JobPaths(Path()), self._num_tasks)
            self._batch.append((submission, job))
            return job
        return self._submit([submission])[0]

    def map_array(self, function: Callable[..., R], *iterables: Iterable[Any]) -> list[Job[R]]:
        """Run ``function`` on each set of arguments taken from ``iterables``, as one array.

        ``map_array(f, [1, 2], [3, 4])`` runs ``f(1, 3)`` and ``f(2, 4)``. Returns one job per
        element, in order. The iterables must have equal lengths.
        """
        columns = [list(iterable) for iterable in iterables]
        lengths = {len(column) for column in columns}
        if len(lengths) > 1:
            raise ValueError(f"map_array got iterables of different lengths: {sorted(lengths)}")
        submissions = [DelayedSubmission(function, *row) for row in zip(*columns, strict=True)]
        if self._batch is not None:
            raise OffloadError(
                "map_array cannot be called inside 'with executor.batch():'; "
                "call submit for each job instead"
            )
        return self._submit(submissions) if submissions else []

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the ``submit`` calls of a ``with`` block and submit them as one array.

        The jobs get their ids when the block ends. If the block raises, nothing is submitted.
        """
        if self._batch is not None:
            raise OffloadError("batch() blocks cannot be nested")
        self._batch = []
        try:
            yield
        except BaseException:
            self._batch = None
            raise
        pending, self._batch = self._batch, None
        if not pending:
            return
        submitted = self._submit([submission for submission, _ in pending])
        for (_, job), done in zip(pending, submitted, strict=True):
            job.paths = done.paths
            job._job_id = done.job_id

    def planned_request(self, num_jobs: int = 1) -> LaunchRequest:
        """The :class:`LaunchRequest` the next submission of ``num_jobs`` jobs would get.

        For dry runs: its group folder has a fresh name and is not created.
        """
        if num_jobs < 1:
            raise ValueError(f"num_jobs must be at least 1, not {num_jobs}")
        group_dir = self.folder / layout.new_group_name()
        jobs = [layout.JobPaths(group_dir / str(index)) for index in range(num_jobs)]
        return LaunchRequest(group_dir, jobs, dict(self._own), self.python)

    @property
    def _num_tasks(self) -> int:
        return int(self._own.get("nodes", 1)) * int(self._own.get("tasks_per_node", 1))

    def _submit(self, submissions: list[DelayedSubmission[Any]]) -> list[Job[Any]]:
        started = time.perf_counter()
        metadata = {
            "backend": self.backend,
            "num_tasks": self._num_tasks,
            "num_jobs": len(submissions),
            "created": time.time(),
            "checkpoint_signal": self._own.get("checkpoint_signal", DEFAULT_SIGNAL),
            "max_num_timeout": self._own.get("max_num_timeout", DEFAULT_MAX_NUM_TIMEOUT),
        }
        if self._backend.plugin is not None:
            metadata["plugin"] = dataclasses.asdict(self._backend.plugin)
        jobs = layout.create_group(self.folder, len(submissions), metadata)
        group_dir = jobs[0].group_dir
        try:
            for submission, paths in zip(submissions, jobs, strict=True):
                try:
                    serialization.dump(submission, paths.submission)
                except Exception as error:
                    raise serialization.unpicklable_error(
                        submission.function, submission.args, submission.kwargs, error
                    ) from error
            request = LaunchRequest(group_dir, jobs, dict(self._own), self.python)
            ids = self._backend.submit(request)
        except BaseException:
            shutil.rmtree(group_dir, ignore_errors=True)
            raise
        layout.link_job_ids(self.folder, list(zip(ids, jobs, strict=True)))
        submitted: list[Job[Any]] = [
            Job(self._backend, paths, self._num_tasks, job_id)
            for job_id, paths in zip(ids, jobs, strict=True)
        ]
        self._backend.watcher.track((job.ref for job in submitted), submitted=True)
        logger.info(
            "submitted %d %s job(s) in %.3f s: %s",
            len(submitted),
            self.backend,
            time.perf_counter() - started,
            ", ".join(ids[:3]) + (" ..." if len(ids) > 3 else ""),
        )
        return submitted

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend} folder={str(self.folder)!r}>"
