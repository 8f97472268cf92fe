"""Job parameters: the generic names every backend understands, and their validation.

Generic names (``timeout_min``, ``mem_gb``, ...) mean the same on every backend. A backend's own
parameters carry its name as a prefix (``slurm_partition``) and are declared in its
:class:`~offload.core.backend.BackendSpec`. Parameters meant for another installed backend are
checked against that backend's declaration and then ignored, so one script can carry the options
of several backends.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ParameterError, closest_names

if TYPE_CHECKING:
    from .backend import BackendSpec

logger = logging.getLogger("offload.core.parameters")

Validator = Callable[[Any], None]
"""Raises ``ValueError`` with a short explanation when a value cannot be used."""


@dataclass(frozen=True)
class Parameter:
    """The declaration of one job parameter.

    ``types`` are the accepted Python types (``bool`` is never taken for ``int``); ``validate``
    checks the value further and raises ``ValueError`` to refuse it; ``help`` is one line shown
    in error messages and documentation.
    """

    name: str
    types: tuple[type, ...]
    help: str
    validate: Validator | None = None

    def check(self, value: Any) -> Any:
        """Return ``value`` if it is acceptable, else raise :class:`ParameterError`."""
        wanted_bool = bool in self.types
        if not isinstance(value, self.types) or (isinstance(value, bool) and not wanted_bool):
            names = " or ".join(t.__name__ for t in self.types)
            raise ParameterError(f"{self.name}={value!r}: expected {names} ({self.help}).")
        if self.validate is not None:
            try:
                self.validate(value)
            except ValueError as error:
                raise ParameterError(f"{self.name}={value!r}: {error}") from None
        return value


def positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def non_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def single_line(value: str) -> None:
    """Refuse control characters (a newline would add a line to a launch script)."""
    if _CONTROL.search(value):
        raise ValueError("must be one line without control characters (newlines, tabs, NUL)")


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def environment_mapping(value: Mapping[Any, Any]) -> None:
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ValueError(f"{key!r} is not a valid environment variable name")
        if not isinstance(item, str):
            raise ValueError(f"the value of {key} must be a str, not {type(item).__name__}")
        if "\x00" in item or "\n" in item or "\r" in item:
            # a job script sets each variable on one line of its own
            raise ValueError(f"the value of {key} must be one line (no line break or NUL)")


def _signal(value: str) -> None:
    from .checkpointing import signal_named

    number = signal_named(value)
    if number in (signal.SIGKILL, signal.SIGSTOP):
        raise ValueError("cannot be caught by the job: use USR1, USR2, URG...")
    if number == signal.SIGTERM:
        raise ValueError("is the signal that stops a job (cancel, preemption): use USR1, USR2...")


GENERIC_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("timeout_min", (int, float), "time limit of the job, in minutes", positive),
    Parameter("mem_gb", (int, float), "memory per node, in GB", positive),
    Parameter("cpus_per_task", (int,), "CPU cores per task", positive),
    Parameter("gpus_per_node", (int,), "GPUs per node", non_negative),
    Parameter("tasks_per_node", (int,), "processes (ranks) per node", positive),
    Parameter("nodes", (int,), "number of nodes", positive),
    Parameter("name", (str,), "the job's name", single_line),
    Parameter("env_vars", (dict,), "environment variables set for the job", environment_mapping),
    Parameter(
        "signal_delay_s",
        (int, float),
        "seconds before the time limit at which a job gets the checkpoint signal",
        positive,
    ),
    Parameter(
        "checkpoint_signal", (str,), "the signal sent before the time limit ('USR2')", _signal
    ),
    Parameter(
        "max_num_timeout",
        (int,),
        "requeues a checkpointable job may take at its time limit",
        non_negative,
    ),
)
GENERIC_NAMES = frozenset(p.name for p in GENERIC_PARAMETERS)


def validate_parameters(
    values: Mapping[str, Any], backend: BackendSpec, installed: Iterable[BackendSpec]
) -> dict[str, Any]:
    """Check ``values`` and return those meant for ``backend`` (generic and its own).

    Raises :class:`ParameterError` for an unknown name (naming the closest valid ones) or a bad
    value. A prefixed name of another installed backend is checked against that backend and
    dropped. A prefixed name whose prefix is no installed backend, and which looks like no valid
    name, is taken as meant for a backend not installed here: it is dropped with a log message.
    """
    known: dict[str, Parameter] = {p.name: p for p in GENERIC_PARAMETERS}
    owners: dict[str, str] = {}
    for spec in [backend, *installed]:
        for declared in spec.parameters:
            known[declared.name] = declared
            owners[declared.name] = spec.name
    installed_prefixes = {spec.name + "_" for spec in [backend, *installed]}

    accepted: dict[str, Any] = {}
    for name, value in values.items():
        parameter = known.get(name)
        if parameter is None:
            _reject_or_ignore(name, known, installed_prefixes)
            continue
        checked = parameter.check(value)
        if name in GENERIC_NAMES or owners.get(name) == backend.name:
            accepted[name] = checked
    return accepted


def _reject_or_ignore(name: str, known: Mapping[str, Parameter], prefixes: Iterable[str]) -> None:
    close = closest_names(name, sorted(known))
    owner_prefix = next((p for p in prefixes if name.startswith(p)), None)
    if close or owner_prefix or "_" not in name.strip("_"):
        hint = f" Did you mean {_quoted(close)}?" if close else ""
        where = f" of the installed backend {owner_prefix[:-1]!r}" if owner_prefix else ""
        raise ParameterError(
            f"Unknown parameter {name!r}{where}.{hint} Valid names: {', '.join(sorted(known))}."
        )
    logger.warning(
        "parameter %r looks like an option of a backend that is not installed here: ignored", name
    )


def _quoted(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
