"""Names a package exports but imports only on first use (PEP 562), so that a job's ranks,
which import the package, do not pay for what they never touch."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


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
