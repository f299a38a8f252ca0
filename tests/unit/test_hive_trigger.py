"""HiveQueryTrigger with a fake PyHive connection, and HiveQueryOperator's defer/resume contract."""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred
from airflow.sdk.exceptions import AirflowException

from spot_operators.operators.hive import (
    HiveCompactPartitionOperator,
    HiveLoadStagedCsvOperator,
    HivePartitionRegisterOperator,
    HiveQueryOperator,
)
from spot_operators.triggers import hive as hive_module
from spot_operators.triggers.hive import HiveQueryTrigger, server_message

CLASSPATH = "spot_operators.triggers.hive.HiveQueryTrigger"
RUNNING, FINISHED, CANCELED, ERROR = 1, 2, 3, 5
LOOP_THREAD = threading.get_ident


class FakeCursor:
    """Records calls; each statement is RUNNING for ``polls_running`` polls, then ends as scripted."""

    def __init__(self, outcomes: dict[str, Any], polls_running: int = 2, loop_thread: int = 0) -> None:
        self.outcomes = outcomes
        self.polls_running = polls_running
        self.loop_thread = loop_thread
        self.calls: list[tuple[str, Any]] = []
        self.sql = ""
        self.polls = 0
        self.description: list[tuple[str, ...]] | None = None
        self.rows: list[tuple[Any, ...]] = []

    def _thread_check(self) -> None:
        assert threading.get_ident() != self.loop_thread, "a blocking thrift call ran on the event loop"

    def execute(self, sql: str, async_: bool = False) -> None:
        self._thread_check()
        assert async_ is True
        self.calls.append(("execute", sql))
        outcome = self.outcomes.get(sql)
        if isinstance(outcome, Exception):
            raise outcome
        self.sql, self.polls = sql, 0

    def poll(self, get_progress_update: bool = True) -> Any:
        self._thread_check()
        self.calls.append(("poll", self.sql))
        self.polls += 1
        if self.polls <= self.polls_running:
            return SimpleNamespace(operationState=RUNNING, errorMessage=None)
        outcome = self.outcomes.get(self.sql, "ok")
        if isinstance(outcome, tuple):  # (state, errorMessage)
            return SimpleNamespace(operationState=outcome[0], errorMessage=outcome[1])
        if isinstance(outcome, list):
            self.description = [("c1",), ("c2",)]
            self.rows = outcome
        return SimpleNamespace(operationState=FINISHED, errorMessage=None)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        self._thread_check()
        return self.rows[:size]

    def cancel(self) -> None:
        self.calls.append(("cancel", self.sql))

    def close(self) -> None:
        self.calls.append(("close_cursor", None))


class FakeConnection:
    def __init__(self, cursor: FakeCursor) -> None:
        self._cursor = cursor
        self.closed = False

    def cursor(self) -> FakeCursor:
        return self._cursor

    def close(self) -> None:
        self.closed = True


def fake(monkeypatch: pytest.MonkeyPatch, outcomes: dict[str, Any], **kwargs: Any) -> FakeConnection:
    conn = FakeConnection(FakeCursor(outcomes, loop_thread=threading.get_ident(), **kwargs))
    monkeypatch.setattr(HiveQueryTrigger, "_connect", lambda self: conn)
    return conn


def run_trigger(trigger: HiveQueryTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), 20))


def test_serialize_round_trip_through_the_classpath() -> None:
    trigger = HiveQueryTrigger(
        ["SELECT 1", "SELECT 'a;b'"],
        final_statements=["DROP TABLE IF EXISTS x"],
        hive_conn_id="hs2",
        schema="spot",
        poll_interval=0.5,
        fetch_rows=True,
        max_rows=10,
        timeout=60,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "statements": ["SELECT 1", "SELECT 'a;b'"],
        "final_statements": ["DROP TABLE IF EXISTS x"],
        "hive_conn_id": "hs2",
        "schema": "spot",
        "poll_interval": 0.5,
        "fetch_rows": True,
        "max_rows": 10,
        "timeout": 60.0,
    }


