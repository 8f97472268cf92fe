"""The Slurm backend's own parameters, and how every parameter becomes an ``#SBATCH`` option."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from offload.core import Parameter, checkpointing
from offload.core.parameters import positive, single_line

_SAFE_WORD = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")

RESERVED_OPTIONS = frozenset({"array", "output", "error", "open-mode", "parsable", "wrap"})
"""sbatch options the backend sets itself: they place the logs and index the array."""


def sbatch_word(value: str) -> str:
    """``value`` as one word of an ``#SBATCH`` line, quoted if it must be.

    sbatch splits ``#SBATCH`` lines like a shell, and a backslash escapes the next character even
    inside quotes: a value is quoted with double quotes, or single quotes when it contains double
    quotes (one with both is refused), and its backslashes are doubled.
    """
    single_line(value)
    if _SAFE_WORD.match(value):
        return value
    escaped = value.replace("\\", "\\\\")
    if '"' not in value:
        return f'"{escaped}"'
    if "'" not in value:
        return f"'{escaped}'"
    raise ValueError("cannot hold both single and double quotes (sbatch could not read it)")


def _word(value: str) -> None:
    sbatch_word(value)


def _lines(value: list[Any]) -> None:
    for line in value:
        if not isinstance(line, str):
            raise ValueError(f"each item must be a str, not {type(line).__name__}")
        single_line(line)


def _words(value: list[Any]) -> None:
    for word in value:
        if not isinstance(word, str):
            raise ValueError(f"each item must be a str, not {type(word).__name__}")
        single_line(word)  # quoted in the script, but a line break would still add a line


def _additional(value: Mapping[Any, Any]) -> None:
    for name, item in value.items():
        if not isinstance(name, str) or not _OPTION_NAME.match(name):
            raise ValueError(f"{name!r} is not an sbatch option name (like 'mem_per_cpu')")
        option = name.replace("_", "-")
        # sbatch also takes any unambiguous prefix of a long option (--out for --output).
        taken = sorted(r for r in RESERVED_OPTIONS if r.startswith(option))
        if taken:
            raise ValueError(
                f"--{option} is (short for) --{taken[0]}, which offload sets itself "
                f"and cannot be given"
            )
        if item is None or isinstance(item, bool):
            continue
        if not isinstance(item, (str, int, float)):
            raise ValueError(f"the value of {name} must be a str, int, float or bool")
        sbatch_word(str(item))


def _mail_type(value: str) -> None:
    _word(value)
    known = {
        "NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT",
        "TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS",
    }  # fmt: skip
    unknown = [word for word in value.split(",") if word.upper() not in known]
    if unknown:
        raise ValueError(f"unknown mail type(s) {unknown}; valid: {', '.join(sorted(known))}")


def _template_dir(value: str | list[Any]) -> None:
    for item in [value] if isinstance(value, str) else value:
        if not isinstance(item, str):
            raise ValueError(f"each folder must be a str, not {type(item).__name__}")
        single_line(item)


def _text(name: str, help: str) -> Parameter:
    return Parameter(name, (str,), help, _word)


PARAMETERS: tuple[Parameter, ...] = (
    _text("slurm_partition", "the partition (queue) to submit to"),
    _text("slurm_qos", "the quality of service"),
    _text("slurm_account", "the account charged for the job"),
    _text("slurm_constraint", "node features required (--constraint)"),
    _text("slurm_exclude", "nodes not to run on (a host list)"),
    _text("slurm_nodelist", "nodes to run on (a host list)"),
    _text("slurm_gres", "generic resources per node, like 'gpu:a100:2'"),
    Parameter("slurm_mail_type", (str,), "when to send mail: BEGIN,END,FAIL...", _mail_type),
    _text("slurm_mail_user", "who gets the mail"),
    _text("slurm_comment", "a comment shown by squeue and sacct"),
    Parameter("slurm_exclusive", (bool,), "whole nodes, shared with no other job"),
    Parameter(
        "slurm_array_parallelism", (int,), "at most this many array tasks run at once", positive
    ),
    Parameter("slurm_setup", (list,), "shell lines run in the batch script before the job", _lines),
    Parameter("slurm_srun_args", (list,), "extra arguments of srun, one word per item", _words),
    Parameter(
        "slurm_use_srun",
        (bool,),
        "start ranks with srun (the default for several ranks or with slurm_srun_args); "
        "False runs the one task from the batch script",
    ),
    Parameter(
        "slurm_additional_parameters",
        (dict,),
        "any other sbatch option: {'mem_per_cpu': '2G', 'hold': True}",
        _additional,
    ),
    Parameter("slurm_template", (str,), "batch-script template name or file", single_line),
    Parameter(
        "slurm_template_dir", (str, list), "folder(s) searched first for templates", _template_dir
    ),
)
"""Declared in the backend's spec; each name is also documented in docs/slurm.md."""


