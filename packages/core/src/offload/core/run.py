"""Entry point on the node: ``python -m offload.core.run <job_dir>``.

Runs one rank of the job in ``job_dir`` (the rank comes from the backend's environment) and
exits 0 when the function returned, 1 when it raised. Either way the outcome is in the job's
folder for the caller.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runner import prepare_job_process, run_job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offload.core.run", description=__doc__)
    parser.add_argument("job_dir", type=Path, help="the job's folder, holding submission.pkl")
    arguments = parser.parse_args(argv)
    prepare_job_process()
    outcome = run_job(arguments.job_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main())