def test_success_polls_in_threads_and_returns_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = fake(monkeypatch, {"SELECT 2": [(1, "a"), (2, None)]})
    trigger = HiveQueryTrigger(
        ["SELECT 1", "SELECT 2"], ["DROP x"], poll_interval=0.01, fetch_rows=True, max_rows=1
    )
    (event,) = run_trigger(trigger)
    assert event["status"] == "success"
    assert event["statements"] == 2
    assert event["rows"] == [[1, "a"]] and event["columns"] == ["c1", "c2"]
    assert event["final_errors"] == [] and event["elapsed"] >= 0
    assert event["triggerer_pid"] == os.getpid()
    calls = conn._cursor.calls
    assert [c for c in calls if c[0] == "execute"] == [
        ("execute", s) for s in ("SELECT 1", "SELECT 2", "DROP x")
    ]
    assert sum(1 for c in calls if c == ("poll", "SELECT 1")) == 3  # RUNNING twice, then FINISHED
    assert ("cancel", "DROP x") not in calls and conn.closed


def test_error_surfaces_the_server_message_and_runs_final_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    server_text = (
        "org.apache.hive.service.cli.HiveSQLException: Error running query: [TABLE_OR_VIEW_NOT_FOUND] "
        "The table or view `db`.`nope` cannot be found.\n\tat org.apache.spark.Foo(Foo.scala:1)\n"
        "Caused by: the same again"
    )
    conn = fake(monkeypatch, {"SELECT * FROM db.nope": (ERROR, server_text), "DROP bad": (ERROR, "no drop")})
    trigger = HiveQueryTrigger(
        ["SELECT 1", "SELECT * FROM db.nope", "SELECT 3"], ["DROP tmp", "DROP bad"], poll_interval=0.01
    )
    (event,) = run_trigger(trigger)
    assert event["status"] == "error"
    assert event["statement_index"] == 1 and event["statement"] == "SELECT * FROM db.nope"
    assert event["error"] == "[TABLE_OR_VIEW_NOT_FOUND] The table or view `db`.`nope` cannot be found."
    assert event["final_errors"] == [{"statement_index": 1, "statement": "DROP bad", "error": "no drop"}]
    executed = [sql for kind, sql in conn._cursor.calls if kind == "execute"]
    assert executed == ["SELECT 1", "SELECT * FROM db.nope", "DROP tmp", "DROP bad"]  # SELECT 3 skipped
    assert conn.closed


def test_error_raised_by_execute_is_the_server_text_not_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    class OperationalError(Exception):
        pass

    response = SimpleNamespace(
        status=SimpleNamespace(
            errorMessage=None,
            infoMessages=[
                "*org.apache.hive.service.cli.HiveSQLException:Error running query: "
                "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'.:31:30",
                "org.apache.spark.Foo:bar:Foo.scala:1",
            ],
        )
    )
    fake(monkeypatch, {"SELEC 1": OperationalError(response)})
    (event,) = run_trigger(HiveQueryTrigger(["SELEC 1"], poll_interval=0.01))
    assert event["status"] == "error"
    assert event["error"] == "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'."
    assert server_message(RuntimeError("plain words")) == "plain words"


def test_cancelled_operation_state_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, {"SELECT 1": (CANCELED, None)})
    (event,) = run_trigger(HiveQueryTrigger(["SELECT 1"], poll_interval=0.01))
    assert event["status"] == "error" and event["error"] == "operation ended in state CANCELED"


def test_connection_failure_is_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: HiveQueryTrigger) -> Any:
        raise ConnectionRefusedError("Could not connect to any of [('127.0.0.1', 1)]")

    monkeypatch.setattr(HiveQueryTrigger, "_connect", refuse)
    (event,) = run_trigger(HiveQueryTrigger(["SELECT 1"], hive_conn_id="hs2"))
    assert event["status"] == "error" and event["statement_index"] is None
    assert (
        event["error"]
        == "cannot open a HiveServer2 session (hs2): Could not connect to any of [('127.0.0.1', 1)]"
    )


def test_timeout_cancels_the_running_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = fake(monkeypatch, {}, polls_running=10_000)
    (event,) = run_trigger(HiveQueryTrigger(["SELECT sleep"], poll_interval=0.01, timeout=0.2))
    assert event["status"] == "error" and "timeout of 0.2 s" in event["error"]
    assert ("cancel", "SELECT sleep") in conn._cursor.calls and conn.closed


