"""Hive through the three ways Airflow reaches it, against the real local stack.

- HiveServer2 protocol (PyHive) with ``HiveServer2Hook`` and connection ``spot_hiveserver2``;
- beeline with ``HiveCliHook`` and connection ``spot_hive_cli`` (``use_beeline`` in its extra);
- the metastore thrift API with ``HiveMetastoreHook`` and connection ``spot_metastore``.

Each test works in its own database, dropped with CASCADE by a finalizer. Tables are partitioned like
Spot's (``y SMALLINT, m TINYINT, d TINYINT, h TINYINT``) and stored as Parquet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.apache.hive.hooks.hive import HiveCliHook, HiveMetastoreHook, HiveServer2Hook

from .hive_support import drop_database

PARTITION_DDL = "PARTITIONED BY (y SMALLINT, m TINYINT, d TINYINT, h TINYINT)"
COLUMNS = ["treceived", "sip", "dport", "ibyt"]
PARTITION_COLUMNS = ["y", "m", "d", "h"]

# (y, m, d, h) -> rows (treceived, sip, dport, ibyt); one NULL to check NULLs survive the round trip.
ROWS: dict[tuple[int, int, int, int], list[tuple[str, str, int | None, int]]] = {
    (2016, 5, 12, 3): [
        ("2016-05-12 03:10:00", "10.0.0.1", 53, 1500),
        ("2016-05-12 03:59:59", "10.0.0.2", None, 40),
    ],
    (2026, 11, 22, 19): [("2026-11-22 19:00:01", "192.168.1.7", 443, 9_000_000_000)],
}
PARTITION_NAMES = sorted(f"y={y}/m={m}/d={d}/h={h}" for (y, m, d, h) in ROWS)


def _sql_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        if "'" in value or "\\" in value:
            raise ValueError(f"test literal needs no escaping: {value!r}")
        return f"'{value}'"
    return str(value)


def insert_statements(table: str) -> list[str]:
    """One static-partition INSERT per partition of ROWS."""
    statements = []
    for (y, m, d, h), rows in ROWS.items():
        values = ", ".join("(" + ", ".join(_sql_literal(v) for v in row) + ")" for row in rows)
        statements.append(f"INSERT INTO {table} PARTITION (y={y}, m={m}, d={d}, h={h}) VALUES {values}")
    return statements


def expected_rows() -> list[tuple[Any, ...]]:
    """ROWS as ``SELECT treceived, sip, dport, ibyt, y, m, d, h ... ORDER BY y, m, d, h, treceived``."""
    return [row + part for part in sorted(ROWS) for row in sorted(ROWS[part])]


def table_ddl(table: str, *, external_location: str | None = None) -> str:
    kind = "EXTERNAL TABLE" if external_location else "TABLE"
    location = f" LOCATION '{external_location}'" if external_location else ""
    return (
        f"CREATE {kind} {table} (treceived STRING, sip STRING, dport INT, ibyt BIGINT) "
        f"{PARTITION_DDL} STORED AS PARQUET{location}"
    )


def query(hook: HiveServer2Hook, sql: str, schema: str = "default") -> list[tuple[Any, ...]]:
    """Rows of any statement (``get_records`` only returns results of SELECT/WITH/SHOW statements)."""
    with (
        contextlib.closing(hook.get_conn(schema)) as conn,
        contextlib.closing(conn.cursor()) as cursor,
    ):
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


def database_location(hook: HiveServer2Hook, db: str) -> str:
    info = dict(query(hook, f"DESCRIBE DATABASE EXTENDED {db}"))
    location = info.get("Location")
    assert location, f"no Location in DESCRIBE DATABASE {db}: {info}"
    return str(location)


@pytest.fixture
def hs2() -> HiveServer2Hook:
    return HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")


@pytest.fixture
def hive_db(unique_name: str, hs2: HiveServer2Hook, request: pytest.FixtureRequest) -> str:
    """A fresh database, dropped with CASCADE (tables, partitions, data) when the test ends."""
    db = unique_name
    state: dict[str, str | None] = {"location": None}
    request.addfinalizer(lambda: drop_database(hs2, db, state["location"]))
    hs2.run(f"CREATE DATABASE {db} COMMENT 'spot integration test, dropped by its finalizer'")
    state["location"] = database_location(hs2, db)
    return db


def create_external_partitioned_table(hs2: HiveServer2Hook, db: str, name: str = "flow") -> str:
    """Spot-style EXTERNAL partitioned Parquet table inside the database folder, with ROWS inserted."""
    table = f"{db}.{name}"
    location = f"{database_location(hs2, db)}/{name}"
    hs2.run([table_ddl(table, external_location=location), *insert_statements(table)])
    return location


def test_hiveserver2_partitioned_parquet_roundtrip(hs2: HiveServer2Hook, hive_db: str) -> None:
    location = create_external_partitioned_table(hs2, hive_db)
    table = f"{hive_db}.flow"

    result = hs2.get_results(
        f"SELECT {', '.join(COLUMNS + PARTITION_COLUMNS)} FROM {table} ORDER BY y, m, d, h, treceived",
        schema=hive_db,
    )
    assert [tuple(r) for r in result["data"]] == expected_rows()
    header = [(col[0], col[1]) for col in result["header"]]
    assert header == [
        ("treceived", "STRING_TYPE"),
        ("sip", "STRING_TYPE"),
        ("dport", "INT_TYPE"),
        ("ibyt", "BIGINT_TYPE"),
        ("y", "SMALLINT_TYPE"),
        ("m", "TINYINT_TYPE"),
        ("d", "TINYINT_TYPE"),
        ("h", "TINYINT_TYPE"),
    ]

    partitions = [row[0] for row in hs2.get_records(f"SHOW PARTITIONS {table}")]
    assert sorted(partitions) == PARTITION_NAMES

    # Partition pruning on the typed partition columns, and counts per partition.
    counts = hs2.get_records(f"SELECT y, h, count(*) FROM {table} WHERE y = 2016 GROUP BY y, h")
    assert [tuple(r) for r in counts] == [(2016, 3, 2)]

    # The table is EXTERNAL, Parquet, at the location we gave it (where the ingest writes).
    details = {str(k).strip(): str(v).strip() for k, v, *_ in query(hs2, f"DESCRIBE FORMATTED {table}")}
    assert details["Type"] == "EXTERNAL"
    assert details["Location"] == location
    assert "parquet" in details["Serde Library"].lower()

    # Errors are raised, not swallowed.
    with pytest.raises(Exception, match=r"(?i)TABLE_OR_VIEW_NOT_FOUND|not found"):
        hs2.get_records(f"SELECT * FROM {hive_db}.no_such_table")


def _result_after(lines: list[str], header: str, is_row: Callable[[str], bool]) -> list[str]:
    """The lines that look like rows (``is_row``) right after the first line ending with ``header``.

    ``beeline --silent=true --outputformat=tsv2`` prints each result set as a header line and rows,
    but statements without results leave stray ``null ... null`` text glued to the next header.
    """
    for i, line in enumerate(lines):
        if line.endswith(header):
            rows = []
            for row in lines[i + 1 :]:
                if not is_row(row):
                    break
                rows.append(row)
            return rows
    raise AssertionError(f"no result set with header {header!r} in beeline output")


def test_beeline_cli_script(hive_db: str, hs2: HiveServer2Hook) -> None:
    cli = HiveCliHook(hive_cli_conn_id="spot_hive_cli", hive_cli_params="--silent=true --outputformat=tsv2")
    assert cli.use_beeline, "connection spot_hive_cli must set use_beeline in its extra"
    script = ";\n".join(
        [
            table_ddl("dns"),
            *insert_statements("dns"),
            f"SELECT {', '.join(COLUMNS + PARTITION_COLUMNS)} FROM dns ORDER BY y, m, d, h, treceived",
            "SHOW PARTITIONS dns",
        ]
    )
    output = cli.run_cli(script + ";", schema=hive_db, verbose=False)

    lines = output.splitlines()
    # beeline prints NULL as the string NULL in tsv2.
    expected = ["\t".join("NULL" if v is None else str(v) for v in row) for row in expected_rows()]
    header = "\t".join(COLUMNS + PARTITION_COLUMNS)
    tabs = header.count("\t")
    assert _result_after(lines, header, lambda line: line.count("\t") == tabs) == expected, output
    partitions = _result_after(lines, "partition", lambda line: line.startswith("y="))
    assert partitions == PARTITION_NAMES, output

    # Same table, seen through HiveServer2: beeline wrote into the shared metastore and HDFS.
    rows = hs2.get_records(f"SELECT count(*) FROM {hive_db}.dns")
    assert rows == [(sum(len(r) for r in ROWS.values()),)]

    # A failing statement makes beeline exit non-zero and the hook raise.
    with pytest.raises(Exception, match=r"(?i)TABLE_OR_VIEW_NOT_FOUND|not found"):
        cli.run_cli("SELECT * FROM no_such_table;", schema=hive_db, verbose=False)


def partition_name(spec: dict[str, str]) -> str:
    return "/".join(f"{k}={spec[k]}" for k in PARTITION_COLUMNS)


def test_metastore_sees_table_and_partitions(hs2: HiveServer2Hook, hive_db: str) -> None:
    location = create_external_partitioned_table(hs2, hive_db)
    metastore = HiveMetastoreHook(metastore_conn_id="spot_metastore")

    assert metastore.get_databases(hive_db) == [hive_db]
    assert metastore.table_exists("flow", db=hive_db)
    assert not metastore.table_exists("no_such_table", db=hive_db)
    assert [t.tableName for t in metastore.get_tables(hive_db)] == ["flow"]

    table = metastore.get_table("flow", db=hive_db)
    assert table.tableType == "EXTERNAL_TABLE"
    assert table.sd.location == location
    assert [(c.name, c.type) for c in table.sd.cols] == [
        ("treceived", "string"),
        ("sip", "string"),
        ("dport", "int"),
        ("ibyt", "bigint"),
    ]
    assert [(c.name, c.type) for c in table.partitionKeys] == [
        ("y", "smallint"),
        ("m", "tinyint"),
        ("d", "tinyint"),
        ("h", "tinyint"),
    ]
    assert "parquet" in table.sd.serdeInfo.serializationLib.lower()
    assert "parquet" in table.sd.inputFormat.lower()

    partitions = metastore.get_partitions(schema=hive_db, table_name="flow")
    assert sorted(partition_name(p) for p in partitions) == PARTITION_NAMES
    # Partition values come back as strings, in partition-key order.
    assert {"y": "2016", "m": "5", "d": "12", "h": "3"} in partitions

    assert metastore.check_for_named_partition(hive_db, "flow", "y=2016/m=5/d=12/h=3")
    assert not metastore.check_for_named_partition(hive_db, "flow", "y=2016/m=5/d=12/h=4")
    # Filters on integral partition keys must use unquoted numbers: a quoted value on a non-string key
    # raises MetaException('Filtering is supported only on partition keys of type string').
    assert metastore.check_for_partition(hive_db, "flow", "y = 2026 AND h = 19")
    assert not metastore.check_for_partition(hive_db, "flow", "y = 2026 AND h = 20")
    assert metastore.get_partitions(hive_db, "flow", partition_filter="m = 11") == [
        {"y": "2026", "m": "11", "d": "22", "h": "19"}
    ]
    assert str(metastore.max_partition(hive_db, "flow", field="y")) == "2026"

    # Every partition lives under the table location (where Spark writes the Parquet files).
    with metastore.get_conn() as client:
        raw = client.get_partitions(db_name=hive_db, tbl_name="flow", max_parts=-1)
    for partition in raw:
        name = "/".join(f"{k}={v}" for k, v in zip(PARTITION_COLUMNS, partition.values, strict=True))
        assert partition.sd.location == f"{location}/{name}"
