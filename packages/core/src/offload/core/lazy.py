"""What is imported or made only on first use, so that a job's ranks, which import the
packages, do not pay for what they never touch: a package's exports (PEP 562), and the objects
a plugin keeps for the whole process."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar


def lazy_exports(
    package: str, locations: Mapping[str, str], names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for names found in its submodules.

    ``locations`` maps each lazily exported name to its submodule (``{"Job": "job"}``);
    ``names`` is the package's ``__all__``. Use it at the end of the package's ``__init__``::

        __getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)

    A name is imported once, then kept in the package's namespace.
    """

    def __getattr__(name: str) -> Any:
        module = locations.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__


T = TypeVar("T")


class ProcessWide(Generic[T]):
    """One object per process, made by ``factory`` on first use; safe to call from any thread.

    For what a plugin keeps for the whole process (a launcher, a status reader) but imports or
    builds only when a hook first needs it::

        launcher = ProcessWide(_new_launcher)
        ...
        launcher().submit(request)
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value
