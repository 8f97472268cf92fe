"""Facts about the Slurm cluster that the backend adapts to, read once per process."""

from __future__ import annotations

import logging
import re
import threading

from . import commands
from .commands import SlurmCommandError

logger = logging.getLogger("offload.slurm.cluster")

DEFAULT_MAX_ARRAY_SIZE = 1001
"""Slurm's own default, used when the configuration cannot be read."""


def parse_config(output: str) -> dict[str, str]:
    """``scontrol show config`` lines (``Name = value``) as a mapping."""
    config = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s*=\s*(.*?)\s*$", line)
        if match:
            config[match.group(1)] = match.group(2)
    return config


_config: dict[str, str] = {}
_lock = threading.Lock()


def config() -> dict[str, str]:
    """The controller's configuration, read once (empty, and read again next time, when the
    controller cannot be reached)."""
    with _lock:
        if not _config:
            try:
                _config.update(parse_config(commands.run(["scontrol", "show", "config"])))
            except SlurmCommandError as error:
                logger.warning("could not read the Slurm configuration: %s", error)
        return dict(_config)


def max_array_size() -> int:
    """``MaxArraySize``: array indices must stay below it."""
    value = config().get("MaxArraySize", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_ARRAY_SIZE