def test_cancelling_the_trigger_cancels_the_operation_and_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user kill or a triggerer shutdown does: the asyncio task is cancelled mid-poll."""
    conn = fake(monkeypatch, {}, polls_running=10_000)
    trigger = HiveQueryTrigger(["SELECT long"], ["DROP tmp"], poll_interval=0.01)

    async def scenario() -> None:
        task = asyncio.ensure_future(anext(trigger.run()))
        while sum(1 for c in conn._cursor.calls if c[0] == "poll") < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.cleanup()
        await trigger.on_kill()  # nothing left to cancel: must not fail

    asyncio.run(asyncio.wait_for(scenario(), 20))
    calls = conn._cursor.calls
    assert ("cancel", "SELECT long") in calls and ("close_cursor", None) in calls
    assert conn.closed and trigger._conn is None


def test_polling_does_not_block_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow thrift call runs in a thread: another coroutine keeps ticking meanwhile."""
    conn = fake(monkeypatch, {}, polls_running=3)
    slow_poll = conn._cursor.poll

    def poll(get_progress_update: bool = True) -> Any:
        time.sleep(0.2)
        return slow_poll(get_progress_update)

    conn._cursor.poll = poll  # type: ignore[method-assign]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def scenario() -> dict[str, Any]:
        tick = asyncio.create_task(ticker())
        try:
            return (await anext(HiveQueryTrigger(["SELECT 1"], poll_interval=0.01).run())).payload
        finally:
            tick.cancel()

    event = asyncio.run(scenario())
    assert event["status"] == "success"
    assert ticks >= 40, ticks  # ~0.8 s of polls; a blocked loop would tick about 4 times


# ---------------------------------------------------------------------------- operators


def deferred(operator: HiveQueryOperator) -> HiveQueryTrigger:
    with pytest.raises(TaskDeferred) as info:
        operator.execute(context={})
    assert info.value.method_name == "execute_complete"
    trigger = info.value.trigger
    assert isinstance(trigger, HiveQueryTrigger)
    return trigger


def test_operator_defers_at_once_with_split_statements() -> None:
    op = HiveQueryOperator(
        task_id="q", hql="SELECT 1; SELECT ';'", final_hql=["DROP TABLE IF EXISTS t"], fetch_rows=True
    )
    trigger = deferred(op)
    assert trigger.statements == ["SELECT 1", "SELECT ';'"]
    assert trigger.final_statements == ["DROP TABLE IF EXISTS t"]
    assert trigger.hive_conn_id == "spot_hiveserver2" and trigger.fetch_rows is True
    event = {"status": "success", "statements": 2, "rows": [[1]], "elapsed": 0.1, "final_errors": []}
    assert op.execute_complete({}, event) == event


def test_operator_fails_with_server_message_and_statement() -> None:
    op = HiveQueryOperator(task_id="q", hql="SELECT * FROM nope")
    event = {
        "status": "error",
        "statement_index": 0,
        "statement": "SELECT * FROM nope",
        "error": "[TABLE_OR_VIEW_NOT_FOUND] The table or view `nope` cannot be found.",
    }
    with pytest.raises(AirflowException) as info:
        op.execute_complete({}, event)
    text = str(info.value)
    assert "statement 1: [TABLE_OR_VIEW_NOT_FOUND]" in text and "SELECT * FROM nope" in text


def test_spot_operators_build_their_statements() -> None:
    register = HivePartitionRegisterOperator(
        task_id="r", database="spot", table="proxy", hours=["2026-03-07T05"], location="/user/spot/proxy/hive"
    )
    assert deferred(register).statements[0].endswith("LOCATION '/user/spot/proxy/hive/y=2026/m=03/d=07/h=05'")
    repair = HivePartitionRegisterOperator(task_id="m", database="spot", table="flow", repair=True)
    assert deferred(repair).statements == ["MSCK REPAIR TABLE `spot`.`flow`"]
    nothing = HivePartitionRegisterOperator(task_id="n", database="spot", table="flow", hours=[])
    assert nothing.execute(context={})["statements"] == 0
    compact = deferred(
        HiveCompactPartitionOperator(task_id="c", database="spot", table="dns", hour="2026-03-07T05")
    )
    assert len(compact.statements) == 5 and compact.final_statements == []
    load = deferred(HiveLoadStagedCsvOperator(task_id="l", database="spot", table="flow", csv_folder="/s/f"))
    assert load.statements[-1].startswith("INSERT INTO TABLE `spot`.`flow`")
    assert load.final_statements[0].startswith("DROP TABLE IF EXISTS `spot`.`_spot_csv_")
    with pytest.raises(ValueError, match="invalid Hive database name"):
        HiveCompactPartitionOperator(task_id="x", database="a b", table="dns", hour="2026-03-07T05").execute(
            {}
        )


def test_module_imports_no_thrift() -> None:
    assert "TCLIService" not in vars(hive_module) and "pyhive" not in vars(hive_module)
