"""The Hive DDL rendered from tables.py: Spot's exact columns, EXTERNAL Parquet tables, Spot's locations.

The expected column lists are copied from the spec (spot-reference.md "Hive tables"), not from
tables.py, so a change to either side fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from spot_operators.config import load_ingest_config
from spot_operators.hive_ddl import (
    DDL_TABLES,
    QUARANTINE,
    HiveSchemaMismatch,
    create_database_sql,
    create_table_sql,
    create_tables,
    ddl_statements,
    parse_describe,
    render_ddl_files,
)
from spot_operators.tables import DNS, FLOW, PROXY

ROOT = Path(__file__).resolve().parents[2]
HIVE_DIR = ROOT / "include" / "schemas" / "hive"
SHIPPED = ROOT / "include" / "ingest_conf.json"

SPOT_COLUMNS = {
    "flow": "treceived STRING, unix_tstamp BIGINT, tryear INT, trmonth INT, trday INT, trhour INT, "
    "trminute INT, trsec INT, tdur FLOAT, sip STRING, dip STRING, sport INT, dport INT, proto STRING, "
    "flag STRING, fwd INT, stos INT, ipkt BIGINT, ibyt BIGINT, opkt BIGINT, obyt BIGINT, input INT, "
    "output INT, sas INT, das INT, dtos INT, dir INT, rip STRING",
    "dns": "frame_time STRING, unix_tstamp BIGINT, frame_len INT, ip_dst STRING, ip_src STRING, "
    "dns_qry_name STRING, dns_qry_class STRING, dns_qry_type INT, dns_qry_rcode INT, dns_a STRING",
    "proxy": "p_date STRING, p_time STRING, clientip STRING, host STRING, reqmethod STRING, "
    "useragent STRING, resconttype STRING, duration INT, username STRING, authgroup STRING, "
    "exceptionid STRING, filterresult STRING, webcat STRING, referer STRING, respcode STRING, "
    "action STRING, urischeme STRING, uriport STRING, uripath STRING, uriquery STRING, "
    "uriextension STRING, serverip STRING, scbytes INT, csbytes INT, virusid STRING, "
    "bcappname STRING, bcappoper STRING, fulluri STRING",
}
SPOT_PARTITIONS = {
    "flow": "y SMALLINT, m TINYINT, d TINYINT, h TINYINT",
    "dns": "y SMALLINT, m TINYINT, d TINYINT, h TINYINT",
    "proxy": "y STRING, m STRING, d STRING, h STRING",
}


def _pairs(spec: str) -> list[tuple[str, str]]:
    return [(p.split()[0], p.split()[1]) for p in spec.split(", ")]


def _block(sql: str, keyword: str) -> list[tuple[str, str]]:
    """The ``(name TYPE, ...)`` list after ``keyword`` in rendered DDL, unquoted."""
    match = re.search(re.escape(keyword) + r" \(\n(.*?)\n\)", sql, re.S)
    assert match, f"no {keyword} block in:\n{sql}"
    return [tuple(line.strip().replace("`", "").split()) for line in match.group(1).split(",\n")]


@pytest.fixture
def config() -> Any:
    return load_ingest_config(SHIPPED)


@pytest.mark.parametrize("name", ["flow", "dns", "proxy"])
def test_columns_and_partitions_are_spots(name: str, config: Any) -> None:
    table = DDL_TABLES[name]
    sql = create_table_sql("spot", table, f"/user/spot/{name}/hive")
    assert _block(sql, f"`spot`.`{name}`") == _pairs(SPOT_COLUMNS[name])
    assert _block(sql, "PARTITIONED BY") == _pairs(SPOT_PARTITIONS[name])
    assert list(table.columns) == _pairs(SPOT_COLUMNS[name])  # tables.py itself, in order


def test_table_is_external_parquet_at_spot_location(config: Any) -> None:
    statements = ddl_statements(config)
    for name in ("flow", "dns", "proxy", "quarantine"):
        database, table = statements[name]
        assert database.startswith("CREATE DATABASE IF NOT EXISTS `spot`")
        assert "LOCATION '/user/spot/spot.db'" in database
        assert table.startswith(f"CREATE EXTERNAL TABLE IF NOT EXISTS `spot`.`{name}` (")
        assert "\nSTORED AS PARQUET\n" in table
        assert table.endswith(f"\nLOCATION '/user/spot/{name}/hive'")


def test_quarantine_table() -> None:
    assert list(QUARANTINE.columns) == _pairs(
        "pipeline STRING, source_file STRING, file_digest STRING, segment INT, line_no BIGINT, "
        "raw STRING, reason STRING, quarantined_at TIMESTAMP"
    )
    assert list(QUARANTINE.partitions) == _pairs(
        "data_type STRING, y SMALLINT, m TINYINT, d TINYINT, h TINYINT"
    )
    assert list(DDL_TABLES) == ["flow", "dns", "proxy", "quarantine"]


def test_locations_follow_the_config(config: Any) -> None:
    other = config.model_copy(update={"dbname": "spot_b", "hdfs_app_path": "/data/spot2"})
    database, flow = ddl_statements(other)["flow"]
    assert "`spot_b`" in database and "LOCATION '/data/spot2/spot_b.db'" in database
    assert flow.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `spot_b`.`flow`")
    assert flow.endswith("LOCATION '/data/spot2/flow/hive'")


@pytest.mark.parametrize("bad", ["spot-x", "1spot", "sp ot", "a`b", "x;DROP", ""])
def test_identifiers_are_validated(bad: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        create_table_sql(bad, FLOW, "/user/spot/flow/hive")
    with pytest.raises(ValueError, match="identifier"):
        create_database_sql(bad, "/user/spot/x.db")


@pytest.mark.parametrize("bad", ["relative/path", "/a'b", "/a;b", "hdfs:/no-authority", "", "/a\\b"])
def test_locations_are_validated(bad: str) -> None:
    with pytest.raises(ValueError, match="location"):
        create_table_sql("spot", DNS, bad)


def test_full_uri_location_is_accepted() -> None:
    sql = create_table_sql("spot", PROXY, "hdfs://namenode:8020/user/spot/proxy/hive")
    assert sql.endswith("LOCATION 'hdfs://namenode:8020/user/spot/proxy/hive'")


def test_committed_hql_files_are_up_to_date() -> None:
    rendered = render_ddl_files()
    assert sorted(rendered) == ["dns.hql", "flow.hql", "proxy.hql", "quarantine.hql"]
    committed = {p.name: p.read_text(encoding="utf-8") for p in HIVE_DIR.glob("*.hql")}
    assert committed == rendered, "stale DDL files: run `python -m spot_operators.hive_ddl --write`"


def _body(text: str) -> str:
    """The statements of a .hql file, without its comment header."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("--"))


