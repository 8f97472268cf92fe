"""Run the Python code blocks of the docs, to prove they work.

    python docs/run_snippets.py                      # every page of docs/
    python docs/run_snippets.py docs/getting-started.md

The ```python blocks of one page run in order, as one script, in a fresh temporary folder (the
pages are written so: a block may use what an earlier block of the same page defined). Blocks in
other languages (console, toml, text) are not run, nor are blocks with more words after
"python" (```python excerpt, ```python signature): those show pieces of code, not programs.
A page fails when its script exits non-zero or takes more than two minutes. stdin is empty, so a
pdb prompt quits at once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def script_of(page: Path) -> str:
    """The page's python blocks, joined into one script."""
    blocks = _BLOCK.findall(page.read_text())
    return "\n\n".join(blocks)


def run(page: Path) -> bool:
    script = script_of(page)
    if not script:
        return True
    with tempfile.TemporaryDirectory(prefix="offload-docs-") as folder:
        path = Path(folder) / (page.stem.replace("-", "_") + ".py")
        path.write_text(script)
        try:
            finished = subprocess.run(
                [sys.executable, str(path)],
                cwd=folder,
                text=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            print(f"FAIL {page.name}: still running after 120 s")
            return False
    if finished.returncode != 0:
        print(f"FAIL {page.name} (exit {finished.returncode}):\n{finished.stdout}{finished.stderr}")
        return False
    print(f"ok   {page.name} ({script.count(chr(10)) + 1} lines)")
    return True


def main(argv: list[str]) -> int:
    pages = [Path(arg) for arg in argv] or sorted(DOCS.rglob("*.md"))
    results = [run(page) for page in pages]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
