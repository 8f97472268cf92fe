"""Every page of docs/ whose Python examples are programs runs as written."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
sys.path.insert(0, str(DOCS))
from run_snippets import script_of  # noqa: E402

sys.path.remove(str(DOCS))


def page_param(page: Path) -> object:
    """A page whose examples submit to Slurm needs the live cluster (skipped without one)."""
    marks = [pytest.mark.slurm] if "SlurmExecutor" in script_of(page) else []
    return pytest.param(page, marks=marks, id=page.name)


PAGES = [page_param(p) for p in sorted(DOCS.glob("*.md")) if script_of(p)]


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page):
    finished = subprocess.run(
        [sys.executable, str(DOCS / "run_snippets.py"), str(page)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
