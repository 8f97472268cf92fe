"""Count the scheduler commands a process runs: wrappers on PATH that log, then run the real one."""

from __future__ import annotations

import os
import shutil
import stat
from collections import Counter
from pathlib import Path

COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")


class CallCounter:
    """Puts a wrapper of each Slurm command first on ``PATH``; each call is one line in a log."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "calls.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.real: dict[str, str] = {}
        """The real commands, to run one without counting it (the benchmark's own clean-up)."""
        for name in COMMANDS:
            real = shutil.which(name)
            if real is None:
                continue
            self.real[name] = real
            wrapper = folder / name
            wrapper.write_text(f'#!/bin/sh\necho {name} >> "{self.log}"\nexec "{real}" "$@"\n')
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def install(self) -> None:
        """Make this process (and the processes it starts) find the wrappers first."""
        os.environ["PATH"] = f"{self.folder}{os.pathsep}{os.environ['PATH']}"

    def take(self) -> Counter[str]:
        """The calls since the last ``take``, by command."""
        try:
            lines = self.log.read_text().split()
        except FileNotFoundError:
            lines = []
        self.log.write_text("")
        return Counter(lines)

    def restore(self, calls: Counter[str]) -> None:
        """Put back calls taken early, so that the next ``take`` returns them."""
        with open(self.log, "a") as stream:
            for name, count in calls.items():
                stream.write(f"{name}\n" * count)
