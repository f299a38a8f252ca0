"""The deferrable Hive operators on the real Spark Thrift Server, and once under the stack's triggerer.

Each test creates Spot's tables in its own database (``hdfs_app_path`` under ``/tmp/<unique>``), dropped
with CASCADE and deleted by finalizers. Operators run in-process: ``execute`` must defer, the trigger
runs under ``asyncio``, ``execute_complete`` gets its event. What landed is read back independently
through ``HiveServer2Hook`` and WebHDFS.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.exceptions import TaskDeferred
from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
from airflow.sdk.exceptions import AirflowException

from spot_operators.hive_ddl import create_tables
from spot_operators.operators.hive import (
    HiveCompactPartitionOperator,
    HiveLoadStagedCsvOperator,
    HivePartitionRegisterOperator,
    HiveQueryOperator,
)
from spot_operators.tables import FLOW, PROXY, HiveTable
from spot_operators.triggers.hive import HiveQueryTrigger

from .airflow_api import AirflowApi
from .hive_support import drop_database
from .test_hive_tables import make_config, query

ARROW_TYPES = {"STRING": pa.string(), "BIGINT": pa.int64(), "INT": pa.int32(), "FLOAT": pa.float32()}
EPOCH_2026_03_07_05 = 1772859600  # 2026-03-07T05:00:00Z


@pytest.fixture
def hs2() -> HiveServer2Hook:
    return HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")


@pytest.fixture
def webhdfs() -> Any:
    return WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()


@pytest.fixture
def spot_db(
    hs2: HiveServer2Hook, webhdfs: Any, unique_name: str, request: pytest.FixtureRequest
) -> tuple[str, str]:
    """(database, hdfs_app_path) with Spot's tables; dropped and deleted afterwards."""
    config = make_config(unique_name)

    def finalize() -> None:
        try:
            drop_database(hs2, unique_name, f"{config.hdfs_app_path}/{unique_name}.db")
        finally:
            webhdfs.delete(f"/tmp/{unique_name}", recursive=True)

    request.addfinalizer(finalize)
    create_tables(hs2, config)
    return config.dbname, config.hdfs_app_path


def run_trigger(trigger: HiveQueryTrigger) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        events = [event.payload async for event in trigger.run()]
        assert len(events) == 1, events
        return events[0]

    return asyncio.run(asyncio.wait_for(first(), 600))


def run_operator(operator: HiveQueryOperator) -> dict[str, Any]:
    """What Airflow does, in-process: execute defers, the trigger runs, execute_complete resumes."""
    with pytest.raises(TaskDeferred) as info:
        operator.execute(context={})
    trigger = info.value.trigger
    assert isinstance(trigger, HiveQueryTrigger)
    event = run_trigger(trigger)
    result: dict[str, Any] = operator.execute_complete({}, event)
    return result


def parquet_bytes(table: HiveTable, rows: list[tuple[Any, ...]]) -> bytes:
    """Parquet with the table's data columns (partition columns live in the folder names)."""
    schema = pa.schema([(name, ARROW_TYPES[t]) for name, t in table.columns])
    columns = list(zip(*rows, strict=True))
    batch = pa.table(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)], schema=schema
    )
    out = io.BytesIO()
    pq.write_table(batch, out)
    return out.getvalue()


def flow_row(i: int, epoch: int = EPOCH_2026_03_07_05) -> tuple[Any, ...]:
    return (
        "2026-03-07 05:00:00", epoch + i, 2026, 3, 7, 5, 0, i % 60, 0.5, f"10.0.0.{i % 250}", "10.0.1.1",
        1000 + i, 443, "TCP", ".AP.S.", 0, 0, i, 100 * i, 1, 60, 1, 2, 0, 0, 0, 0, "10.0.0.254",
    )  # fmt: skip


def proxy_row(i: int) -> tuple[Any, ...]:
    return (
        "2026-03-07", "05:10:00", "10.1.1.1", "example.com", "GET", "Mozilla/5.0", "text/html", 10 + i,
        "-", "-", "-", "OBSERVED", "news", "-", "200", "TCP_HIT", "http", "80", f"/p{i}", "-", "-",
        "93.184.216.34", 500, 300, "-", "-", "-", f"example.com/p{i}",
    )  # fmt: skip


