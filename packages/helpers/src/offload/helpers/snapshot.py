"""RsyncSnapshot: run jobs on a frozen copy of the repository's code, not on the working tree."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from types import TracebackType

from offload.core.errors import OffloadError


class SnapshotError(OffloadError):
    """The snapshot cannot be made: no git repository, git missing, or a failed copy."""


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        finished = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    except FileNotFoundError:
        raise SnapshotError("RsyncSnapshot needs git, which is not installed here") from None
    if finished.returncode != 0:
        message = finished.stderr.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise SnapshotError(
                f"{cwd} is not inside a git repository: RsyncSnapshot copies the files git "
                "tracks, so run it from a repository's folder (or pass root=)"
            )
        raise SnapshotError(f"git {' '.join(args)} failed in {cwd}: {message}")
    return finished.stdout


def _matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether ``path`` (relative, POSIX) or one of its leading folders matches a pattern."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    return any(fnmatch.fnmatchcase(c, p.rstrip("/")) for p in patterns for c in candidates)


class RsyncSnapshot:
    """Copy the repository's code to ``snapshot_dir`` and work from there inside the block.

    ::

        with RsyncSnapshot("snapshots/run-42"):
            job = executor.submit(train, 0.1)  # the job imports the snapshot's code
        # edit the code freely: the job keeps running the copy

    On entering, the files git tracks under ``root`` (default: the top folder of the git
    repository the current folder is in) are copied into ``snapshot_dir``, keeping their
    relative paths; then the block runs with the snapshot as current folder (the same subfolder
    of it as the current one was of ``root``, when the snapshot has it) and with the snapshot
    first on ``sys.path`` and ``PYTHONPATH``. Jobs submitted inside the block start in that
    folder and with that ``PYTHONPATH``, so they import the snapshot's modules. On leaving, the
    current folder, ``sys.path`` and ``PYTHONPATH`` are restored; the snapshot stays.

    Which files are copied:

    - the files git tracks (``git ls-files``, submodules included), as they are on disk now,
      uncommitted changes included;
    - with ``untracked=True``, also the untracked files git does not ignore;
    - the files matching an ``include`` pattern, even untracked or ignored ones (a local
      configuration file, say);
    - minus the files matching an ``exclude`` pattern, and those of ``snapshot_dir`` itself
      when it is inside ``root`` (with ``untracked=True``, let git ignore a folder that holds
      snapshots, so that one snapshot does not copy the others).

    Patterns are shell-style (:mod:`fnmatch`) and match a path relative to ``root``, written
    with ``/``, or one of its leading folders: ``"data"`` and ``"data/*"`` both stand for every
    file under ``data/``, and ``"*.ckpt"`` for every ``.ckpt`` file (``*`` also matches ``/``).

    The copy uses ``rsync`` when it is installed, and falls back to a copy in Python otherwise
    (same result, slower for large trees). Files already in ``snapshot_dir`` are overwritten
    when copied again, and other files there are left alone: use a new folder per snapshot for a
    clean copy. Outside a git repository, or without ``git``, entering raises
    :class:`SnapshotError`.

    ``os.chdir`` and ``os.environ`` are global to the process: do not use snapshots from
    several threads at once.
    """

    def __init__(
        self,
        snapshot_dir: str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        *,
        untracked: bool = False,
    ) -> None:
        self.snapshot_dir = Path(snapshot_dir).expanduser().absolute()
        self.root = None if root is None else Path(root).expanduser().absolute()
        self.include = [include] if isinstance(include, str) else list(include)
        self.exclude = [exclude] if isinstance(exclude, str) else list(exclude)
        self.untracked = untracked
        self._saved: tuple[str, str | None, str] | None = None

    def repository_root(self) -> Path:
        """The folder whose files are copied: ``root``, else the current repository's top."""
        if self.root is not None:
            inside = _git(["rev-parse", "--is-inside-work-tree"], self.root).strip()
            if inside != b"true":
                raise SnapshotError(f"{self.root} is not inside a git working tree")
            return self.root
        top = _git(["rev-parse", "--show-toplevel"], Path.cwd()).decode().strip()
        return Path(top)

    def files(self) -> list[str]:
        """The paths, relative to the root, that a snapshot copies now."""
        root = self.repository_root()
        found = set(_split(_git(["ls-files", "-z", "--cached", "--recurse-submodules"], root)))
        if self.untracked:
            found.update(_split(_git(["ls-files", "-z", "--others", "--exclude-standard"], root)))
        if self.include:
            # --others without --exclude-standard: untracked files, ignored ones included
            others = _split(_git(["ls-files", "-z", "--others"], root))
            found.update(path for path in others if _matches(path, self.include))
        exclude = list(self.exclude)
        try:
            inside = self.snapshot_dir.relative_to(root)
        except ValueError:
            pass
        else:  # a snapshot folder inside the repository is never copied into itself
            exclude.append(inside.as_posix())
        return sorted(
            path for path in found if not _matches(path, exclude) and os.path.lexists(root / path)
        )

    def copy(self) -> Path:
        """Copy the files into ``snapshot_dir`` (without entering it); return the root copied."""
        root = self.repository_root()
        files = self.files()
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        if shutil.which("rsync"):
            _rsync(root, self.snapshot_dir, files)
        else:
            _python_copy(root, self.snapshot_dir, files)
        return root

    def __enter__(self) -> Path:
        if self._saved is not None:
            raise RuntimeError("this RsyncSnapshot is already in use")
        root = self.copy()
        cwd = Path.cwd()
        target = self.snapshot_dir
        try:
            relative = cwd.relative_to(root)
        except ValueError:
            pass
        else:
            if (self.snapshot_dir / relative).is_dir():
                target = self.snapshot_dir / relative
        entry = str(self.snapshot_dir)
        previous = os.environ.get("PYTHONPATH")
        self._saved = (str(cwd), previous, entry)
        os.chdir(target)
        sys.path.insert(0, entry)
        os.environ["PYTHONPATH"] = entry + (os.pathsep + previous if previous else "")
        return self.snapshot_dir

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._saved is None:
            return
        cwd, python_path, entry = self._saved
        self._saved = None
        os.chdir(cwd)
        try:
            sys.path.remove(entry)
        except ValueError:
            pass
        if python_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = python_path


def _split(output: bytes) -> list[str]:
    return [os.fsdecode(item) for item in output.split(b"\0") if item]


def _rsync(root: Path, target: Path, files: list[str]) -> None:
    listing = b"".join(os.fsencode(path) + b"\0" for path in files)
    finished = subprocess.run(
        ["rsync", "--archive", "--from0", "--files-from=-", f"{root}/", f"{target}/"],
        input=listing,
        capture_output=True,
    )
    if finished.returncode != 0:
        message = finished.stderr.decode(errors="replace").strip()
        raise SnapshotError(
            f"rsync from {root} to {target} failed (exit {finished.returncode}): {message}"
        )


def _python_copy(root: Path, target: Path, files: list[str]) -> None:
    for path in files:
        source, destination = root / path, target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            if destination.is_symlink() or destination.exists():
                destination.unlink()
            os.symlink(os.readlink(source), destination)
        elif source.is_dir():  # a submodule git did not recurse into (not checked out)
            destination.mkdir(exist_ok=True)
        else:
            shutil.copy2(source, destination)
