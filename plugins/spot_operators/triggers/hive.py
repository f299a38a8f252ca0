"""Run HQL on HiveServer2 from the triggerer: the query runs on the server, the task holds no slot.

Lives in plugins/ because the triggerer imports triggers by dotted path and does not put the DAG
folder on sys.path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

T = TypeVar("T")

# TOperationState values of the HiveServer2 thrift API (TCLIService), kept here so that importing the
# trigger does not import thrift.
_RUNNING_STATES = {0: "INITIALIZED", 1: "RUNNING", 7: "PENDING"}
_STATE_NAMES = {
    0: "INITIALIZED",
    1: "RUNNING",
    2: "FINISHED",
    3: "CANCELED",
    4: "CLOSED",
    5: "ERROR",
    6: "UNKNOWN",
    7: "PENDING",
    8: "TIMEDOUT",
}
_FINISHED = 2
_MAX_ERROR_CHARS = 4000


class HiveStatementError(Exception):
    """A statement ended in a state other than FINISHED; ``str()`` is the server's message."""


def server_message(error: Any) -> str:
    """The server's own words from a status response, a PyHive/thrift exception, or any exception.

    Drops Java stack frames (``\\tat org.apache...``) and the generic HiveSQLException prefix, so a
    task log shows e.g. ``[TABLE_OR_VIEW_NOT_FOUND] ... cannot be found`` instead of a Python repr.
    """
    text = ""
    status = getattr(error, "status", None)
    response = error.args[0] if isinstance(error, Exception) and error.args else None
    if status is None and response is not None:
        status = getattr(response, "status", None)
    if getattr(error, "errorMessage", None):
        text = str(error.errorMessage)
    elif status is not None and getattr(status, "errorMessage", None):
        text = str(status.errorMessage)
    elif status is not None and getattr(status, "infoMessages", None):
        # e.g. '*org.apache.hive.service.cli.HiveSQLException:Error running query: [X] ...:31:30'
        first = str(status.infoMessages[0]).lstrip("*")
        text = first.rsplit(":", 2)[0] if first.count(":") >= 2 else first
    elif isinstance(error, Exception):
        text = str(error) or type(error).__name__
    text = text.split("\nCaused by:", 1)[0]  # Spark repeats the same error as the cause
    kept = [line for line in text.splitlines() if not line.lstrip().startswith(("at ", "... "))]
    text = "\n".join(kept).strip()
    for prefix in ("org.apache.hive.service.cli.HiveSQLException:", "Error running query:"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    return text[:_MAX_ERROR_CHARS]


def _json_value(value: Any) -> Any:
    """Result cells as JSON values (events and XComs are JSON)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


class HiveQueryTrigger(BaseTrigger):
    """Run ``statements`` in order in one HiveServer2 session, then ``final_statements`` regardless.

    Each statement is submitted with ``runAsync`` and polled every ``poll_interval`` seconds; every
    blocking thrift call runs in a thread (``asyncio.to_thread``) under a lock, so the triggerer's
    event loop never waits on the server. Fires once:

    * ``{"status": "success", "statements": n, "rows": [...], "columns": [...], "elapsed": s, ...}``
      (rows of the last statement when ``fetch_rows``, at most ``max_rows``), or
    * ``{"status": "error", "statement_index": i, "statement": sql, "error": server message, ...}``.

    Errors of final statements never turn a success into an error (the data work is done, a retry
    would repeat it); they are reported under ``final_errors``.

    **Statements must be idempotent.** The trigger keeps no progress: a triggerer that restarts (or
    hands the trigger to another triggerer) runs the whole list again from the first statement. Use
    ``IF [NOT] EXISTS``, ``INSERT OVERWRITE`` of a partition, uniquely named temporary tables that a
    re-run recreates, and checks that fail instead of repeating damage. When the trigger stops for any
    reason (success, error, user kill, triggerer shutdown) a running operation is cancelled and the
    session closed, so an old copy of a statement cannot keep running beside its re-run.

    :param statements: HQL statements without a trailing ``;`` (see ``hql.split_statements``).
    :param final_statements: run after ``statements`` even when one failed, e.g. DROP of temp tables.
    :param hive_conn_id: a ``hiveserver2`` connection, opened the way HiveServer2Hook does (PyHive).
    :param schema: database of the session.
    :param timeout: seconds for the whole run, then the running statement is cancelled (error event).
    """

    def __init__(
        self,
        statements: Sequence[str],
        final_statements: Sequence[str] = (),
        hive_conn_id: str = "spot_hiveserver2",
        schema: str = "default",
        poll_interval: float = 2.0,
        fetch_rows: bool = False,
        max_rows: int = 1000,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.statements = [str(s) for s in statements]
        self.final_statements = [str(s) for s in final_statements]
        self.hive_conn_id = hive_conn_id
        self.schema = schema
        self.poll_interval = float(poll_interval)
        self.fetch_rows = bool(fetch_rows)
        self.max_rows = int(max_rows)
        self.timeout = None if timeout is None else float(timeout)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._cursor: Any = None
        self._running = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "statements": list(self.statements),
                "final_statements": list(self.final_statements),
                "hive_conn_id": self.hive_conn_id,
                "schema": self.schema,
                "poll_interval": self.poll_interval,
                "fetch_rows": self.fetch_rows,
                "max_rows": self.max_rows,
                "timeout": self.timeout,
            },
        )

    # ---------------------------------------------------------------- blocking parts (threads)

    def _connect(self) -> Any:
        """A PyHive connection from the Airflow connection (hook import deferred: keeps import light)."""
        from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

        return HiveServer2Hook(hiveserver2_conn_id=self.hive_conn_id).get_conn(self.schema)

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking thrift call in a thread; the lock keeps calls on the session serial."""

        def locked() -> T:
            with self._lock:
                return func(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def _fetch(self) -> tuple[list[str], list[list[Any]]]:
        cursor = self._cursor
        if cursor.description is None:
            return [], []
        columns = [str(d[0]) for d in cursor.description]
        rows = cursor.fetchmany(self.max_rows) if self.max_rows > 0 else []
        return columns, [[_json_value(v) for v in row] for row in rows]

    def _close(self) -> None:
        """Cancel a running operation (best effort), then close operation and session."""
        cursor, conn, running = self._cursor, self._conn, self._running
        self._cursor = self._conn = None
        self._running = False
        if cursor is not None:
            if running:
                with contextlib.suppress(Exception):
                    cursor.cancel()
            with contextlib.suppress(Exception):
                cursor.close()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # ---------------------------------------------------------------- async driver

    async def _execute(self, sql: str, deadline: float | None) -> None:
        """Submit ``sql`` and poll until it ends; raise :class:`HiveStatementError` unless FINISHED."""
        self._running = True
        try:
            await self._call(self._cursor.execute, sql, async_=True)
        except Exception as exc:
            self._running = False
            raise HiveStatementError(server_message(exc)) from exc
        while True:
            try:
                status = await self._call(self._cursor.poll, False)
            except Exception as exc:
                raise HiveStatementError(server_message(exc)) from exc
            state = status.operationState
            if state not in _RUNNING_STATES:
                break
            if deadline is not None and time.monotonic() > deadline:
                with contextlib.suppress(Exception):
                    await self._call(self._cursor.cancel)
                self._running = False
                raise HiveStatementError(f"cancelled after the trigger's timeout of {self.timeout} s")
            await asyncio.sleep(self.poll_interval)
        self._running = False
        if state != _FINISHED:
            message = server_message(status) or f"operation ended in state {_STATE_NAMES.get(state, state)}"
            raise HiveStatementError(message)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._run_all()
        finally:
            # Also reached on cancellation (user kill, triggerer shutdown): stop the server's work.
            await asyncio.shield(asyncio.to_thread(self._close_locked))
        yield TriggerEvent(event)

    async def _run_all(self) -> dict[str, Any]:
        started = time.monotonic()
        deadline = None if self.timeout is None else started + self.timeout
        base: dict[str, Any] = {"triggerer_pid": os.getpid(), "statements": len(self.statements)}
        try:
            self._conn = await self._call(self._connect)
            self._cursor = await self._call(self._conn.cursor)
        except Exception as exc:
            return {
                **base,
                "status": "error",
                "statement_index": None,
                "statement": None,
                "error": f"cannot open a HiveServer2 session ({self.hive_conn_id}): " + server_message(exc),
                "final_errors": [],
                "elapsed": round(time.monotonic() - started, 3),
            }
        event: dict[str, Any] = {**base, "status": "success", "rows": [], "columns": []}
        for index, sql in enumerate(self.statements):
            self.log.info("HQL %d/%d:\n%s", index + 1, len(self.statements), sql)
            try:
                await self._execute(sql, deadline)
            except HiveStatementError as exc:
                self.log.error("HQL %d failed: %s", index + 1, exc)
                event = {
                    **base,
                    "status": "error",
                    "statement_index": index,
                    "statement": sql,
                    "error": str(exc),
                }
                break
        if event["status"] == "success" and self.fetch_rows and self.statements:
            try:
                event["columns"], event["rows"] = await self._call(self._fetch)
            except Exception as exc:
                event = {
                    **base,
                    "status": "error",
                    "statement_index": len(self.statements) - 1,
                    "statement": self.statements[-1],
                    "error": "fetching the result failed: " + server_message(exc),
                }
        event["final_errors"] = await self._run_final()
        event["elapsed"] = round(time.monotonic() - started, 3)
        return event

    async def _run_final(self) -> list[dict[str, Any]]:
        errors = []
        for index, sql in enumerate(self.final_statements):
            self.log.info("final HQL %d/%d:\n%s", index + 1, len(self.final_statements), sql)
            try:
                await self._execute(sql, None)
            except HiveStatementError as exc:
                self.log.warning("final HQL %d failed: %s", index + 1, exc)
                errors.append({"statement_index": index, "statement": sql, "error": str(exc)})
        return errors

    def _close_locked(self) -> None:
        with self._lock:
            self._close()

    async def cleanup(self) -> None:
        """Release the session if ``run`` did not get to (runs on every exit of the trigger)."""
        if self._conn is not None or self._cursor is not None:
            await asyncio.to_thread(self._close_locked)

    async def on_kill(self) -> None:
        """A user killed the task: cancel the running statement (``run``'s finally closes the rest)."""
        await self.cleanup()
