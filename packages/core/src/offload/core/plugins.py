"""The plugin manager: backends found through the ``offload`` entry-point group.

Nothing is loaded at import time. The first call to :func:`get_plugin_manager` loads every entry
point of the group, except those named in the ``OFFLOAD_DISABLE_PLUGINS`` environment variable
(comma-separated entry-point names). A plugin that fails to import is logged and remembered with
its error, so that asking for its backend explains what went wrong.

A job's process starts with only the plugin that submitted the job (:func:`use_job_plugin`); the
others are loaded when something asks for a backend.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

from . import hookspecs
from .backend import Backend, BackendSpec, PluginOrigin
from .errors import BackendNotFoundError, OffloadError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

logger = logging.getLogger("offload.core.plugins")

DISABLE_VARIABLE = "OFFLOAD_DISABLE_PLUGINS"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the backends the plugins declare and the plugins that failed."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.failed: dict[str, BaseException] = {}
        self._backends: dict[str, Backend] | None = None
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # held while the remaining entry points load
        self._entry_points_pending = False

    def load_entry_points(self) -> None:
        """Register every plugin of the ``offload`` entry-point group that is not disabled.

        A plugin that fails to import, or whose hooks do not match the specifications (a
        misspelled hook name, a wrong argument), is left out and remembered in :attr:`failed`;
        the other plugins work.
        """
        self._block_disabled()
        for entry_point in entry_points(group=hookspecs.PROJECT):
            if not self.is_blocked(entry_point.name) and not self.has_plugin(entry_point.name):
                self._load(entry_point.name, entry_point.load, entry_point.value)
        self.check_pending()

    def load_first(self, origin: PluginOrigin) -> None:
        """Register the plugin ``origin`` names, imported from its module, and leave the other
        entry points until a backend is asked for (:meth:`load_remaining_entry_points`)."""
        self._block_disabled()
        if not self.is_blocked(origin.name):
            module = origin.module
            self._load(origin.name, lambda: importlib.import_module(module), module)
        self._entry_points_pending = True

    def load_remaining_entry_points(self) -> None:
        """Load the entry points that :meth:`load_first` left for later, if any. The first
        thread to ask loads them; the others wait until it is done."""
        if not self._entry_points_pending:
            return
        with self._loading:
            if self._entry_points_pending:
                self.load_entry_points()
                with self._lock:
                    self._backends = None  # declared again, with the plugins just loaded
                self._entry_points_pending = False

    def _block_disabled(self) -> None:
        for name in os.environ.get(DISABLE_VARIABLE, "").split(","):
            if name.strip():
                self.set_blocked(name.strip())

    def _load(self, name: str, load: Callable[[], object], source: str) -> None:
        """Register what ``load`` returns as plugin ``name``; a failure is remembered."""
        try:
            plugin = load()
            self.register(plugin, name=name)
            self._check_plugin(plugin)
        except Exception as error:
            if self.has_plugin(name):
                self.unregister(name=name)
            self._fail(name, f"{source} failed to load", error)

    def _check_plugin(self, plugin: object) -> None:
        """Raise if ``plugin`` implements a hook that has no specification (a misspelling)."""
        for caller in self.get_hookcallers(plugin) or []:
            if caller.spec is None:
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {caller.name!r}: hooks are {_hook_names()}"
                )

    def _fail(self, name: str, what: str, error: BaseException) -> None:
        self.failed[name] = error
        logger.warning("offload plugin %r: %s: %s: %s", name, what, type(error).__name__, error)

    def backends(self) -> dict[str, Backend]:
        """Every declared backend, by name, available here or not.

        A plugin whose declaration fails, or that declares a name another plugin took first,
        is left out and remembered in :attr:`failed`.
        """
        self.load_remaining_entry_points()
        with self._lock:
            if self._backends is None:
                found: dict[str, Backend] = {}
                owners: dict[str, str] = {}
                # in registration order: the first plugin to declare a name keeps it
                for implementation in self.hook.offload_backends.get_hookimpls():
                    plugin = implementation.plugin_name
                    try:
                        declared = implementation.function()
                        if not isinstance(declared, (list, tuple)):
                            raise TypeError(f"it returned {declared!r}, not a list of BackendSpec")
                        specs = list(declared)
                        for spec in specs:
                            if not isinstance(spec, BackendSpec):
                                raise TypeError(f"it returned {spec!r}, not a BackendSpec")
                            if spec.name in owners:
                                raise OffloadError(
                                    f"backend {spec.name!r} is already declared by plugin "
                                    f"{owners[spec.name]!r}"
                                )
                    except Exception as error:
                        self._fail(plugin, "offload_backends failed", error)
                        continue
                    for spec in specs:
                        assert isinstance(spec, BackendSpec)
                        owners[spec.name] = plugin
                        found[spec.name] = Backend(spec, self.hook, _origin(implementation))
                self._backends = found
            return self._backends

    def backend(self, name: str) -> Backend:
        """The backend called ``name``; the error lists the installed ones."""
        try:
            return self.backends()[name]
        except KeyError:
            raise BackendNotFoundError(f"No backend named {name!r}. {self.describe()}") from None

    def describe(self) -> str:
        """One sentence listing installed backends, disabled plugins and failed ones."""
        parts = []
        backends = self.backends()
        if backends:
            parts.append("Installed backends: " + ", ".join(sorted(backends)) + ".")
        else:
            parts.append("No backend is installed.")
        for name, error in sorted(self.failed.items()):
            parts.append(f"Plugin {name!r} failed: {type(error).__name__}: {error}.")
        disabled = os.environ.get(DISABLE_VARIABLE, "").strip()
        if disabled:
            parts.append(f"Disabled through {DISABLE_VARIABLE}: {disabled}.")
        return " ".join(parts)


def entry_points(group: str) -> Sequence[EntryPoint]:
    """The entry points of ``group`` (``importlib.metadata`` is imported only when needed: it and
    the scan of every installed distribution are slow, and a job's process rarely needs them)."""
    from importlib.metadata import entry_points as scan

    return list(scan(group=group))


def _origin(implementation: pluggy.HookImpl) -> PluginOrigin | None:
    """The name and module of a plugin that is a module (the usual entry point), else ``None``."""
    if isinstance(implementation.plugin, types.ModuleType):
        return PluginOrigin(implementation.plugin_name, implementation.plugin.__name__)
    return None


def _hook_names() -> str:
    return ", ".join(name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT}_"))


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created and loaded on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            manager = PluginManager()
            manager.load_entry_points()
            _manager = manager
        return _manager


def use_job_plugin(origin: PluginOrigin) -> None:
    """In a job's process, start the process-wide manager with only the plugin that submitted the
    job, imported from its module; the other entry points are loaded when a backend is asked for.

    A job's runner needs one plugin's environment and requeue hooks: this spares every job the
    scan of all installed distributions and the import of every backend. Does nothing when the
    manager exists already (jobs run inside the submitting process).
    """
    global _manager
    with _manager_lock:
        if _manager is None:
            manager = PluginManager()
            manager.load_first(origin)
            _manager = manager


def reset_plugin_manager() -> None:
    """Forget the process-wide plugin manager (tests; after installing a plugin at run time)."""
    global _manager
    with _manager_lock:
        _manager = None
