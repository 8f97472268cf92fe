"""Dry runs: the exact batch scripts a submission would produce, without submitting them."""

from __future__ import annotations

from dataclasses import dataclass

from offload.core import Executor, OffloadError

from . import commands
from .commands import SlurmCommandError
from .environment import NAME
from .submit import scripts_for


@dataclass(frozen=True)
class Preview:
    """One batch script as it would be submitted.

    Attributes:
        script: the script's text.
        path: where it would be written (its group folder gets a new name at each submission).
        template: the template file it was rendered from.
        command: the sbatch command that would submit it.
        test_only: with ``test_only=True``, what ``sbatch --test-only`` said about it.
        accepted: with ``test_only=True``, whether ``sbatch --test-only`` accepted it.
    """

    script: str
    path: str
    template: str
    command: list[str]
    test_only: str | None = None
    accepted: bool | None = None


def preview(executor: Executor, num_jobs: int = 1, *, test_only: bool = False) -> list[Preview]:
    """The batch scripts that submitting ``num_jobs`` jobs with ``executor`` would produce.

    ``num_jobs > 1`` previews a ``map_array`` (several scripts when the array must be split).
    Nothing is written or submitted; with ``test_only``, each script is checked by
    ``sbatch --test-only``, which asks the controller whether and when it could run.
    """
    if executor.backend != NAME:
        raise OffloadError(
            f"preview needs an executor of the slurm backend, not {executor.backend!r}"
        )
    request = executor.planned_request(num_jobs)
    previews = []
    for script in scripts_for(request):
        command = ["sbatch", "--parsable", str(script.path)]
        said, accepted = None, None
        if test_only:
            said, accepted = _test_only(script.text)
        previews.append(
            Preview(script.text, str(script.path), script.template, command, said, accepted)
        )
    return previews


def _test_only(text: str) -> tuple[str, bool]:
    """sbatch --test-only on a script given on stdin: its message, and whether it passed."""
    try:
        finished = commands.execute(["sbatch", "--test-only"], input=text)
    except SlurmCommandError as error:
        return error.message, False
    return (finished.stderr + finished.stdout).strip(), finished.returncode == 0
