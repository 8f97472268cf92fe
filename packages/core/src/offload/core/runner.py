"""The job side: load a job's submission, run it, and leave its outcome in the job's folder.

Backends start ``python -m offload.core.run <job_dir>`` once per rank (see :mod:`offload.core.run`);
in-process backends call :func:`run_job` directly.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import sys
from pathlib import Path

from . import checkpointing, plugins
from . import outcome as outcomes
from .backend import PluginOrigin
from .environment import JobEnvironment, in_process_environment
from .layout import GROUP_FILE, JobPaths
from .outcome import Outcome
from .submission import DelayedSubmission

logger = logging.getLogger("offload.core.runner")


def prepare_job_process() -> None:
    """Set up a process that exists to run a job: offload's log lines and crash tracebacks go
    to stderr (the root logger is left to the job's function)."""
    faulthandler.enable()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s offload %(levelname)s %(message)s"))
    offload_logger = logging.getLogger("offload")
    offload_logger.addHandler(handler)
    offload_logger.setLevel(logging.INFO)


def run_job(
    job_dir: Path, environment: JobEnvironment | None = None, *, in_process: bool = False
) -> Outcome:
    """Run the submission in ``job_dir`` as the rank ``environment`` describes.

    Writes ``result.<rank>.pkl`` atomically and returns the outcome. ``environment`` defaults to
    :meth:`JobEnvironment.current` for the backend that submitted the job. With ``in_process``,
    the outcome (and the original exception object) is also kept in memory for a caller in this
    same process.
    """
    paths = JobPaths(Path(job_dir))
    metadata = json.loads((paths.group_dir / GROUP_FILE).read_text())
    if "plugin" in metadata:
        plugins.use_job_plugin(PluginOrigin(**metadata["plugin"]))
    if environment is None:
        environment = JobEnvironment.current(metadata["backend"])
    rank = environment.global_rank
    logger.info(
        "job %s rank %d/%d starting on %s (pid %d)",
        environment.job_id,
        rank,
        environment.num_tasks,
        os.uname().nodename,
        os.getpid(),
    )
    try:
        submission, resumed = checkpointing.load_submission(paths, rank)
        if not isinstance(submission, DelayedSubmission):
            raise TypeError(f"{paths.submission} does not hold a DelayedSubmission")
        if resumed:
            logger.info("job %s rank %d resumes from its checkpoint", environment.job_id, rank)
        if rank == 0:
            (paths.job_dir / checkpointing.RESTART_MARKER).unlink(missing_ok=True)
        settings = checkpointing.Settings.from_metadata(metadata)
        guard: contextlib.AbstractContextManager[object] = (
            contextlib.nullcontext()  # signals belong to the caller's process then
            if in_process
            else checkpointing.CheckpointGuard(paths, environment, submission, settings)
        )
        with in_process_environment(environment), guard:
            value = submission.result()
        result = Outcome(success=True, value=value)
    except BaseException as error:  # the job's own failure, whatever it is, goes to the caller
        if isinstance(error, KeyboardInterrupt) and in_process:
            raise
        logger.info(
            "job %s rank %d raised %s: %s", environment.job_id, rank, type(error).__name__, error
        )
        result = Outcome.from_exception(error)
    written = outcomes.write(result, paths.result(rank))
    if in_process:
        outcomes.remember_in_process(paths.result(rank), written)
    logger.info(
        "job %s rank %d finished: %s",
        environment.job_id,
        rank,
        "success" if written.success else "error",
    )
    return written
