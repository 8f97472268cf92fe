"""Shared test setup: tests marked ``slurm`` need the live test cluster.

Without one they are skipped, with the command that starts it; when ``CI`` is set they fail
instead, so that a CI run cannot pass by skipping the cluster tests.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

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
    message = f"{reason}. Start the test cluster with: {CLUSTER_SCRIPT.relative_to(ROOT)} start"
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the live Slurm cluster: {message}", pytrace=False)
    pytest.skip(message)
