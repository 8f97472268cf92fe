"""Executors for the local and debug backends."""

from __future__ import annotations

import os
from typing import Any

from offload.core import Executor


class LocalExecutor(Executor):
    """An :class:`~offload.core.Executor` for the ``local`` backend: one process group per job."""

    def __init__(self, folder: str | os.PathLike[str], **parameters: Any) -> None:
        super().__init__(folder, "local", **parameters)


class DebugExecutor(Executor):
    """An :class:`~offload.core.Executor` for the ``debug`` backend: jobs run in this process."""

    def __init__(self, folder: str | os.PathLike[str], **parameters: Any) -> None:
        super().__init__(folder, "debug", **parameters)
