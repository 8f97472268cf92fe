"""The batch script of a submission, rendered from the ``slurm/batch.sh.j2`` template.

The template is found through the core template search path (see :mod:`offload.core.templates`):
``slurm_template_dir``, ``$OFFLOAD_TEMPLATE_PATH``, the user's and the site's folders, then this
package's default, which stays reachable as ``default/slurm/batch.sh.j2`` for ``{% extends %}``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from offload.core import LaunchRequest, SubmissionError
from offload.core.templates import search_path, template_environment

from .options import option_lines, sbatch_options, signal_delay, signal_name, uses_srun

TEMPLATE = "slurm/batch.sh.j2"


@dataclass(frozen=True)
class ArrayChunk:
    """One ``sbatch --array`` call: jobs ``offset .. offset + size - 1`` of the request."""

    offset: int
    size: int
    parallelism: int | None = None

    @property
    def spec(self) -> str:
        """The ``--array`` value: ``"0-199%16"``."""
        limit = f"%{self.parallelism}" if self.parallelism else ""
        return f"0-{self.size - 1}{limit}"


@dataclass(frozen=True)
class BatchScript:
    """A rendered batch script, and where it goes."""

    text: str
    path: Path
    template: str
    """The file the template was loaded from."""
    chunk: ArrayChunk | None


def plan_chunks(num_jobs: int, max_array_size: int, parallelism: int | None) -> list[ArrayChunk]:
    """Split ``num_jobs`` array elements into arrays whose indices stay below ``max_array_size``.

    A single job is one chunk of size 1 that is not submitted as an array.
    """
    size = max(1, max_array_size)
    return [
        ArrayChunk(offset, min(size, num_jobs - offset), parallelism)
        for offset in range(0, num_jobs, size)
    ]


def _template_source(parameters: Mapping[str, Any]) -> tuple[list[str], str]:
    """Extra template folders and the template name, from ``slurm_template(_dir)``."""
    folders = parameters.get("slurm_template_dir", [])
    folders = [folders] if isinstance(folders, str) else list(folders)
    name = parameters.get("slurm_template", TEMPLATE)
    if os.path.isfile(os.path.expanduser(name)):  # a file given by its path
        path = Path(name).expanduser().absolute()
        return [str(path.parent), *folders], path.name
    return folders, name


def context(request: LaunchRequest, chunk: ArrayChunk | None) -> dict[str, Any]:
    """The variables a batch-script template sees (documented in docs/templates.md)."""
    parameters = request.parameters
    if "%" in str(request.group_dir):
        raise SubmissionError(
            f"the job folder {request.group_dir} contains '%', which Slurm reads as a file name "
            f"pattern in log paths: choose a folder without '%'"
        )
    options = sbatch_options(parameters)
    if chunk is None:
        options["output"] = str(request.group_dir / "0" / "launcher.log")
    else:
        options["array"] = chunk.spec
        log = "%a/launcher.log" if chunk.offset == 0 else f"launcher.{chunk.offset}+%a.log"
        options["output"] = str(request.group_dir / log)
    options["open-mode"] = "append"
    use_srun = uses_srun(parameters)
    if not use_srun and request.num_tasks > 1:
        raise SubmissionError(
            f"slurm_use_srun=False runs one task, but nodes * tasks_per_node = "
            f"{request.num_tasks}: use srun (the default) for several ranks."
        )
    try:
        lines = option_lines(options)
    except ValueError as error:  # a generic value (a name) sbatch could not read back
        raise SubmissionError(f"cannot write the sbatch options {options}: {error}") from None
    return {
        "sbatch_options": lines,
        "options": options,
        "parameters": dict(parameters),
        "group_dir": str(request.group_dir),
        "array": chunk,
        "num_jobs": len(request.jobs),
        "num_tasks": request.num_tasks,
        "env_vars": dict(request.env_vars),
        "setup": list(parameters.get("slurm_setup", [])),
        "use_srun": use_srun,
        "checkpoint_signal": signal_name(parameters),
        "srun_args": list(parameters.get("slurm_srun_args", [])),
        "python": request.python,
        "checkpoint_after": _checkpoint_after(parameters),
    }


def _checkpoint_after(parameters: Mapping[str, Any]) -> int | None:
    """Seconds after the job starts at which its ranks should checkpoint (``None``: no limit).

    Slurm may send the ``--signal`` up to a minute early; the runner waits until this time.
    """
    if "timeout_min" not in parameters:
        return None
    limit = math.floor(float(parameters["timeout_min"]) * 60)
    return max(0, limit - signal_delay(parameters))


def render(request: LaunchRequest, chunk: ArrayChunk | None) -> BatchScript:
    """Render the batch script of ``chunk`` of ``request`` (``None``: a single job)."""
    folders, name = _template_source(request.parameters)
    environment = template_environment("offload.slurm", folders)
    variables = context(request, chunk)
    try:
        template = environment.get_template(name)
        text = template.render(variables)
    except jinja2.TemplateNotFound as error:
        searched = ", ".join(str(path) for path in search_path(folders))
        raise SubmissionError(
            f"batch-script template {error.name!r} not found in {searched} "
            f"(nor in the offload.slurm package)"
        ) from None
    except jinja2.TemplateSyntaxError as error:
        raise SubmissionError(
            f"batch-script template {error.filename or error.name or name}, "
            f"line {error.lineno}: {error.message}"
        ) from None
    except jinja2.TemplateError as error:
        raise SubmissionError(f"batch-script template {name!r} failed to render: {error}") from None
    except RecursionError:
        raise SubmissionError(
            f"batch-script template {name!r} extends or includes itself: to build on the "
            f"package's template, extend 'default/{TEMPLATE}'"
        ) from None
    suffix = "" if chunk is None or chunk.offset == 0 else f".{chunk.offset}"
    return BatchScript(
        text, request.group_dir / f"slurm-batch{suffix}.sh", template.filename or name, chunk
    )
