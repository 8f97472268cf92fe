"""RsyncSnapshot: which files are copied, where the block runs, and what jobs import."""

import os
import subprocess
import sys

import cloudpickle
import pytest

from offload.helpers import RsyncSnapshot, SnapshotError
from offload.helpers import snapshot as snapshot_module
from offload.local import LocalExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with tracked, ignored and untracked files; the current folder."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "snapshot_demo_mod.py").write_text("WHERE = 'committed'\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "model.py").write_text("SIZE = 1\n")
    (root / "data" / "big.bin").write_bytes(b"\0" * 10)
    (root / "weights.ckpt").write_text("tracked but excluded below\n")
    (root / ".gitignore").write_text("*.log\nsecrets.cfg\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    (root / "run.log").write_text("ignored\n")
    (root / "secrets.cfg").write_text("ignored too\n")
    (root / "notes.txt").write_text("untracked\n")
    (root / "snapshot_demo_mod.py").write_text("WHERE = 'working tree'\n")  # uncommitted edit
    (root / "pkg" / "model.py").unlink()  # deleted, not committed: still in git's index
    monkeypatch.chdir(root / "pkg")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return root


def listing(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder)
        for d, _, files in os.walk(folder)
        for f in files
    )


def test_tracked_files_are_copied_as_they_are_on_disk(repo, tmp_path):
    target = tmp_path / "snap"
    with RsyncSnapshot(target) as where:
        assert where == target
        assert os.getcwd() == str(target / "pkg")  # the same subfolder as before
        assert sys.path[0] == str(target)
        assert os.environ["PYTHONPATH"] == str(target)
    assert listing(target) == [
        ".gitignore",
        "data/big.bin",
        "pkg/__init__.py",
        "snapshot_demo_mod.py",
        "weights.ckpt",
    ]
    assert (target / "snapshot_demo_mod.py").read_text() == "WHERE = 'working tree'\n"
    assert os.getcwd() == str(repo / "pkg")
    assert str(target) not in sys.path
    assert "PYTHONPATH" not in os.environ


def test_untracked_include_and_exclude(repo, tmp_path):
    target = tmp_path / "snap"
    snapshot = RsyncSnapshot(
        target, include=["secrets.cfg"], exclude=["data", "*.ckpt"], untracked=True
    )
    assert snapshot.files() == [
        ".gitignore",
        "notes.txt",
        "pkg/__init__.py",
        "secrets.cfg",
        "snapshot_demo_mod.py",
    ]
    snapshot.copy()
    assert listing(target) == snapshot.files()
    assert os.getcwd() == str(repo / "pkg")  # copy() alone does not move


def test_python_copy_when_rsync_is_missing(repo, tmp_path, monkeypatch):
    os.symlink("snapshot_demo_mod.py", repo / "link.py")
    git(repo, "add", "link.py")
    monkeypatch.setattr(snapshot_module.shutil, "which", lambda name: None)
    target = tmp_path / "snap"
    with RsyncSnapshot(target):
        pass
    assert (target / "link.py").is_symlink()
    assert os.readlink(target / "link.py") == "snapshot_demo_mod.py"
    assert (target / "pkg" / "__init__.py").exists()
    assert not (target / "notes.txt").exists()


def test_previous_pythonpath_is_kept_behind_and_restored(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    target = tmp_path / "snap"
    with RsyncSnapshot(target):
        assert os.environ["PYTHONPATH"] == f"{target}{os.pathsep}/somewhere"
    assert os.environ["PYTHONPATH"] == "/somewhere"


def test_state_is_restored_when_the_block_raises(repo, tmp_path):
    with pytest.raises(KeyError), RsyncSnapshot(tmp_path / "snap"):
        raise KeyError("inside the block")
    assert os.getcwd() == str(repo / "pkg")
    assert str(tmp_path / "snap") not in sys.path


def test_a_snapshot_inside_the_repository_does_not_copy_itself(repo):
    target = repo / "snapshots" / "one"
    snapshot = RsyncSnapshot(target, untracked=True)
    snapshot.copy()
    snapshot.copy()  # its untracked files from the first copy are not taken again
    assert "notes.txt" in snapshot.files()
    assert not any(path.startswith("snapshots/") for path in snapshot.files())
    assert not (target / "snapshots").exists()


def test_outside_a_git_repository_is_a_clear_error(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(SnapshotError, match="not inside a git repository"):
        RsyncSnapshot(tmp_path / "snap").__enter__()
    assert os.getcwd() == str(plain)
    assert not (tmp_path / "snap").exists()


def where_is_the_code():
    import snapshot_demo_mod

    return snapshot_demo_mod.__file__, snapshot_demo_mod.WHERE, os.getcwd()


def test_jobs_submitted_inside_import_the_snapshot(repo, tmp_path):
    executor = LocalExecutor(tmp_path / "jobs")
    target = tmp_path / "snap"
    with RsyncSnapshot(target):
        job = executor.submit(where_is_the_code)
    (repo / "snapshot_demo_mod.py").write_text("WHERE = 'edited after submitting'\n")
    path, where, cwd = job.result(timeout=60)
    assert path == str(target / "snapshot_demo_mod.py")
    assert where == "working tree"
    assert cwd == str(target / "pkg")
