"""Which GPUs the local backend may hand out, and to which job."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else what nvidia-smi lists."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [d.strip() for d in declared.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in listing.splitlines() if line.strip()]


class GpuPool:
    """Hands out distinct GPUs to concurrent jobs of this process."""

    def __init__(self, devices: list[str]) -> None:
        self.devices = devices
        self._free = list(devices)
        self._lock = threading.Lock()

    def take(self, count: int) -> list[str] | None:
        """``count`` free GPUs, or ``None`` when fewer are free now."""
        with self._lock:
            if count > len(self._free):
                return None
            taken, self._free = self._free[:count], self._free[count:]
            return taken

    def give_back(self, devices: list[str]) -> None:
        with self._lock:
            self._free.extend(devices)
            self._free.sort(key=self.devices.index)
