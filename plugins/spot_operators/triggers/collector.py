"""Deferrable wait for complete new files in a pipeline's collector directory.

Replaces Spot's inotify watcher (which missed every file present at start-up or written while it
was down) with polling snapshots compared by :mod:`spot_operators.detection`. Lives in plugins/
because the triggerer imports triggers by dotted path and does not put the DAG folder on sys.path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from spot_operators.detection import (
    CollectorPathError,
    FileSnapshot,
    ScanProblem,
    compile_matcher,
    path_text,
    ready_files,
    scan_directory,
)

if TYPE_CHECKING:
    from spot_operators.ledger import FileLedger, SettledKeys

MIN_SETTLE_DELAY = 1.0
"""Shortest gap (seconds, capped by ``poll_interval``) between two looks at a settling file."""


@dataclass(slots=True)
class _Poll:
    """One scan, minus files already done."""

    candidates: dict[str, FileSnapshot]
    problems: list[ScanProblem]
    done: int
    in_progress: int


def _poll_folder(
    collector_path: str, recursive: bool, matches: Callable[[str], bool], exclude: Container[str]
) -> _Poll:
    """Scan ``collector_path`` and drop the files whose key is in ``exclude`` (blocking I/O).

    ``exclude`` is only asked for membership (a set, or the watcher's :class:`SettledKeys`), never
    copied: the cost follows the folder, not the size of ``exclude``.
    """
    scan = scan_directory(Path(collector_path), recursive=recursive, matches=matches)
    candidates = {p: s for p, s in scan.files.items() if s.key not in exclude}
    return _Poll(
        candidates=candidates,
        problems=scan.problems,
        done=len(scan.files) - len(candidates),
        in_progress=scan.skipped_in_progress,
    )


def _check_timing(poll_interval: float, stable_seconds: float) -> None:
    """Fail in the task that builds the trigger, not later in the triggerer."""
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
    if stable_seconds < 0:
        raise ValueError(f"stable_seconds must be >= 0, got {stable_seconds}")


def _next_delay(poll_interval: float, stable_seconds: float, settling: int) -> float:
    """``poll_interval``, or sooner while files settle so start-up files need not wait a full one."""
    if not settling:
        return poll_interval
    return min(poll_interval, max(stable_seconds, MIN_SETTLE_DELAY))


class CollectorFilesTrigger(BaseTrigger):
    """Fire once with the files of ``collector_path`` that are complete and not done yet.

    Events (payload dicts):

    * ``{"status": "ready", "pipeline", "collector_path", "files": [{"path", "size", "mtime_ns"}, ...],
      "more_ready", "polls", "waited_seconds"}`` as soon as at least one file is ready (see
      :func:`~spot_operators.detection.ready_files`), oldest first, at most ``max_files`` of them;
      ``more_ready`` counts the ready files left for the next run. Entries come from
      :meth:`FileSnapshot.to_event`: read them back with :meth:`FileSnapshot.from_event`
      (names that are not UTF-8 travel in ``path_b64``).
    * ``{"status": "timeout", ...}`` when nothing is ready after ``max_wait_seconds``, so the run can
      end as skipped and ``airflow dags test`` never hangs.
    * ``{"status": "error", "message", ...}`` when ``collector_path`` is missing or unreadable.

    :param pipeline: pipeline name (key under ``pipelines`` in the config), for logs and events.
    :param collector_path: directory to watch.
    :param patterns: regexes; a file is a candidate when one fullmatches its base name
        (``PipelineConfig.matches``). Hidden and in-progress names never are.
    :param recursive: also watch sub-directories (dot-directories excepted).
    :param poll_interval: seconds between scans (the config's ``ingestion_interval``).
    :param stable_seconds: minimum age of a file's mtime before it counts as complete.
    :param max_wait_seconds: give up (status ``timeout``) after this long without a ready file.
    :param exclude: keys ``path|size|mtime_ns`` (:attr:`FileSnapshot.key`) of files already done.
    :param max_files: most files in one event: a backlog after downtime is split over several runs
        instead of exceeding Airflow's ``max_map_length`` (1024) in the mapped tasks downstream.
    """

    def __init__(
        self,
        pipeline: str,
        collector_path: str,
        patterns: list[str],
        recursive: bool = False,
        poll_interval: float = 10.0,
        stable_seconds: float = 30.0,
        max_wait_seconds: float = 3600.0,
        exclude: list[str] | None = None,
        max_files: int = 1000,
    ) -> None:
        super().__init__()
        _check_timing(poll_interval, stable_seconds)
        if max_wait_seconds < 0:
            raise ValueError(f"max_wait_seconds must be >= 0, got {max_wait_seconds}")
        if max_files < 1:
            raise ValueError(f"max_files must be >= 1, got {max_files}")
        self.pipeline = pipeline
        self.collector_path = str(collector_path)
        self.patterns = list(patterns)
        self.recursive = bool(recursive)
        self.poll_interval = float(poll_interval)
        self.stable_seconds = float(stable_seconds)
        self.max_wait_seconds = float(max_wait_seconds)
        self.exclude = list(exclude or [])
        self._excluded = frozenset(self.exclude)
        self.max_files = int(max_files)
        # Compiled now so a bad pattern fails in the task that defers, not later in the triggerer.
        self._matches: Callable[[str], bool] = compile_matcher(self.patterns)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pipeline": self.pipeline,
                "collector_path": self.collector_path,
                "patterns": list(self.patterns),
                "recursive": self.recursive,
                "poll_interval": self.poll_interval,
                "stable_seconds": self.stable_seconds,
                "max_wait_seconds": self.max_wait_seconds,
                "exclude": list(self.exclude),
                "max_files": self.max_files,
            },
        )

    def _poll(self) -> _Poll:
        """Scan and drop done files; blocking file-system work, run in a thread by :meth:`run`."""
        return _poll_folder(self.collector_path, self.recursive, self._matches, self._excluded)

    def _next_delay(self, settling: int) -> float:
        return _next_delay(self.poll_interval, self.stable_seconds, settling)

    def ready_now(self, gap: float = MIN_SETTLE_DELAY) -> dict[str, Any] | None:
        """The ``ready`` event :meth:`run` would fire at once, from two scans ``gap`` seconds apart.

        Blocking (the operator calls it before deferring); None when nothing is ready yet or the
        folder is unusable (then the trigger reports it).
        """
        started = time.monotonic()
        try:
            first = self._poll()
            if not first.candidates:
                return None
            time.sleep(gap)
            second = self._poll()
        except CollectorPathError:
            return None
        ready = ready_files(
            first.candidates, second.candidates, stable_seconds=self.stable_seconds, now_ns=time.time_ns()
        )
        if not ready:
            return None
        batch = ready[: self.max_files]
        files = [s.to_event() for s in batch]
        return self._event("ready", started, 2, files=files, more_ready=len(ready) - len(batch)).payload

    def _event(self, status: str, started: float, polls: int, **extra: Any) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "pipeline": self.pipeline,
                "collector_path": self.collector_path,
                "polls": polls,
                "waited_seconds": round(time.monotonic() - started, 3),
                **extra,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        previous: dict[str, FileSnapshot] = {}
        reported_problems: set[str] = set()
        polls = 0
        while True:
            polls += 1
            try:
                # A scan of a large or NFS-mounted directory blocks; keep it off the event loop,
                # which every other deferred task of this triggerer shares.
                poll = await asyncio.to_thread(self._poll)
            except CollectorPathError as exc:
                self.log.error("pipeline %s: %s", self.pipeline, exc)
                yield self._event("error", started, polls, message=str(exc))
                return
            problems = {str(p) for p in poll.problems}
            for problem in sorted(problems - reported_problems):
                self.log.warning("pipeline %s: skipped %s", self.pipeline, problem)
            reported_problems = problems

            ready = ready_files(
                previous, poll.candidates, stable_seconds=self.stable_seconds, now_ns=time.time_ns()
            )
            settling = len(poll.candidates) - len(ready)
            self.log.info(
                "pipeline %s poll %d of %s: %d candidate(s), %d ready, %d still settling, "
                "%d already done, %d hidden or in progress, %d problem(s)",
                self.pipeline,
                polls,
                self.collector_path,
                len(poll.candidates),
                len(ready),
                settling,
                poll.done,
                poll.in_progress,
                len(problems),
            )
            if ready:
                batch = ready[: self.max_files]
                yield self._event(
                    "ready",
                    started,
                    polls,
                    files=[s.to_event() for s in batch],
                    more_ready=len(ready) - len(batch),
                )
                return
            elapsed = time.monotonic() - started
            if elapsed >= self.max_wait_seconds:
                self.log.info("pipeline %s: no complete file after %.1f s; giving up", self.pipeline, elapsed)
                yield self._event("timeout", started, polls, still_settling=settling)
                return
            previous = poll.candidates
            # Never sleep past the deadline: the last scan happens at max_wait_seconds.
            await asyncio.sleep(min(self._next_delay(settling), self.max_wait_seconds - elapsed))


class CollectorFolderWatchTrigger(BaseEventTrigger):
    """Event-driven scheduling of a collect DAG: fire when new complete files sit in the folder.

    Used through an :class:`~airflow.sdk.AssetWatcher` on the pipeline's collector-folder asset, so
    the asset graph shows *collector folder -> collect DAG -> topic -> load DAG -> table*, and runs
    start only when there is something to collect. Unlike :class:`CollectorFilesTrigger` it never
    stops: after an event it keeps watching. A file is announced once per triggerer process (its
    ``path|size|mtime_ns`` key is remembered while the file stays); files the ledger holds as done or
    given up are never announced, so a folder of kept originals does not start runs in a loop. After
    a triggerer restart a file still waiting is announced again, which at worst starts a run that
    finds the file already claimed and skips.

    The ledger is read in full once; every later poll reads only the records changed since the last
    one (:class:`~spot_operators.ledger.SettledKeys`), so a poll's cost does not grow with every file
    ever collected. The keys live in this instance only (not serialized): a new instance starts with a
    full read.

    Event payload: ``{"pipeline", "collector_path", "new_files", "files": [base names, at most 20]}``.
    A missing or unreadable folder is logged and watched again at the next poll: a watcher that died
    would silently stop the pipeline.
    """

    def __init__(
        self,
        pipeline: str,
        collector_path: str,
        patterns: list[str],
        ledger_path: str,
        recursive: bool = False,
        poll_interval: float = 10.0,
        stable_seconds: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        super().__init__()
        _check_timing(poll_interval, stable_seconds)
        self.pipeline = pipeline
        self.collector_path = str(collector_path)
        self.patterns = list(patterns)
        self.ledger_path = str(ledger_path)
        self.recursive = bool(recursive)
        self.poll_interval = float(poll_interval)
        self.stable_seconds = float(stable_seconds)
        self.max_attempts = int(max_attempts)
        self._matches: Callable[[str], bool] = compile_matcher(self.patterns)
        self._ledger: FileLedger | None = None
        self._settled_keys: SettledKeys | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pipeline": self.pipeline,
                "collector_path": self.collector_path,
                "patterns": list(self.patterns),
                "ledger_path": self.ledger_path,
                "recursive": self.recursive,
                "poll_interval": self.poll_interval,
                "stable_seconds": self.stable_seconds,
                "max_attempts": self.max_attempts,
            },
        )

    def _settled(self) -> Container[str]:
        """Keys of files the ledger holds as done or given up (none before the first collect).

        Incremental: reads the ledger's changes since the previous poll. The ledger object is made
        once (opening one checks the schema under the write lock, which a poll must not take); a
        ledger that went away or failed is opened again, and read in full, at the next poll.
        """
        from spot_operators.ledger import FileLedger, SettledKeys

        if self._settled_keys is None:
            self._settled_keys = SettledKeys(self.pipeline, self.max_attempts)
        keys = self._settled_keys
        if not Path(self.ledger_path).exists():
            self._ledger = None
            keys.clear()
            return keys
        try:
            if self._ledger is None:
                self._ledger = FileLedger(self.ledger_path)
            return keys.refresh(self._ledger)
        except BaseException:
            self._ledger = None
            keys.clear()
            raise

    def _poll(self) -> _Poll:
        return _poll_folder(self.collector_path, self.recursive, self._matches, self._settled())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        previous: dict[str, FileSnapshot] = {}
        announced: set[str] = set()
        failing = ""
        while True:
            try:
                poll = await asyncio.to_thread(self._poll)
            except Exception as exc:  # a folder or ledger problem must not end the watch
                message = f"{type(exc).__name__}: {exc}"
                if message != failing:
                    self.log.error(
                        "pipeline %s: cannot watch %s: %s", self.pipeline, self.collector_path, message
                    )
                failing = message
                await asyncio.sleep(self.poll_interval)
                continue
            if failing:
                self.log.info("pipeline %s: watching %s again", self.pipeline, self.collector_path)
                failing = ""
            ready = ready_files(
                previous, poll.candidates, stable_seconds=self.stable_seconds, now_ns=time.time_ns()
            )
            # Forget files that left (collected and moved, or deleted): a new file may reuse the name.
            announced &= {s.key for s in poll.candidates.values()}
            new = [s for s in ready if s.key not in announced]
            if new:
                announced.update(s.key for s in new)
                self.log.info(
                    "pipeline %s: %d new ready file(s) in %s: %s",
                    self.pipeline,
                    len(new),
                    self.collector_path,
                    ", ".join(Path(s.path).name for s in new[:20]),
                )
                yield TriggerEvent(
                    {
                        "pipeline": self.pipeline,
                        "collector_path": self.collector_path,
                        "new_files": len(new),
                        "files": [Path(path_text(s.path)).name for s in new[:20]],
                    }
                )
            previous = poll.candidates
            settling = len(poll.candidates) - len(ready)
            await asyncio.sleep(_next_delay(self.poll_interval, self.stable_seconds, settling))
