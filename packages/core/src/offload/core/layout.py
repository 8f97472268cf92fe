"""The on-disk layout of a job folder.

::

    <folder>/                         the executor's folder (created 0700 if missing)
      <group>/                        one per submit call, array or batch (0700);
        group.json                    backend name, ranks per job, creation time
        <index>/                      one per job: "0" for a single job, 0..n-1 for an array
          submission.pkl              the pickled DelayedSubmission (0600)
          result.<rank>.pkl           (outcome, value) written by each rank when it ends
          stdout.<rank>.log           what each rank printed
          stderr.<rank>.log
          launcher.log                the backend's own log of the job, if it keeps one
                                      (e.g. a batch script's output)
      by-id/<job id>                  symlink to ../<group>/<index>, to re-attach by id

``<group>`` is ``YYYYmmdd-HHMMSS-`` followed by random hex digits, so folders sort by time.
Backends may add their own files to a job's folder (a launch script, a status file).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OffloadError
from .serialization import atomic_writer

BY_ID = "by-id"
GROUP_FILE = "group.json"
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\[\]-]*$")


@dataclass(frozen=True)
class JobPaths:
    """Where the files of one job live."""

    job_dir: Path

    @property
    def submission(self) -> Path:
        return self.job_dir / "submission.pkl"

    def result(self, rank: int = 0) -> Path:
        return self.job_dir / f"result.{rank}.pkl"

    def stdout(self, rank: int = 0) -> Path:
        return self.job_dir / f"stdout.{rank}.log"

    def stderr(self, rank: int = 0) -> Path:
        return self.job_dir / f"stderr.{rank}.log"

    @property
    def launcher_log(self) -> Path:
        """The backend's own log of the job (a batch script's output), when it keeps one."""
        return self.job_dir / "launcher.log"

    @property
    def group_dir(self) -> Path:
        return self.job_dir.parent

    @property
    def folder(self) -> Path:
        return self.job_dir.parent.parent


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def new_group_name() -> str:
    """A fresh group folder name: ``YYYYmmdd-HHMMSS-`` and random hex digits."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def create_group(folder: Path, num_jobs: int, metadata: dict[str, Any]) -> list[JobPaths]:
    """Create a new group folder holding ``num_jobs`` empty job folders."""
    if not folder.exists():
        make_private_dir(folder)
    while True:
        group_dir = folder / new_group_name()
        try:
            group_dir.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    group_dir.chmod(0o700)  # in case of a restrictive-but-odd umask, be exact
    with atomic_writer(group_dir / GROUP_FILE) as stream:
        stream.write(json.dumps(metadata, indent=1).encode())
    jobs = []
    for index in range(num_jobs):
        job_dir = group_dir / str(index)
        job_dir.mkdir(mode=0o700)
        jobs.append(JobPaths(job_dir))
    return jobs


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise OffloadError(f"invalid job id {job_id!r}: expected letters, digits and _.:+-[]")
    return job_id


def link_job_ids(folder: Path, ids_and_paths: list[tuple[str, JobPaths]]) -> None:
    """Record each job's folder under ``by-id/`` so it can be found again by its id."""
    by_id = folder / BY_ID
    make_private_dir(by_id)
    for job_id, paths in ids_and_paths:
        link = by_id / check_job_id(job_id)
        target = Path("..") / paths.group_dir.name / paths.job_dir.name
        temporary = by_id / f".{job_id}.{os.getpid()}.{os.urandom(4).hex()}"
        temporary.symlink_to(target)
        os.replace(temporary, link)


def find_job(folder: Path, job_id: str) -> tuple[JobPaths, dict[str, Any]]:
    """The paths and group metadata of the job ``job_id`` in ``folder``."""
    link = Path(folder) / BY_ID / check_job_id(job_id)
    if not link.is_symlink():
        raise OffloadError(f"no job {job_id!r} in {folder} (nothing at {link})")
    job_dir = (link.parent / os.readlink(link)).resolve()
    if job_dir.parent.parent != Path(folder).resolve():
        raise OffloadError(f"{link} points outside {folder}: refusing to follow it")
    try:
        metadata = json.loads((job_dir.parent / GROUP_FILE).read_text())
    except FileNotFoundError:
        raise OffloadError(f"job {job_id!r}: its folder {job_dir} was removed") from None
    return JobPaths(job_dir), metadata