def test_committed_files_use_placeholders_only(config: Any) -> None:
    for name, text in render_ddl_files().items():
        body = _body(text)
        assert "`${dbname}`" in body and "LOCATION '${hdfs_app_path}/" in body, name
        assert "/user/spot" not in body and "`spot`" not in body, name
    # The same statements with the shipped config's values, once placeholders are substituted.
    concrete = render_ddl_files(config)
    for name, text in render_ddl_files().items():
        substituted = _body(text).replace("${dbname}", "spot").replace("${hdfs_app_path}", "/user/spot")
        assert substituted == _body(concrete[name])


# Recorded from the stack's Spark Thrift Server (DESCRIBE FORMATTED of a small partitioned table).
SPARK_DESCRIBE_FORMATTED = [
    ("a", "string", None),
    ("t", "timestamp", None),
    ("data_type", "string", None),
    ("y", "smallint", None),
    ("# Partition Information", "", ""),
    ("# col_name", "data_type", "comment"),
    ("data_type", "string", None),
    ("y", "smallint", None),
    ("", "", ""),
    ("# Detailed Table Information", "", ""),
    ("Database", "db", ""),
    ("Type", "EXTERNAL", ""),
    ("Location", "hdfs://127.0.0.1:8020/tmp/x/quarantine/hive", ""),
    ("Serde Library", "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", ""),
]