def ordered(rows: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in rows), key=repr)


def test_register_partitions_for_folders_written_by_pyarrow(
    hs2: HiveServer2Hook, webhdfs: Any, spot_db: tuple[str, str]
) -> None:
    db, app = spot_db
    webhdfs.write(
        f"{app}/flow/hive/y=2026/m=3/d=7/h=5/part-0.parquet",
        parquet_bytes(FLOW, [flow_row(i) for i in range(7)]),
    )
    webhdfs.write(
        f"{app}/flow/hive/y=2026/m=3/d=7/h=6/part-0.parquet",
        parquet_bytes(FLOW, [flow_row(i, EPOCH_2026_03_07_05 + 3600) for i in range(3)]),
    )
    webhdfs.write(
        f"{app}/proxy/hive/y=2026/m=03/d=07/h=05/part-0.parquet",
        parquet_bytes(PROXY, [proxy_row(i) for i in range(4)]),
    )
    assert hs2.get_records(f"SELECT count(*) FROM {db}.flow") == [(0,)]  # written but not registered yet

    for _ in range(2):  # idempotent: the second run changes nothing
        event = run_operator(
            HivePartitionRegisterOperator(
                task_id="register_flow",
                database=db,
                table="flow",
                hours=["2026-03-07T06", [2026, 3, 7, 5], "2026-03-07T05:30:00Z"],
                location=f"{app}/flow/hive",
            )
        )
        assert event["status"] == "success" and event["statements"] == 1
        run_operator(
            HivePartitionRegisterOperator(task_id="register_proxy", database=db, table="proxy", repair=True)
        )

    assert [r[0] for r in query(hs2, f"SHOW PARTITIONS {db}.flow")] == [
        "y=2026/m=3/d=7/h=5",
        "y=2026/m=3/d=7/h=6",
    ]
    assert [r[0] for r in query(hs2, f"SHOW PARTITIONS {db}.proxy")] == ["y=2026/m=03/d=07/h=05"]
    assert ordered(hs2.get_records(f"SELECT h, count(*) FROM {db}.flow GROUP BY h")) == [(5, 7), (6, 3)]
    assert ordered(hs2.get_records(f"SELECT * FROM {db}.proxy")) == ordered(
        (*proxy_row(i), "2026", "03", "07", "05") for i in range(4)
    )
    described = query(hs2, f"DESCRIBE FORMATTED {db}.flow PARTITION (y=2026, m=3, d=7, h=6)")
    locations = [str(v).strip() for k, v, *_ in described if str(k).strip() == "Location"]
    # Spark lists the partition's location, then the table's.
    assert locations[0].endswith(f"{app}/flow/hive/y=2026/m=3/d=7/h=6"), locations


def test_compaction_of_an_hour_with_many_small_files(
    hs2: HiveServer2Hook, webhdfs: Any, spot_db: tuple[str, str]
) -> None:
    db, app = spot_db
    folder = f"{app}/flow/hive/y=2026/m=3/d=7/h=5"
    expected = []
    for n in range(12):
        rows = [flow_row(n * 100 + i) for i in range(25)]
        expected += rows
        webhdfs.write(f"{folder}/part-{n:05d}.parquet", parquet_bytes(FLOW, rows))
    run_operator(
        HivePartitionRegisterOperator(task_id="r", database=db, table="flow", hours=["2026-03-07T05"])
    )
    before = ordered(hs2.get_records(f"SELECT * FROM {db}.flow"))
    assert len(before) == 300 and len(webhdfs.list(folder)) == 12

    event = run_operator(
        HiveCompactPartitionOperator(
            task_id="compact", database=db, table="flow", hour="2026-03-07T05", files=1
        )
    )
    assert event["status"] == "success" and event["statements"] == 5

    data_files = [f for f in webhdfs.list(folder) if not f.startswith((".", "_"))]
    assert len(data_files) == 1, webhdfs.list(folder)
    after = ordered(hs2.get_records(f"SELECT * FROM {db}.flow"))
    assert after == before == ordered((*r, 2026, 3, 7, 5) for r in expected)
    assert hs2.get_records(
        f"SELECT sip, ibyt FROM {db}.flow WHERE unix_tstamp = {EPOCH_2026_03_07_05 + 1107}"
    ) == [("10.0.0.107", 110700)]
    tables = {str(r[1]) for r in query(hs2, f"SHOW TABLES IN {db}")}
    assert tables == {"flow", "dns", "proxy", "quarantine"}, "the staging table was not dropped"


