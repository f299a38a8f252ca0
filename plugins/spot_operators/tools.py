"""Running external tools (nfdump, editcap, tshark) the only acceptable way.

Argument lists (never a shell), a timeout, a checked exit code, and on failure an error that names
the tool, the file and the tail of its stderr. Spot logged failures of these tools as success.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STDERR_TAIL_CHARS = 2000


class ToolError(RuntimeError):
    """An external tool is missing, timed out or exited non-zero."""

    def __init__(self, tool: str, subject: str | Path, reason: str, stderr: str = "") -> None:
        tail = stderr.strip()[-STDERR_TAIL_CHARS:]
        message = f"{tool} failed on {subject}: {reason}"
        if tail:
            message += f"\n--- stderr tail ---\n{tail}"
        super().__init__(message)
        self.tool = tool
        self.subject = str(subject)
        self.reason = reason
        self.stderr_tail = tail


@dataclass(frozen=True)
class ToolResult:
    stdout: str
    stderr: str


def _environment(overrides: Mapping[str, str] | None) -> dict[str, str] | None:
    """The process environment with ``overrides`` on top (e.g. ``TZ=UTC``), or None for inherit."""
    return None if overrides is None else {**os.environ, **overrides}


def which(tool: str) -> str:
    """Absolute path of ``tool`` or a ToolError saying which Debian package provides it."""
    found = shutil.which(tool)
    if found is None:
        raise ToolError(tool, "PATH", "not installed (make setup installs nfdump, tshark, wireshark-common)")
    return found


def run_tool(
    args: Sequence[str], *, subject: str | Path, timeout: float, env: Mapping[str, str] | None = None
) -> ToolResult:
    """Run ``args`` to completion and return its output; raise :class:`ToolError` on any failure."""
    tool = Path(args[0]).name
    try:
        done = subprocess.run(  # noqa: S603 - an argument list, no shell: the one place tools run
            [which(args[0]), *args[1:]],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            env=_environment(env),
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise ToolError(tool, subject, f"timed out after {timeout:g}s", stderr) from None
    if done.returncode != 0:
        raise ToolError(tool, subject, f"exit code {done.returncode}", done.stderr)
    return ToolResult(done.stdout, done.stderr)


@contextmanager
def stream_tool(
    args: Sequence[str], *, subject: str | Path, timeout: float, env: Mapping[str, str] | None = None
) -> Iterator[Iterator[str]]:
    """Run ``args`` and yield its stdout lines as they come (big outputs never sit in memory).

    The exit code is checked when the block ends; a non-zero exit or the timeout raises ToolError even
    if every line was read, so a truncated output can never pass for a complete one.
    """
    tool = Path(args[0]).name
    with (
        subprocess.Popen(  # noqa: S603 - an argument list, no shell: the one place tools run
            [which(args[0]), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1 << 20,
            env=_environment(env),
        ) as proc
    ):
        assert proc.stdout is not None and proc.stderr is not None
        # A watchdog kills the tool at the deadline even while the caller is blocked reading it.
        timed_out = threading.Event()

        def _expire() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, _expire)
        watchdog.start()
        stderr_chunks: list[str] = []
        stderr_pipe = proc.stderr
        reader = threading.Thread(target=lambda: stderr_chunks.append(stderr_pipe.read()), daemon=True)
        reader.start()
        try:
            yield (line.rstrip("\n") for line in proc.stdout)
            proc.stdout.read()  # drain what the caller did not consume
            proc.wait()
        except BaseException:
            proc.kill()
            raise
        finally:
            watchdog.cancel()
            reader.join(timeout=10)
        stderr = "".join(stderr_chunks)
        if timed_out.is_set():
            raise ToolError(tool, subject, f"timed out after {timeout:g}s", stderr)
        if proc.returncode != 0:
            raise ToolError(tool, subject, f"exit code {proc.returncode}", stderr)
