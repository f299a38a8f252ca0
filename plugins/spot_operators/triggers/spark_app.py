"""Deferrable wait for a Spark application to end, in the triggerer's event loop.

Lives in plugins/ because the triggerer imports triggers by dotted path and does not put the DAG
folder on sys.path.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from spot_operators.hooks.spark_app import (
    MODES,
    StandaloneRestClient,
    YarnRmClient,
    kill_local,
    read_local_status,
)
from spot_operators.spark_apps import LOG_TAIL_LINES, SparkAppError, SparkAppState, SparkAppStatus

MAX_LOG_LINE_CHARS = 1000
"""Longer log lines are cut in events: the payload is stored in the metadata DB."""

EVENT_STATUS = {
    SparkAppState.SUCCEEDED: "success",
    SparkAppState.FAILED: "failed",
    SparkAppState.KILLED: "killed",
}


class SparkApplicationTrigger(BaseTrigger):
    """Poll one Spark application until it ends; fire one event; kill it if the task is killed.

    Event payload: ``status`` (``success`` | ``failed`` | ``killed`` | ``timeout``), ``state`` (the
    :class:`~spot_operators.spark_apps.SparkAppState`), ``mode``, ``name``, ``app_id``,
    ``submission_id``, ``run_dir``, ``message``, ``error`` (the driver's exception or the backend's
    reason, '' on success), ``log_tail`` (last lines of the driver log, newline-joined), ``exit_code``,
    ``polls``, ``waited_seconds``, ``triggerer_pid``.

    Everything needed to resume is in :meth:`serialize`: a restarted triggerer re-creates the trigger
    from it and keeps polling the same application (the deadline is wall-clock ``started_at`` +
    ``timeout``, so a restart does not extend it).

    :param mode: ``local`` (run folder of the launcher), ``yarn`` (run folder, then the ResourceManager
        once the application id is known) or ``standalone`` (REST gateway).
    :param run_dir: the launcher's run folder (local, yarn).
    :param pid: the supervisor's pid, ``pgid`` its process group, ``pid_start_time`` its start time
        (informational: the run folder's supervisor.json is the source of truth).
    :param timeout: seconds the application may run; then it is killed and the event is ``timeout``
        (None: no deadline, e.g. a continuous streaming listener).
    :param max_unknown_polls: consecutive polls without an answer (HTTP errors, unknown submission)
        tolerated before giving up with ``failed``.
    """

    def __init__(
        self,
        mode: str,
        name: str = "",
        run_dir: str | None = None,
        pid: int | None = None,
        pgid: int | None = None,
        pid_start_time: int | None = None,
        submission_id: str | None = None,
        app_id: str | None = None,
        rest_url: str | None = None,
        yarn_rm_url: str | None = None,
        yarn_user: str | None = None,
        verify: bool = True,
        poll_interval: float = 5.0,
        timeout: float | None = 24 * 3600.0,
        started_at: float | None = None,
        log_tail_lines: int = LOG_TAIL_LINES,
        max_unknown_polls: int = 10,
        kill_grace: float = 10.0,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode in {"local", "yarn"} and not run_dir:
            raise ValueError(f"mode {mode} needs run_dir")
        if mode == "standalone" and not (rest_url and submission_id):
            raise ValueError("mode standalone needs rest_url and submission_id")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        self.mode = mode
        self.name = name
        self.run_dir = run_dir
        self.pid = pid
        self.pgid = pgid
        self.pid_start_time = pid_start_time
        self.submission_id = submission_id
        self.app_id = app_id
        self.rest_url = rest_url
        self.yarn_rm_url = yarn_rm_url
        self.yarn_user = yarn_user
        self.verify = bool(verify)
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout) if timeout is not None else None
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.log_tail_lines = int(log_tail_lines)
        self.max_unknown_polls = int(max_unknown_polls)
        self.kill_grace = float(kill_grace)
        # Tests swap in an httpx.MockTransport; never serialized.
        self._transport: httpx.AsyncBaseTransport | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mode": self.mode,
                "name": self.name,
                "run_dir": self.run_dir,
                "pid": self.pid,
                "pgid": self.pgid,
                "pid_start_time": self.pid_start_time,
                "submission_id": self.submission_id,
                "app_id": self.app_id,
                "rest_url": self.rest_url,
                "yarn_rm_url": self.yarn_rm_url,
                "yarn_user": self.yarn_user,
                "verify": self.verify,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "started_at": self.started_at,
                "log_tail_lines": self.log_tail_lines,
                "max_unknown_polls": self.max_unknown_polls,
                "kill_grace": self.kill_grace,
            },
        )

    # --- backends -------------------------------------------------------------------------------

    def _standalone(self) -> StandaloneRestClient:
        assert self.rest_url
        return StandaloneRestClient(self.rest_url, verify=self.verify, transport=self._transport)

    def _yarn(self) -> YarnRmClient:
        assert self.yarn_rm_url
        return YarnRmClient(
            self.yarn_rm_url, user=self.yarn_user, verify=self.verify, transport=self._transport
        )

    async def _local_status(self) -> SparkAppStatus:
        assert self.run_dir
        # File reads and /proc checks block: keep them off the loop every deferred task shares.
        return await asyncio.to_thread(read_local_status, self.run_dir, self.log_tail_lines)

    async def poll_status(self) -> SparkAppStatus:
        """One look at the application through its backend."""
        if self.mode == "standalone":
            assert self.submission_id
            return await self._standalone().astatus(self.submission_id)
        local = await self._local_status()
        if self.mode == "local":
            return local
        self.app_id = self.app_id or local.app_id
        if not (self.yarn_rm_url and self.app_id):
            return local  # not submitted to YARN yet, or no RM to ask: spark-submit's exit decides
        remote = await self._yarn().astatus(self.app_id)
        return SparkAppStatus(
            remote.state,
            message=remote.message,
            driver_error=remote.driver_error
            or (local.driver_error if remote.state is SparkAppState.FAILED else ""),
            log_tail=local.log_tail,
            app_id=self.app_id,
            exit_code=local.exit_code,
        )

    async def kill_application(self) -> None:
        """Kill the application through its backend (and the local spark-submit, if any)."""
        if self.mode == "standalone":
            assert self.submission_id
            accepted = await self._standalone().akill(self.submission_id)
            self.log.info("standalone kill of %s accepted: %s", self.submission_id, accepted)
            return
        if self.mode == "yarn":
            if not self.app_id and self.run_dir:
                self.app_id = (await self._local_status()).app_id
            if self.yarn_rm_url and self.app_id:
                state = await self._yarn().akill(self.app_id)
                self.log.info("YARN kill of %s answered state %s", self.app_id, state)
        assert self.run_dir
        killed = await asyncio.to_thread(kill_local, self.run_dir, self.kill_grace)
        self.log.info("killed spark-submit of %s: %s", self.run_dir, killed)

    # --- the trigger ----------------------------------------------------------------------------

    def _event(self, status: str, app: SparkAppStatus, polls: int, error: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "state": app.state.value,
                "mode": self.mode,
                "name": self.name,
                "app_id": app.app_id or self.app_id,
                "submission_id": app.submission_id or self.submission_id,
                "run_dir": self.run_dir,
                "message": app.message,
                "error": error or app.driver_error,
                "log_tail": "\n".join(line[:MAX_LOG_LINE_CHARS] for line in app.log_tail),
                "exit_code": app.exit_code,
                "polls": polls,
                "waited_seconds": round(time.time() - self.started_at, 3),
                "triggerer_pid": os.getpid(),
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        polls = 0
        unknown = 0
        last = SparkAppStatus(SparkAppState.UNKNOWN)
        while True:
            polls += 1
            try:
                status = await self.poll_status()
            except (httpx.HTTPError, SparkAppError) as exc:
                status = SparkAppStatus(SparkAppState.UNKNOWN, message=f"status poll failed: {exc}")
            if status.terminal:
                yield self._event(EVENT_STATUS[status.state], status, polls)
                return
            if status.state is SparkAppState.UNKNOWN:
                unknown += 1
                self.log.warning("Spark app %s: %s (%d in a row)", self.name, status.message, unknown)
                if unknown >= self.max_unknown_polls:
                    yield self._event(
                        "failed", status, polls, error=f"no status after {unknown} polls: {status.message}"
                    )
                    return
            else:
                unknown = 0
                last = status
                self.log.info(
                    "Spark app %s is %s (poll %d): %s", self.name, status.state.value, polls, status.message
                )
            if self.timeout is not None and time.time() - self.started_at >= self.timeout:
                self.log.warning(
                    "Spark app %s still %s after %.0f s: killing it", self.name, last.state, self.timeout
                )
                await self.kill_application()
                final = await self._final_status_after_kill(last)
                yield self._event(
                    "timeout", final, polls, error=f"still running after {self.timeout:g}s; killed"
                )
                return
            await asyncio.sleep(self.poll_interval)

    async def _final_status_after_kill(self, last: SparkAppStatus) -> SparkAppStatus:
        try:
            return await self.poll_status()
        except (httpx.HTTPError, SparkAppError):
            return last

    async def on_kill(self) -> None:
        """Kill the Spark application: the user killed the deferred task (mark failed/success, clear).

        Why here and not in ``cleanup()`` or on ``CancelledError``: the triggerer also cancels
        ``run()`` when it merely shuts down, restarts or hands the trigger to another triggerer, and
        the application must survive that (the new trigger resumes from :meth:`serialize`). Before
        Airflow 3.3 providers told the cases apart with a ``safe_to_cancel()`` check of the task
        instance's state (still DEFERRED = triggerer restart); Airflow 3.3's triggerer calls
        ``BaseTrigger.on_kill()`` only for user actions (``cancel_triggers`` passes a user-action
        cancel message; shutdown, redistribution and trigger timeouts do not call it), bounded by
        ``[triggerer] on_kill_timeout``.
        """
        self.log.warning("task killed by a user: killing Spark application %s", self.name)
        await self.kill_application()
