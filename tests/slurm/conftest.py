"""Shared fixtures of the Slurm tests.

Live tests leave no job behind: whatever a test submitted is cancelled when it ends. Unit tests
get fake Slurm commands (``fake_bin``) and retries without waiting (``sleeps``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from offload.slurm import cluster, commands
from offload.slurm import submit as submitting

CLUSTER = Path(__file__).resolve().parents[2] / "tools" / "slurm-test-cluster"


@pytest.fixture(autouse=True)
def cancel_leftover_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    submitted: list[str] = []
    real_submit = submitting.submit

    def recording(request: Any) -> list[str]:
        ids = real_submit(request)
        submitted.extend({job_id.split("_")[0] for job_id in ids})
        return ids

    monkeypatch.setattr(submitting, "submit", recording)
    yield
    if submitted:
        try:
            submitting.cancel_ids(sorted(set(submitted)))
        except Exception:  # the cluster may be down after a fault test; nothing to clean then
            pass


class FakeBin:
    """Fake commands in a folder that is the whole of PATH: each records its arguments.

    A fake runs the Python code it is given, with ``args`` (its arguments) and ``call`` (how
    many times it ran before) defined.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, name: str, body: str) -> Path:
        log = self.folder / f"{name}.calls"
        script = self.folder / name
        script.write_text(
            f"#!{sys.executable} -IS\n"
            "import json, sys, time\n"
            "args = sys.argv[1:]\n"
            f"log = {str(log)!r}\n"
            "try:\n"
            "    with open(log) as f:\n"
            "        call = len(f.readlines())\n"
            "except FileNotFoundError:\n"
            "    call = 0\n"
            "with open(log, 'a') as f:\n"
            "    f.write(json.dumps(args) + '\\n')\n"
            f"{body}\n"
        )
        script.chmod(0o755)
        return script

    def calls(self, name: str) -> list[list[str]]:
        log = self.folder / f"{name}.calls"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.delenv("OFFLOAD_SLURM_COMMAND_TIMEOUT", raising=False)
    monkeypatch.setenv("PATH", str(folder))  # nothing else: the real Slurm cannot be reached
    monkeypatch.delenv("OFFLOAD_TEMPLATE_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("OFFLOAD_SITE_TEMPLATE_DIR", str(tmp_path / "site"))
    monkeypatch.setattr(cluster, "_config", {})
    return FakeBin(folder)


@pytest.fixture
def sleeps(monkeypatch):
    """The delays Slurm commands were retried after, without waiting."""
    waited: list[float] = []
    monkeypatch.setattr(
        commands, "time", SimpleNamespace(sleep=waited.append, perf_counter=time.perf_counter)
    )
    return waited


class ControllerOutage:
    """Stops the test cluster's slurmctld on entering, and starts it again ``seconds`` later,
    from a thread; leaving waits for the restart."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._restarting = threading.Event()
        self._thread = threading.Thread(target=self._restore)

    @property
    def over(self) -> bool:
        """Whether the restart has begun (a job may start and end before the command returns)."""
        return self._restarting.is_set()

    def __enter__(self) -> ControllerOutage:
        subprocess.run([str(CLUSTER), "stop-controller"], check=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()

    def _restore(self) -> None:
        try:
            time.sleep(self.seconds)
        finally:
            self._restarting.set()
            subprocess.run([str(CLUSTER), "start-controller"], check=True)


@pytest.fixture
def controller_outage(cluster_admin: None) -> Callable[[float], ControllerOutage]:
    """``with controller_outage(10) as outage:`` — slurmctld is down for the first 10 s."""
    return ControllerOutage
