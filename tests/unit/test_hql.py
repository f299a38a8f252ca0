"""HQL builders: exact statement text, validation errors that name the bad value, and quoting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from spot_operators import hql
from spot_operators.hql import HourPartition
from spot_operators.tables import FLOW, PROXY

UUID_NAME = re.compile(r"_spot_(csv|compact)_[0-9a-f]{32}")


def test_register_hours_flow_numbers_and_proxy_zero_padded_strings() -> None:
    assert hql.register_hours_sql(
        "spot", "flow", ["2026-03-07T05", (2026, 3, 7, 5)], "/user/spot/flow/hive"
    ) == [
        "ALTER TABLE `spot`.`flow` ADD IF NOT EXISTS\n"
        "  PARTITION (`y`=2026, `m`=3, `d`=7, `h`=5) LOCATION '/user/spot/flow/hive/y=2026/m=3/d=7/h=5'"
    ]
    (proxy,) = hql.register_hours_sql("spot", "proxy", [datetime(2026, 3, 7, 6), "y=2026/m=3/d=7/h=5"])
    assert proxy == (
        "ALTER TABLE `spot`.`proxy` ADD IF NOT EXISTS\n"
        "  PARTITION (`y`='2026', `m`='03', `d`='07', `h`='05')\n"
        "  PARTITION (`y`='2026', `m`='03', `d`='07', `h`='06')"
    )


def test_register_hours_of_the_quarantine_table_with_its_leading_data_type() -> None:
    from dataclasses import replace

    from spot_operators.hive_ddl import QUARANTINE

    table = replace(QUARANTINE, name="quarantine")
    (statement,) = hql.register_hours_sql(
        "spot", table, ["2026-03-07T05"], "/user/spot/quarantine/hive/", leading={"data_type": "flow"}
    )
    assert statement == (
        "ALTER TABLE `spot`.`quarantine` ADD IF NOT EXISTS\n"
        "  PARTITION (`data_type`='flow', `y`=2026, `m`=3, `d`=7, `h`=5) "
        "LOCATION '/user/spot/quarantine/hive/data_type=flow/y=2026/m=3/d=7/h=5'"
    )
    with pytest.raises(ValueError, match=r"not partitioned by y/m/d/h: \['data_type', 'y', 'm', 'd', 'h'\]"):
        hql.register_hours_sql("spot", table, ["2026-03-07T05"])  # data_type missing
    with pytest.raises(ValueError, match="no leading partitions \\['pipeline'\\]"):
        hql.register_hours_sql("spot", table, ["2026-03-07T05"], leading={"pipeline": "x"})
    with pytest.raises(ValueError, match="cannot be a folder name"):
        hql.register_hours_sql("spot", table, ["2026-03-07T05"], leading={"data_type": "../flow"})
    with pytest.raises(ValueError, match="no leading partitions"):
        hql.register_hours_sql("spot", "flow", ["2026-03-07T05"], leading={"data_type": "flow"})


def test_register_hours_chunks_and_empty() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=i) for i in range(250)]
    statements = hql.register_hours_sql("spot", "dns", hours, "hdfs://nn:8020/user/spot/dns/hive/")
    assert len(statements) == 3
    assert [s.count("PARTITION (") for s in statements] == [100, 100, 50]
    assert "LOCATION 'hdfs://nn:8020/user/spot/dns/hive/y=2026/m=1/d=11/h=9'" in statements[2]
    assert hql.register_hours_sql("spot", "dns", []) == []
    assert hql.msck_repair_sql("spot", "dns") == ["MSCK REPAIR TABLE `spot`.`dns`"]


def test_hour_partition_parsing() -> None:
    expected = HourPartition(2026, 3, 7, 5)
    plus_two = timezone(timedelta(hours=2))
    for value in (
        "2026-03-07T05",
        "2026-03-07 05",
        "2026-03-07T05:59:59Z",
        "2026-03-07T07:10:00+02:00",
        datetime(2026, 3, 7, 7, 30, tzinfo=plus_two),
        datetime(2026, 3, 7, 5),
        [2026, 3, 7, 5],
        ("2026", "03", "07", "05"),
        {"y": 2026, "m": 3, "d": 7, "h": 5},
        "y=2026/m=03/d=07/h=05",
        expected,
    ):
        assert HourPartition.of(value) == expected, value
    assert expected.folder(FLOW) == "y=2026/m=3/d=7/h=5"
    assert expected.folder(PROXY) == "y=2026/m=03/d=07/h=05"
    assert expected.where(PROXY) == "`y` = '2026' AND `m` = '03' AND `d` = '07' AND `h` = '05'"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-02-30T05", "d=30 h=5: day is out of range"),
        ((2026, 13, 1, 0), "m=13"),
        ((2026, 1, 1, 24), "hour must be in 0..23"),
        ("yesterday", "yesterday"),
        ((2026, 1, 1), "(2026, 1, 1)"),
        ({"y": 2026}, "needs keys"),
        ((True, 1, 1, 1), "y=True"),
    ],
)
def test_bad_hours_raise_naming_the_value(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid hour partition") as info:
        hql.register_hours_sql("spot", "flow", [value])
    assert fragment in str(info.value)


def test_hours_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="list of hours"):
        hql.register_hours_sql("spot", "flow", "2026-03-07T05")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database": "spot; DROP DATABASE x"}, "invalid Hive database name 'spot; DROP DATABASE x'"),
        ({"database": "1spot"}, "invalid Hive database name '1spot'"),
        ({"database": "sp`ot"}, "invalid Hive database name"),
        ({"table": "users"}, "invalid Spot table 'users'"),
        ({"location": "/user/spot'/x"}, "invalid HDFS table location"),
        ({"location": "relative/path"}, "invalid HDFS table location 'relative/path'"),
        ({"location": "/a;b"}, "invalid HDFS table location"),
    ],
)
def test_bad_names_and_locations(kwargs: dict[str, str], message: str) -> None:
    args = {"database": "spot", "table": "flow", "location": "/user/spot/flow/hive", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        hql.register_hours_sql(args["database"], args["table"], ["2026-03-07T05"], args["location"])


def test_quoting() -> None:
    assert hql.quote_literal("it's a \\ path") == "'it\\'s a \\\\ path'"
    assert hql.quote_identifier("flow") == "`flow`"
    with pytest.raises(ValueError, match="invalid Hive column name"):
        hql.quote_identifier("a b", "column")
    with pytest.raises(ValueError, match="control characters"):
        hql.quote_literal("a\nb")
    assert hql.quote_location("hdfs://nn:8020/a/b") == "'hdfs://nn:8020/a/b'"
    with pytest.raises(ValueError, match="invalid HDFS CSV folder"):
        hql.load_staged_csv_sql("spot", "flow", "/stage/x\n")


def test_split_statements() -> None:
    script = """
    -- a comment; with a semicolon
    SELECT 'a;b', "c;d", `e;f` FROM t;  SELECT 'it\\'s; fine' ;
    ;
    -- only a comment
    SELECT 2 -- trailing; comment
    """
    assert hql.split_statements(script) == [
        "-- a comment; with a semicolon\n    SELECT 'a;b', \"c;d\", `e;f` FROM t",
        "SELECT 'it\\'s; fine'",
        "-- only a comment\n    SELECT 2 -- trailing; comment",
    ]
    assert hql.split_statements(["SELECT 1; SELECT 2", "SELECT 3"]) == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert hql.split_statements("  ;; -- nothing\n") == []
    with pytest.raises(ValueError, match="unterminated ' quote"):
        hql.split_statements("SELECT 'oops; SELECT 2")


def test_compaction_plan() -> None:
    plan = hql.compact_partition_sql("spot", "proxy", "2026-03-07T05", files=2, staging_table="_stage_1")
    assert plan.final_statements == []
    create, before, overwrite, after, drop = plan.statements
    columns = ", ".join(f"`{c}`" for c in PROXY.column_names)
    where = "`y` = '2026' AND `m` = '03' AND `d` = '07' AND `h` = '05'"
    assert create == (
        "CREATE TABLE IF NOT EXISTS `spot`.`_stage_1`\nSTORED AS PARQUET\n"
        "COMMENT 'spot.proxy (y=2026/m=03/d=07/h=05)'\n"
        f"AS SELECT {columns}\nFROM `spot`.`proxy`\nWHERE {where}"
    )
    assert overwrite == (
        "INSERT OVERWRITE TABLE `spot`.`proxy` PARTITION (`y`='2026', `m`='03', `d`='07', `h`='05')\n"
        f"SELECT /*+ COALESCE(2) */ {columns}\nFROM `spot`.`_stage_1`"
    )
    for check in (before, after):
        assert check.startswith("SELECT IF(s.n = p.n, 'ok', raise_error(concat(")
        assert f"FROM `spot`.`proxy` WHERE {where}) p" in check
    assert drop == "DROP TABLE IF EXISTS `spot`.`_stage_1` PURGE"
    generated = hql.compact_partition_sql("spot", "flow", (2026, 3, 7, 5))
    names = {m.group(0) for m in UUID_NAME.finditer("\n".join(generated.statements))}
    assert len(names) == 1 and next(iter(names)).startswith("_spot_compact_")
    other = hql.compact_partition_sql("spot", "flow", (2026, 3, 7, 5))
    assert names.isdisjoint(m.group(0) for m in UUID_NAME.finditer("\n".join(other.statements)))
    for files in (0, 1001, True, "2"):
        with pytest.raises(ValueError, match="invalid number of files"):
            hql.compact_partition_sql("spot", "flow", (2026, 3, 7, 5), files=files)  # type: ignore[arg-type]


def test_load_plan_flow() -> None:
    plan = hql.load_staged_csv_sql("spot", "flow", "/user/spot/flow/stage/run1/", temp_table="_csv_1")
    set1, set2, create, check, insert = plan.statements
    assert (set1, set2) == (
        "SET hive.exec.dynamic.partition=true",
        "SET hive.exec.dynamic.partition.mode=nonstrict",
    )
    assert plan.final_statements == ["DROP TABLE IF EXISTS `spot`.`_csv_1`"]
    assert create.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `spot`.`_csv_1` (\n  `treceived` STRING,\n")
    assert create.count(" STRING") == len(FLOW.columns)
    assert "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'" in create
    assert "'escapeChar' = '\\u0001'" in create  # not a backslash: CSV text keeps its backslashes
    assert create.endswith("STORED AS TEXTFILE\nLOCATION '/user/spot/flow/stage/run1'")
    assert "WHERE NOT coalesce(CAST(NULLIF(`unix_tstamp`, '') AS BIGINT) > 0, false)" in check
    assert insert.startswith("INSERT INTO TABLE `spot`.`flow` PARTITION (`y`, `m`, `d`, `h`)\nSELECT\n")
    assert "  `treceived` AS `treceived`," in insert
    assert "CAST(NULLIF(`unix_tstamp`, '') AS BIGINT) AS `unix_tstamp`" in insert
    assert "CAST(NULLIF(`tdur`, '') AS FLOAT) AS `tdur`" in insert
    assert "AS SMALLINT) AS `y`" in insert and "AS TINYINT) AS `h`" in insert
    assert "pmod(CAST(NULLIF(`unix_tstamp`, '') AS BIGINT), 86400) / 3600" in insert
    assert insert.endswith("FROM `spot`.`_csv_1`")


def test_load_plan_proxy_and_unique_temp_tables() -> None:
    plan = hql.load_staged_csv_sql("spot", "proxy", "hdfs://nn:8020/user/spot/proxy/stage/a")
    insert = plan.statements[-1]
    assert "substr(`p_date`, 6, 2) AS `m`" in insert and "substr(`p_time`, 1, 2) AS `h`" in insert
    assert "CAST(NULLIF(`scbytes`, '') AS INT) AS `scbytes`" in insert
    (tmp,) = {m.group(0) for m in UUID_NAME.finditer(plan.statements[2])}
    assert tmp.startswith("_spot_csv_") and plan.final_statements == [f"DROP TABLE IF EXISTS `spot`.`{tmp}`"]
    again = hql.load_staged_csv_sql("spot", "proxy", "hdfs://nn:8020/user/spot/proxy/stage/a")
    assert again.final_statements != plan.final_statements
