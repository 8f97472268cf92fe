"""Entry point on the node: ``python -m offload.core.run <job_dir>``.

Runs one rank of the job in ``job_dir`` (the rank comes from the backend's environment) and
exits 0 when the function returned, 1 when it raised. Either way the outcome is in the job's
folder for the caller.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .runner import prepare_job_process, run_job

USAGE = "usage: python -m offload.core.run JOB_DIR (the job's folder, holding submission.pkl)"


def main(argv: list[str] | None = None) -> int:
    # No argparse: this runs once per job, and one argument needs no parser's import time.
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1 or arguments[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 0 if arguments in (["-h"], ["--help"]) else 2
    prepare_job_process()
    outcome = run_job(Path(arguments[0]))
    sys.stdout.flush()
    sys.stderr.flush()
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main())