FLOW_CSV = (
    '2026-03-07 05:59:59,1772863199,2026,3,7,5,59,59,0.25,10.0.0.1,10.0.0.2,1234,80,TCP,".AP.S,F",0,0,'
    "10,1000,5,500,1,2,0,0,0,0,10.0.0.254\r\n"
    "2026-03-07 06:00:00,1772863200,2026,3,7,6,0,0,1.5,10.0.0.3,10.0.0.4,53,53,UDP,......,0,0,1,80,1,"
    "120,3,4,65000,65001,0,1,10.0.0.254\n"
)
PROXY_CSV = (
    '2026-03-07,23:05:01,10.1.1.1,example.com,GET,"Mozilla/5.0 (X11, Linux) ""quoted"" C:\\temp",text/html,'
    '12,-,-,-,OBSERVED,"news,media",-,200,TCP_HIT,http,80,/a,"?q=1,2",-,93.184.216.34,100,200,-,-,-,'
    '"example.com/a?q=1,2"\n'
)


def test_load_staged_csv_with_quoted_commas_into_flow_and_proxy(
    hs2: HiveServer2Hook, webhdfs: Any, spot_db: tuple[str, str]
) -> None:
    db, app = spot_db
    webhdfs.write(f"{app}/flow/stage/run1/part-0.csv", FLOW_CSV.encode())
    webhdfs.write(f"{app}/proxy/stage/run1/part-0.csv", PROXY_CSV.encode())

    for table in ("flow", "proxy"):
        event = run_operator(
            HiveLoadStagedCsvOperator(
                task_id=f"load_{table}", database=db, table=table, csv_folder=f"{app}/{table}/stage/run1"
            )
        )
        assert event["status"] == "success" and event["final_errors"] == []

    assert ordered(hs2.get_records(f"SELECT * FROM {db}.flow")) == [
        ("2026-03-07 05:59:59", 1772863199, 2026, 3, 7, 5, 59, 59, 0.25, "10.0.0.1", "10.0.0.2", 1234, 80,
         "TCP", ".AP.S,F", 0, 0, 10, 1000, 5, 500, 1, 2, 0, 0, 0, 0, "10.0.0.254", 2026, 3, 7, 5),
        ("2026-03-07 06:00:00", 1772863200, 2026, 3, 7, 6, 0, 0, 1.5, "10.0.0.3", "10.0.0.4", 53, 53,
         "UDP", "......", 0, 0, 1, 80, 1, 120, 3, 4, 65000, 65001, 0, 1, "10.0.0.254", 2026, 3, 7, 6),
    ]  # fmt: skip
    assert hs2.get_records(f"SELECT * FROM {db}.proxy") == [
        ("2026-03-07", "23:05:01", "10.1.1.1", "example.com", "GET",
         'Mozilla/5.0 (X11, Linux) "quoted" C:\\temp', "text/html", 12, "-", "-", "-", "OBSERVED",
         "news,media", "-", "200", "TCP_HIT", "http", "80", "/a", "?q=1,2", "-", "93.184.216.34", 100, 200,
         "-", "-", "-", "example.com/a?q=1,2", "2026", "03", "07", "23"),
    ]  # fmt: skip
    assert [r[0] for r in query(hs2, f"SHOW PARTITIONS {db}.flow")] == [
        "y=2026/m=3/d=7/h=5",
        "y=2026/m=3/d=7/h=6",
    ]
    assert webhdfs.list(f"{app}/proxy/hive/y=2026/m=03/d=07/h=23")
    tables = {str(r[1]) for r in query(hs2, f"SHOW TABLES IN {db}")}
    assert tables == {"flow", "dns", "proxy", "quarantine"}, "a temporary CSV table was left behind"
    assert webhdfs.list(f"{app}/flow/stage/run1") == ["part-0.csv"], (
        "dropping the external table kept the CSV"
    )


