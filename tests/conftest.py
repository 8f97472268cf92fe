"""Shared test setup: tests marked ``slurm`` need the live test cluster.

Without one they are skipped, with the command that starts it; when ``CI`` is set they fail
instead, so that a CI run cannot pass by skipping the cluster tests. The same goes for what
some of them need besides: root, to stop and restart the cluster's daemons, and PyTorch.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "tools" / "slurm-test-cluster"


@functools.cache
def slurm_unavailable() -> str | None:
    """Why the Slurm tests cannot run here, or ``None`` when a cluster answers."""
    if shutil.which("sbatch") is None:
        return "no Slurm here (sbatch is not on PATH)"
    try:
        nodes = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sinfo failed: {error}"
    if nodes.returncode != 0:
        return f"no Slurm controller answers: {nodes.stderr.strip()}"
    if not any(
        state.rstrip("*") in {"idle", "mixed", "allocated"} for state in nodes.stdout.split()
    ):
        return f"no usable Slurm node (sinfo says: {' '.join(nodes.stdout.split()) or 'nothing'})"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm") is None:
        return
    reason = slurm_unavailable()
    if reason is None:
        return
    skip_unless_ci(
        f"{reason}. Start the test cluster with: {CLUSTER_SCRIPT.relative_to(ROOT)} start"
    )


def skip_unless_ci(message: str) -> NoReturn:
    """Skip with ``message``; under ``CI``, where everything the tests need is installed, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"CI needs this test to run: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def cluster_admin() -> None:
    """For tests that stop or restart the test cluster's daemons, which takes root."""
    if os.geteuid() != 0:
        skip_unless_ci(
            f"stopping and starting the test cluster's daemons needs root ({CLUSTER_SCRIPT.name})"
        )


def _installed(module: str, installed_by: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        skip_unless_ci(f"{module} is not installed ({error}); {installed_by} installs it")


@pytest.fixture(scope="session")
def torch() -> object:
    """PyTorch, for the torch.distributed tests."""
    return _installed("torch", "nox -s tests (requirements/torch.txt)")


@pytest.fixture(scope="session")
def numpy() -> object:
    """NumPy, for the tests of large arrays as results."""
    return _installed("numpy", "nox -s tests (requirements/tests.txt)")
