"""Submitting: one ``sbatch`` call per job or per array (split when over ``MaxArraySize``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from offload.core import JobRef, LaunchRequest, SubmissionError
from offload.core.serialization import atomic_writer

from . import cluster, commands
from .commands import SlurmCommandError
from .script import BatchScript, plan_chunks, render

logger = logging.getLogger("offload.slurm.submit")


def scripts_for(request: LaunchRequest) -> list[BatchScript]:
    """The batch scripts that submitting ``request`` takes: one, or one per array chunk."""
    if len(request.jobs) == 1:
        return [render(request, None)]
    parallelism = request.parameters.get("slurm_array_parallelism")
    chunks = plan_chunks(len(request.jobs), cluster.max_array_size(), parallelism)
    return [render(request, chunk) for chunk in chunks]


def write_script(script: BatchScript) -> None:
    """Write the script next to the jobs, private to its owner, atomically."""
    with atomic_writer(script.path, mode=0o700) as stream:  # executable, to run it by hand
        stream.write(script.text.encode())


def parse_job_id(output: str) -> str:
    """The id in ``sbatch --parsable`` output (``"123"`` or ``"123;cluster"``)."""
    job_id = output.strip().split(";", 1)[0]
    if not job_id.isdigit():
        raise SubmissionError(f"sbatch answered {output.strip()!r} instead of a job id")
    return job_id


def submit(request: LaunchRequest) -> list[str]:
    """Submit every job of ``request``; return their ids (``"123"``, or ``"123_0"``...)."""
    ids: list[str] = []
    submitted: list[str] = []
    try:
        for script in scripts_for(request):
            write_script(script)
            try:
                output = commands.run_with_retries(
                    ["sbatch", "--parsable", str(script.path)], idempotent=False
                )
            except SlurmCommandError as error:
                if error.returncode is None:
                    raise SubmissionError(
                        f"sbatch gave no answer ({error.message}); the controller may have "
                        f"queued the job all the same: look for it with squeue and scancel it "
                        f"(batch script: {script.path})"
                    ) from None
                raise SubmissionError(
                    f"sbatch refused the job: {error.message or error} "
                    f"(batch script: {script.path})"
                ) from None
            job_id = parse_job_id(output)
            submitted.append(job_id)
            if script.chunk is None:
                ids.append(job_id)
            else:
                ids.extend(f"{job_id}_{index}" for index in range(script.chunk.size))
    except BaseException:
        if submitted:  # a later chunk failed: do not leave half an array running
            logger.warning("cancelling the part already submitted: %s", ", ".join(submitted))
            try:
                cancel_ids(submitted)
            except Exception as error:  # keep the submission error; say what is left over
                logger.error("could not cancel %s (%s): cancel them with scancel", submitted, error)
        raise
    logger.debug(
        "submitted %d job(s) in %d sbatch call(s): %s", len(ids), len(submitted), submitted
    )
    return ids


def cancel_ids(ids: Sequence[str]) -> None:
    """``scancel`` the ids (jobs, array elements or whole arrays), many per call."""
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        try:
            commands.run_with_retries(["scancel", *chunk])
        except SlurmCommandError as error:
            # Ids that already ended make scancel complain; that is not a failure to cancel.
            if "already completing or completed" not in error.message and (
                "invalid job id" not in error.message.lower()
            ):
                raise


def cancel(jobs: Sequence[JobRef]) -> None:
    cancel_ids([job.job_id for job in jobs])


def requeue(job_id: str) -> None:
    """Inside a job: requeue it (``scontrol requeue``; this stops the job's ranks).

    ``job_id`` must name this job alone: an array element by ``<array>_<index>``, as
    :class:`JobEnvironment` gives it (the element's ``SLURM_JOB_ID`` may be the array's own id,
    which means every element to ``scontrol``). Slurm then holds the job for about two minutes;
    the caller's status reader lets it start at once (see
    :meth:`StatusReader._release_checkpointed`).
    """
    commands.run_with_retries(["scontrol", "requeue", job_id])
