"""offload.helpers as a package: lazy names, nothing heavy imported, typed."""

import subprocess
import sys
from pathlib import Path

import pytest

import offload.helpers

PROBE = """
import sys
import offload.helpers
assert not any(name.startswith("offload.helpers.") and name != "offload.helpers.version"
               for name in sys.modules), "submodules imported eagerly"
for name in offload.helpers.__all__:
    getattr(offload.helpers, name)
heavy = sorted(name for name in ("torch", "offload.local", "offload.slurm") if name in sys.modules)
print(",".join(heavy) or "none")
"""


def test_every_exported_name_imports_without_torch_or_a_backend():
    finished = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    assert finished.stdout.strip() == "none"


def test_exports_are_listed_and_unknown_names_refused():
    assert set(dir(offload.helpers)) == set(offload.helpers.__all__)
    assert offload.helpers.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match="NoSuchHelper"):
        offload.helpers.NoSuchHelper  # noqa: B018


def test_the_package_is_typed():
    assert (Path(offload.helpers.__file__).parent / "py.typed").exists()
