"""offload.auto: an executor that picks the best backend installed and available here."""

from __future__ import annotations

import os
from typing import Any

from offload.core import Executor
from offload.core.errors import BackendNotFoundError
from offload.core.plugins import PluginManager, get_plugin_manager

from .version import __version__

KNOWN_DISTRIBUTIONS = {
    "local": "offload-local",
    "debug": "offload-local",
    "slurm": "offload-slurm",
}
"""Where the backends made by the offload project come from, for install hints."""


def choose_backend(cluster: str | None = None, plugin_manager: PluginManager | None = None) -> str:
    """The name of the backend ``AutoExecutor`` would use.

    With ``cluster``, that backend (it must be installed). Otherwise the available backend with
    the highest priority. Raises :class:`~offload.core.errors.BackendNotFoundError` with what is
    installed and what to install.
    """
    plugins = plugin_manager or get_plugin_manager()
    backends = plugins.backends()
    if cluster is not None:
        if cluster in backends:
            return cluster
        hint = KNOWN_DISTRIBUTIONS.get(cluster)
        install = f" Install it with: pip install {hint}" if hint else ""
        raise BackendNotFoundError(
            f"No backend named {cluster!r} is installed.{install} {plugins.describe()}"
        )
    ranked = sorted(backends.values(), key=lambda b: b.spec.priority, reverse=True)
    for backend in ranked:
        if backend.spec.is_available():
            return backend.name
    unavailable = "; ".join(
        f"{b.name}: not available here ({b.spec.requirements or 'its check failed'})"
        for b in ranked
    )
    suggestions = ", ".join(sorted(set(KNOWN_DISTRIBUTIONS.values())))
    raise BackendNotFoundError(
        f"No offload backend is available here. {plugins.describe()}"
        + (f" ({unavailable})" if unavailable else "")
        + f" Install one with pip: {suggestions} (offload-local runs jobs on this machine)."
    )


class AutoExecutor(Executor):
    """An :class:`~offload.core.Executor` on the best backend available where the code runs.

    ``cluster`` forces a backend by name (``"local"``, ``"debug"``, ``"slurm"``...). Other
    keyword arguments are job parameters, as for :meth:`update_parameters`; parameters of the
    backends not chosen are checked and ignored, so one script carries options for all of them.
    """

    def __init__(
        self, folder: str | os.PathLike[str], cluster: str | None = None, **backend_options: Any
    ) -> None:
        plugins = get_plugin_manager()
        super().__init__(
            folder, choose_backend(cluster, plugins), plugin_manager=plugins, **backend_options
        )

    @property
    def cluster(self) -> str:
        """The name of the chosen backend."""
        return self.backend


__all__ = ["AutoExecutor", "__version__", "choose_backend"]
