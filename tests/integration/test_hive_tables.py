"""Spot's Hive tables created on the real stack, then read back from the metastore.

Each test uses its own database and ``hdfs_app_path`` (under ``/tmp/<unique>``), dropped (CASCADE) and
deleted by finalizers. The expected columns come from ``tables.py``; what the server says comes from
``DESCRIBE`` through a HiveServer2 cursor, from Parquet files written into Spot's partition folders, and
from beeline.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from airflow.providers.apache.hive.hooks.hive import HiveCliHook, HiveServer2Hook

from spot_operators.config import IngestConfig, load_ingest_config
from spot_operators.hive_ddl import DDL_TABLES, create_tables, ddl_dir
from spot_operators.tables import HiveTable

from .hive_support import drop_database
from .test_collect import private_airflow_db

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "include" / "ingest_conf.json"

# One sample value per Hive type, as SQL literal and as PyHive returns it.
SAMPLES: dict[str, tuple[str, Any]] = {
    "STRING": ("'x'", "x"),
    "BIGINT": ("9000000000", 9_000_000_000),
    "INT": ("7", 7),
    "FLOAT": ("CAST(1.5 AS FLOAT)", 1.5),
    "TIMESTAMP": ("TIMESTAMP '2026-11-22 20:15:00'", datetime(2026, 11, 22, 20, 15)),
}


def query(hook: HiveServer2Hook, sql: str) -> list[tuple[Any, ...]]:
    """Rows of any statement (``get_records`` only handles SELECT/WITH/SHOW)."""
    with (
        contextlib.closing(hook.get_conn("default")) as conn,
        contextlib.closing(conn.cursor()) as cursor,
    ):
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


def described_columns(hook: HiveServer2Hook, table: str) -> list[tuple[str, str]]:
    """``DESCRIBE`` rows up to ``# Partition Information``: data columns then partition columns."""
    columns = []
    for name, hive_type, *_ in query(hook, f"DESCRIBE {table}"):
        if str(name).startswith("#"):
            break
        columns.append((str(name), str(hive_type)))
    return columns


def formatted_details(hook: HiveServer2Hook, table: str) -> dict[str, str]:
    return {str(k).strip(): str(v).strip() for k, v, *_ in query(hook, f"DESCRIBE FORMATTED {table}")}


def expected_columns(table: HiveTable) -> list[tuple[str, str]]:
    return [(n, t.lower()) for n, t in (*table.columns, *table.partitions)]


def make_config(unique: str) -> IngestConfig:
    config = load_ingest_config(SHIPPED).model_copy(
        update={"dbname": unique, "hdfs_app_path": f"/tmp/{unique}/spot"}
    )
    assert config.dbname == unique and config.hdfs_app_path == f"/tmp/{unique}/spot"
    return config


def delete_topics(topics: list[str]) -> None:
    """Remove the test's Kafka topics (spot_setup creates them before the tables)."""
    from confluent_kafka.admin import AdminClient

    bootstrap = f"{os.environ['SPOT_BIND_HOST']}:{os.environ['SPOT_KAFKA_PORT']}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep it alive until the futures resolve
    for future in admin.delete_topics(topics, operation_timeout=60).values():
        future.result(60)


@pytest.fixture
def hs2() -> HiveServer2Hook:
    return HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")


@pytest.fixture
def webhdfs() -> Any:
    return WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()


