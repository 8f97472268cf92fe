"""Every page of docs/ whose Python examples are programs runs as written."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
_spec = importlib.util.spec_from_file_location("run_snippets", DOCS / "run_snippets.py")
assert _spec is not None and _spec.loader is not None
run_snippets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_snippets)


def page_param(page: Path) -> object:
    """A page whose examples submit to Slurm needs the live cluster (skipped without one)."""
    marks = [pytest.mark.slurm] if "SlurmExecutor" in run_snippets.script_of(page) else []
    return pytest.param(page, marks=marks, id=page.name)


PAGES = [page_param(p) for p in sorted(DOCS.glob("*.md")) if run_snippets.script_of(p)]


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page):
    finished = subprocess.run(
        [sys.executable, str(DOCS / "run_snippets.py"), str(page)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
