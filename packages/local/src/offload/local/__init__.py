"""offload.local: run jobs on this machine (``local``) or inside this process (``debug``).

The executors are imported on first use, so that a job's supervisor process starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["DebugExecutor", "LocalExecutor", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("LocalExecutor", "DebugExecutor"):
        from . import executors

        return getattr(executors, name)
    raise AttributeError(f"module 'offload.local' has no attribute {name!r}")


if TYPE_CHECKING:
    from .executors import DebugExecutor, LocalExecutor