def test_errors_carry_the_server_message_and_temp_tables_still_go(
    hs2: HiveServer2Hook, webhdfs: Any, spot_db: tuple[str, str]
) -> None:
    db, app = spot_db
    with pytest.raises(AirflowException) as info:
        run_operator(HiveQueryOperator(task_id="q", hql=f"SELECT 1; SELECT count(*) FROM {db}.no_such_table"))
    text = str(info.value)
    assert "statement 2" in text and "TABLE_OR_VIEW_NOT_FOUND" in text and f"`{db}`.`no_such_table`" in text
    assert "TStatus(" not in text and "\tat " not in text

    # A bad number fails the load before anything is inserted; the temporary table is dropped anyway.
    webhdfs.write(f"{app}/flow/stage/bad/part-0.csv", FLOW_CSV.replace(",1234,", ",12x4,").encode())
    with pytest.raises(AirflowException, match="CAST_INVALID_INPUT") as info:
        run_operator(
            HiveLoadStagedCsvOperator(
                task_id="l", database=db, table="flow", csv_folder=f"{app}/flow/stage/bad"
            )
        )
    assert "'12x4'" in str(info.value)
    assert hs2.get_records(f"SELECT count(*) FROM {db}.flow") == [(0,)]
    assert {str(r[1]) for r in query(hs2, f"SHOW TABLES IN {db}")} == {"flow", "dns", "proxy", "quarantine"}


def test_trigger_in_process_returns_rows_and_closes(hs2: HiveServer2Hook, spot_db: tuple[str, str]) -> None:
    db, _ = spot_db
    trigger = HiveQueryTrigger(
        statements=[
            f"INSERT INTO {db}.dns PARTITION (y=2026, m=3, d=7, h=5) "
            "VALUES ('Mar  7, 2026 05:00:00', 1772859600, 80, '10.0.0.1', '10.0.0.2', 'a.example', "
            "'1', 1, 0, "
            "'1.2.3.4')",
            f"SELECT dns_qry_name, frame_len, h FROM {db}.dns",
        ],
        poll_interval=0.2,
        fetch_rows=True,
    )
    _, kwargs = trigger.serialize()
    event = run_trigger(HiveQueryTrigger(**kwargs))
    assert event["status"] == "success" and event["statements"] == 2
    assert event["rows"] == [["a.example", 80, 5]] and event["columns"] == ["dns_qry_name", "frame_len", "h"]
    assert event["triggerer_pid"] == os.getpid() and event["elapsed"] > 0


def _triggerer_pgid() -> int:
    return int((Path(os.environ["SPOT_STACK_DIR"]) / "run" / "airflow-triggerer.pid").read_text().strip())


def test_hive_query_runs_in_the_real_triggerer() -> None:
    """spot_hive_query_smoke through the REST API: the stack's triggerer process runs the HQL."""
    api = AirflowApi()
    api.wait_for_dag("spot_hive_query_smoke")
    run_id = api.trigger("spot_hive_query_smoke")
    run = api.wait_for_run("spot_hive_query_smoke", run_id, timeout=300)
    assert run["state"] == "success", api.task_states("spot_hive_query_smoke", run_id)
    event = api.xcom("spot_hive_query_smoke", run_id, "hive_query")
    assert event["status"] == "success" and event["statements"] == 2
    assert event["rows"] == [[1000, 500500]] and event["columns"] == ["n", "total"]
    assert os.getpgid(event["triggerer_pid"]) == _triggerer_pgid(), event
