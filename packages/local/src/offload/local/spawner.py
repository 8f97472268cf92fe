"""A warm process that forks job supervisors on request: ``python -m offload.local.spawner``.

Starting a Python interpreter and importing offload costs far more than running a small job, so
the local backend keeps one spawner per interpreter and caller. The spawner has imported what a
job needs; each request forks it into a :class:`~offload.local.supervisor.Supervisor` in a
process group of its own, which lives on even if the caller and the spawner end.

The protocol is one JSON object per line. The caller sends
``{"job_dir": ..., "ntasks": n, "timeout": seconds or null, "signal_delay": seconds,
"checkpoint_signal": number, "env": {...}, "cwd": ...}``; the
spawner answers each request, in order, with ``{"started": pid}`` or ``{"error": message}``,
and says ``{"exited": pid, "status": wait_status}`` when a supervisor ends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from pathlib import Path
from typing import Any

from .supervisor import Supervisor

STARTUP_PREFIXES = ("PYTHON", "LD_")
"""Variables read only when a process starts: a job that changes them is not forked from here."""


def _become_supervisor(request: dict[str, Any], keep: set[int]) -> None:
    """In the forked child: take the job's environment and run its supervisor; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        for fd in keep:
            os.close(fd)
        job_dir = Path(request["job_dir"])
        os.chdir(request["cwd"])
        if sys.path and sys.path[0] != request["cwd"]:
            sys.path[0] = request["cwd"]
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(job_dir / "stderr.0.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        code = Supervisor(
            job_dir,
            int(request["ntasks"]),
            request.get("timeout"),
            float(request.get("signal_delay", 0.0)),
            int(request.get("checkpoint_signal", signal.SIGUSR2)),
        ).run()
    finally:
        os._exit(code)


def serve(requests: int, replies: int) -> None:
    """Fork a supervisor per request line read from ``requests``; report on ``replies``."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd fires
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(replies, "w", buffering=1)
    buffer = b""

    def reply(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")

    while True:
        ready, _, _ = select.select([requests, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                reply({"exited": pid, "status": status})
        if requests in ready:
            chunk = os.read(requests, 65536)
            if not chunk:
                return  # the caller is gone; supervisors go on by themselves
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as error:
                    reply({"error": f"fork failed: {error}"})
                    continue
                if pid == 0:
                    _become_supervisor(request, {requests, replies, wake_read, wake_write})
                try:
                    os.setpgid(pid, pid)
                except OSError:
                    pass  # the child did it first, or already ended
                reply({"started": pid})


def main() -> int:
    serve(sys.stdin.fileno(), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