@pytest.fixture
def cleanup(hs2: HiveServer2Hook, webhdfs: Any, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Register a database for DROP ... CASCADE and its ``/tmp/<db>`` HDFS tree for deletion."""

    def register(db: str) -> None:
        def finalize() -> None:
            try:
                drop_database(hs2, db, f"/tmp/{db}/spot/{db}.db")
            finally:
                webhdfs.delete(f"/tmp/{db}", recursive=True)  # external table data stays after a DROP

        request.addfinalizer(finalize)

    return register


def test_create_tables_twice_then_describe(
    hs2: HiveServer2Hook, webhdfs: Any, unique_name: str, cleanup: Callable[[str], None]
) -> None:
    config = make_config(unique_name)
    db, app = config.dbname, config.hdfs_app_path
    cleanup(db)

    first = create_tables(hs2, config)
    second = create_tables(hs2, config)
    assert first["database_action"] == "created"
    assert {n: t["action"] for n, t in first["tables"].items()} == dict.fromkeys(DDL_TABLES, "created")
    assert second["database_action"] == "exists"
    assert {n: t["action"] for n, t in second["tables"].items()} == dict.fromkeys(DDL_TABLES, "exists")

    tables = {str(row[1]) for row in query(hs2, f"SHOW TABLES IN {db}")}
    assert tables == {"flow", "dns", "proxy", "quarantine"}
    database = dict(query(hs2, f"DESCRIBE DATABASE EXTENDED {db}"))
    assert str(database["Location"]).endswith(f"{app}/{db}.db")

    for name, table in DDL_TABLES.items():
        assert described_columns(hs2, f"{db}.{name}") == expected_columns(table), name
        details = formatted_details(hs2, f"{db}.{name}")
        assert details["Type"] == "EXTERNAL", name
        assert details["Location"].startswith("hdfs://"), details["Location"]
        assert details["Location"].endswith(f"{app}/{name}/hive"), details["Location"]
        assert "parquet" in details["Serde Library"].lower()
        assert details["Location"] == first["tables"][name]["location"]

    # Spot's exact types, spelled out (not derived from tables.py) for the partitions.
    assert described_columns(hs2, f"{db}.flow")[-4:] == [
        ("y", "smallint"),
        ("m", "tinyint"),
        ("d", "tinyint"),
        ("h", "tinyint"),
    ]
    assert described_columns(hs2, f"{db}.proxy")[-4:] == [(p, "string") for p in "ymdh"]
    assert described_columns(hs2, f"{db}.flow")[8] == ("tdur", "float")


def _values(table: HiveTable) -> tuple[str, tuple[Any, ...]]:
    literals, expected = zip(*(SAMPLES[t] for _, t in table.columns), strict=True)
    return ", ".join(literals), tuple(expected)


def test_rows_land_in_spot_partition_folders(
    hs2: HiveServer2Hook, webhdfs: Any, unique_name: str, cleanup: Callable[[str], None]
) -> None:
    config = make_config(unique_name)
    db, app = config.dbname, config.hdfs_app_path
    cleanup(db)
    create_tables(hs2, config)

    flow_values, flow_row = _values(DDL_TABLES["flow"])
    hs2.run(f"INSERT INTO {db}.flow PARTITION (y=2026, m=11, d=22, h=20) VALUES ({flow_values})")
    rows = hs2.get_records(f"SELECT * FROM {db}.flow")
    assert [tuple(r) for r in rows] == [(*flow_row, 2026, 11, 22, 20)]
    files = webhdfs.list(f"{app}/flow/hive/y=2026/m=11/d=22/h=20")
    assert any(f.endswith(".parquet") or f.startswith("part-") for f in files), files

    q_values, q_row = _values(DDL_TABLES["quarantine"])
    hs2.run(
        f"INSERT INTO {db}.quarantine PARTITION (data_type='dns', y=2026, m=11, d=22, h=20) "
        f"VALUES ({q_values})"
    )
    rows = hs2.get_records(f"SELECT * FROM {db}.quarantine WHERE data_type = 'dns'")
    assert [tuple(r) for r in rows] == [(*q_row, "dns", 2026, 11, 22, 20)]
    assert webhdfs.list(f"{app}/quarantine/hive/data_type=dns/y=2026/m=11/d=22/h=20")

    # proxy through beeline: zero-padded string partitions, as Spot wrote them.
    proxy_values, proxy_row = _values(DDL_TABLES["proxy"])
    cli = HiveCliHook(hive_cli_conn_id="spot_hive_cli", hive_cli_params="--silent=true --outputformat=tsv2")
    output = cli.run_cli(
        f"INSERT INTO proxy PARTITION (y='2026', m='03', d='07', h='05') VALUES ({proxy_values});\n"
        "SELECT * FROM proxy;",
        schema=db,
        verbose=False,
    )
    expected_line = "\t".join([*(str(v) for v in proxy_row), "2026", "03", "07", "05"])
    assert expected_line in output.splitlines(), output
    assert webhdfs.list(f"{app}/proxy/hive/y=2026/m=03/d=07/h=05")
    assert [tuple(r) for r in hs2.get_records(f"SELECT y, m, d, h FROM {db}.proxy")] == [
        ("2026", "03", "07", "05")
    ]


def test_committed_hql_file_runs_in_beeline_with_hivevars(
    hs2: HiveServer2Hook, unique_name: str, cleanup: Callable[[str], None]
) -> None:
    """The documented manual path: ``beeline --hivevar dbname=... --hivevar hdfs_app_path=... -f dns.hql``."""
    db = unique_name
    app = f"/tmp/{db}/spot"
    cleanup(db)
    conn = HiveCliHook(hive_cli_conn_id="spot_hive_cli").conn
    out = subprocess.run(
        [
            "beeline",
            "-u",
            f"jdbc:hive2://{conn.host}:{conn.port}/default",
            "-n",
            conn.login or "spot",
            "--silent=true",
            "--hivevar",
            f"dbname={db}",
            "--hivevar",
            f"hdfs_app_path={app}",
            "-f",
            str(ddl_dir() / "dns.hql"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert described_columns(hs2, f"{db}.dns") == expected_columns(DDL_TABLES["dns"])
    details = formatted_details(hs2, f"{db}.dns")
    assert details["Type"] == "EXTERNAL"
    assert details["Location"].endswith(f"{app}/dns/hive")
    # The same tables spot_setup would create: create_tables accepts them as they are.
    result = create_tables(hs2, make_config(db))
    assert result["tables"]["dns"]["action"] == "exists"


def test_spot_setup_dag_creates_the_tables(
    hs2: HiveServer2Hook,
    tmp_path: Path,
    unique_name: str,
    cleanup: Callable[[str], None],
    request: pytest.FixtureRequest,
) -> None:
    db = unique_name
    app = f"/tmp/{db}/spot"
    cleanup(db)
    shipped = json.loads(SHIPPED.read_text())
    shipped.pop("$schema", None)
    shipped["dbname"] = db
    shipped["hdfs_app_path"] = app
    for name, pipeline in shipped["pipelines"].items():
        pipeline["collector_path"] = str(tmp_path / "collector" / name)
        pipeline["local_staging"] = str(tmp_path / "staging" / name)
        pipeline["topic"] = f"{db.replace('_', '-')}-{name}"
    config_path = tmp_path / "ingest_conf.json"
    config_path.write_text(json.dumps(shipped, indent=2))
    topics = [p["topic"] for p in shipped["pipelines"].values()]
    request.addfinalizer(lambda: delete_topics(topics))
    env = {
        **os.environ,
        "SPOT_INGEST_CONF": str(config_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": private_airflow_db(tmp_path / "airflow"),
    }

    for _ in range(2):  # idempotent: a second run succeeds and changes nothing
        out = subprocess.run(
            ["airflow", "dags", "test", "spot_setup"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=600,
            env=env,
            check=False,
        )
        log = tmp_path / "spot_setup.log"
        log.write_text(out.stdout + out.stderr)
        assert out.returncode == 0, f"spot_setup failed, see {log}:\n{(out.stdout + out.stderr)[-4000:]}"
        assert "create_tables" in out.stdout + out.stderr

    tables = {str(row[1]) for row in query(hs2, f"SHOW TABLES IN {db}")}
    assert tables == set(DDL_TABLES)
    for name, table in DDL_TABLES.items():
        assert described_columns(hs2, f"{db}.{name}") == expected_columns(table), name
        assert formatted_details(hs2, f"{db}.{name}")["Location"].endswith(f"{app}/{name}/hive")
    assert (tmp_path / "collector" / "flow_internals").is_dir()
