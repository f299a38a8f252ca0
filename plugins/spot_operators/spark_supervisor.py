"""Supervise one detached spark-submit: ``python -m spot_operators.spark_supervisor <run_dir> -- <argv...>``.

The Airflow worker that launches a Spark application exits as soon as the task defers, so nobody
would be left to collect spark-submit's exit code and output. This small process (started in a new
session by :class:`spot_operators.hooks.spark_app.LocalSparkLauncher`) does it, files only:

* ``supervisor.json`` (atomically, before the child starts): its pid, process group and start time,
  so a trigger in another process (or a restarted triggerer) can tell whether it still runs;
* ``driver.log``: spark-submit's stdout and stderr, line by line as they come;
* ``status.json`` (atomically, at the end): the exit code (negative: killed by that signal).

There is deliberately no timeout here: the trigger owns the deadline and kills the process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spot_operators.job_support import write_json_atomically

SUPERVISOR_FILE = "supervisor.json"
STATUS_FILE = "status.json"
LOG_FILE = "driver.log"
KILL_FILE = "kill_requested"


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux ``/proc``), to detect pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing parenthesis.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m spot_operators.spark_supervisor <run_dir> -- <command...>", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    command = argv[2:]
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        run_dir / SUPERVISOR_FILE,
        {
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "start_time": process_start_time(os.getpid()),
            "command": command,
            "started_at": time.time(),
        },
    )
    terminated: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def _forward(signum: int, _frame: Any) -> None:
        # Usually the whole group got the signal; forwarding covers a kill of this pid alone.
        terminated.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    with open(run_dir / LOG_FILE, "ab") as log:
        try:
            child = subprocess.Popen(  # noqa: S603 - an argument list from the launcher, no shell
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            log.write(f"spot spark supervisor: cannot start {command[0]!r}: {exc}\n".encode())
            write_json_atomically(
                run_dir / STATUS_FILE,
                {"exit_code": 127, "error": f"cannot start {command[0]}: {exc}", "finished_at": time.time()},
            )
            return 0
        write_json_atomically(
            run_dir / SUPERVISOR_FILE,
            {**json.loads((run_dir / SUPERVISOR_FILE).read_text()), "child_pid": child.pid},
        )
        assert child.stdout is not None
        for line in child.stdout:
            log.write(line)
            log.flush()
        exit_code = child.wait()
    write_json_atomically(
        run_dir / STATUS_FILE,
        {"exit_code": exit_code, "signals": terminated, "finished_at": time.time()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
