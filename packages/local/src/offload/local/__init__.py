"""offload.local: run jobs on this machine (``local``) or inside this process (``debug``).

The executors are imported on first use, so that a job's supervisor process starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offload.core.lazy import lazy_exports

from .version import __version__

__all__ = ["DebugExecutor", "LocalExecutor", "__version__"]


__getattr__, __dir__ = lazy_exports(
    __name__, {"LocalExecutor": "executors", "DebugExecutor": "executors"}, __all__
)

if TYPE_CHECKING:
    from .executors import DebugExecutor, LocalExecutor