def test_parse_describe_formatted() -> None:
    parsed = parse_describe(SPARK_DESCRIBE_FORMATTED)
    assert parsed["columns"] == [("a", "string"), ("t", "timestamp")]
    assert parsed["partitions"] == [("data_type", "string"), ("y", "smallint")]
    assert parsed["details"]["Type"] == "EXTERNAL"
    assert parsed["details"]["Location"] == "hdfs://127.0.0.1:8020/tmp/x/quarantine/hive"
    assert parse_describe(SPARK_DESCRIBE_FORMATTED[:4])["columns"] == [
        ("a", "string"),
        ("t", "timestamp"),
        ("data_type", "string"),
        ("y", "smallint"),
    ]


class _FakeCursor:
    """Answers SHOW/DESCRIBE like Spark's Thrift server; records every statement."""

    def __init__(self, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        self.tables = tables
        self.executed: list[str] = []
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        match = re.match(r"DESCRIBE FORMATTED `\w+`\.`(\w+)`", sql)
        if match:
            self._rows = self.tables[match.group(1)]
        elif sql.startswith("SHOW TABLES"):
            self._rows = [("spot", "flow", False)]
        else:
            self._rows = []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        pass


class _FakeHook:
    def __init__(self, cursor: _FakeCursor) -> None:
        self._cursor = cursor

    def get_conn(self, schema: str | None = None) -> Any:
        hook = self

        class _Conn:
            def cursor(self) -> _FakeCursor:
                return hook._cursor

            def close(self) -> None:
                pass

        return _Conn()


def _described(name: str, location: str, kind: str = "EXTERNAL") -> list[tuple[Any, ...]]:
    table = DDL_TABLES[name]
    columns = [(n, t.lower(), None) for n, t in (*table.columns, *table.partitions)]
    partitions = [(n, t.lower(), None) for n, t in table.partitions]
    return [
        *columns,
        ("# Partition Information", "", ""),
        ("# col_name", "data_type", "comment"),
        *partitions,
        ("", "", ""),
        ("# Detailed Table Information", "", ""),
        ("Type", kind, ""),
        ("Location", f"hdfs://nn:8020{location}", ""),
    ]


def test_create_tables_runs_ddl_and_reports(config: Any) -> None:
    cursor = _FakeCursor({n: _described(n, f"/user/spot/{n}/hive") for n in DDL_TABLES})
    result = create_tables(_FakeHook(cursor), config)
    assert result["database"] == "spot"
    assert result["database_action"] == "created"
    assert {n: t["action"] for n, t in result["tables"].items()} == {
        "flow": "exists",
        "dns": "created",
        "proxy": "created",
        "quarantine": "created",
    }
    created = [s for s in cursor.executed if s.startswith("CREATE")]
    assert created == [ddl_statements(config)["flow"][0]] + [ddl_statements(config)[n][1] for n in DDL_TABLES]


def test_create_tables_refuses_a_table_that_differs(config: Any) -> None:
    tables = {n: _described(n, f"/user/spot/{n}/hive") for n in DDL_TABLES}
    tables["dns"] = [("dns_a", "int", None) if row[0] == "dns_a" else row for row in tables["dns"]]
    tables["proxy"] = _described("proxy", "/elsewhere/proxy")
    tables["quarantine"] = _described("quarantine", "/user/spot/quarantine/hive", kind="MANAGED")
    with pytest.raises(HiveSchemaMismatch) as info:
        create_tables(_FakeHook(_FakeCursor(tables)), config)
    message = str(info.value)
    assert "spot.dns columns" in message
    assert "expected location /user/spot/proxy/hive" in message
    assert "spot.quarantine: expected an EXTERNAL table, found MANAGED" in message
    assert "spot.flow" not in message


def test_setup_dag_creates_tables_after_folders(config: Any) -> None:
    from spot_operators.dag_factories import build_setup_dag

    dag = build_setup_dag(config)
    assert dag.get_task("create_tables").upstream_task_ids == {"create_folders"}