def format_time(minutes: float) -> str:
    """``--time`` value for a limit in minutes: ``"M:SS"`` (rounded up to whole seconds)."""
    # round() first: 4.15 min is 249 s, but 4.15 * 60 gives 249.00000000000003 in floating point
    seconds = max(1, math.ceil(round(minutes * 60, 6)))
    return f"{seconds // 60}:{seconds % 60:02d}"


_DIRECT = {
    "slurm_partition": "partition",
    "slurm_qos": "qos",
    "slurm_account": "account",
    "slurm_constraint": "constraint",
    "slurm_exclude": "exclude",
    "slurm_nodelist": "nodelist",
    "slurm_gres": "gres",
    "slurm_mail_type": "mail-type",
    "slurm_mail_user": "mail-user",
    "slurm_comment": "comment",
}


def uses_srun(parameters: Mapping[str, Any]) -> bool:
    """Whether ``srun`` starts the ranks: as ``slurm_use_srun`` says, else when the job has
    several ranks or ``slurm_srun_args``. One plain task runs from the batch script itself, which
    spares it a job step (a call to the controller and a step daemon)."""
    if "slurm_use_srun" in parameters:
        return bool(parameters["slurm_use_srun"])
    ranks = int(parameters.get("nodes", 1)) * int(parameters.get("tasks_per_node", 1))
    return ranks > 1 or bool(parameters.get("slurm_srun_args"))


def signal_name(parameters: Mapping[str, Any]) -> str:
    """The checkpoint signal's name as sbatch and the shell take it: ``"USR2"``."""
    return checkpointing.checkpoint_signal(parameters).name.removeprefix("SIG")


def signal_delay(parameters: Mapping[str, Any]) -> int:
    """The checkpoint signal's delay (see :func:`offload.core.checkpointing.signal_delay`) in
    whole seconds, as ``--signal`` takes it."""
    return max(1, math.ceil(checkpointing.signal_delay(parameters)))


def sbatch_options(parameters: Mapping[str, Any]) -> dict[str, str | None]:
    """The sbatch options for validated parameters: ``{"time": "5:00", "exclusive": None, ...}``.

    A ``None`` value is a flag without value. Generic parameters map to their sbatch names
    (``timeout_min`` → ``time``, ``mem_gb`` → ``mem``, ``tasks_per_node`` → ``ntasks-per-node``,
    ``name`` → ``job-name``...); ``slurm_additional_parameters`` come last and win.
    """
    options: dict[str, str | None] = {
        "job-name": str(parameters.get("name", "offload")),
        "nodes": str(parameters.get("nodes", 1)),
        "ntasks-per-node": str(parameters.get("tasks_per_node", 1)),
    }
    if "cpus_per_task" in parameters:
        options["cpus-per-task"] = str(parameters["cpus_per_task"])
    if parameters.get("gpus_per_node"):
        options["gpus-per-node"] = str(parameters["gpus_per_node"])
    if "mem_gb" in parameters:
        options["mem"] = f"{math.ceil(parameters['mem_gb'] * 1024)}M"
    if "timeout_min" in parameters:
        options["time"] = format_time(parameters["timeout_min"])
    # The checkpoint signal comes before the time limit: to srun's tasks, or to the batch shell
    # (B:) that passes it on to the one rank it started itself. --requeue lets a preempted job,
    # or one that checkpointed, run again.
    shell = "" if uses_srun(parameters) else "B:"
    options["signal"] = f"{shell}{signal_name(parameters)}@{signal_delay(parameters)}"
    options["requeue"] = None
    for name, option in _DIRECT.items():
        if name in parameters:
            options[option] = str(parameters[name])
    if parameters.get("slurm_exclusive"):
        options["exclusive"] = None
    for name, value in parameters.get("slurm_additional_parameters", {}).items():
        option = name.replace("_", "-")
        if value is False or value is None:
            options.pop(option, None)
        else:
            options[option] = None if value is True else str(value)
    return options


def option_lines(options: Mapping[str, str | None]) -> list[str]:
    """``--name=value`` words for ``#SBATCH`` lines, values quoted as sbatch reads them."""
    return [
        f"--{name}" if value is None else f"--{name}={sbatch_word(value)}"
        for name, value in options.items()
    ]
