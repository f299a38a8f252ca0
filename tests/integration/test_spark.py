"""Spark jobs submitted the way the DAGs submit them: ``SparkSubmitHook`` with connection ``spot_spark``.

(a) Kafka -> Structured Streaming (availableNow) -> Parquet in HDFS, with the pre-resolved connector jars
    from ``spot_operators.spark_jars`` (no download at start), read back by the job itself, and
    checked in HDFS over WebHDFS. A second run on the same checkpoint adds only the new messages.
(b) A table created and filled through HiveServer2 is seen, rows and partitions, by a separate Spark
    job through the shared metastore.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from spot_operators.spark_jars import connector_jars

from .hive_support import drop_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JOBS = PROJECT_ROOT / "include" / "jobs"
KAFKA_JOB = JOBS / "smoke_kafka_to_parquet.py"
HIVE_JOB = JOBS / "smoke_hive_table_count.py"

# Keep the driver on loopback (the host name resolves to 127.0.0.1, so Spark would otherwise pick
# another interface and warn) and small: the whole stack shares 2 cores.
SPARK_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
}


def bootstrap_servers() -> str:
    return f"{os.environ.get('SPOT_BIND_HOST', '127.0.0.1')}:{os.environ['SPOT_KAFKA_PORT']}"


def spark_submit(application: Path, args: list[str], name: str, jars: list[str] | None = None) -> None:
    hook = SparkSubmitHook(
        conn_id="spot_spark",
        conf=SPARK_CONF,
        jars=",".join(jars) if jars else None,
        driver_memory="1g",
        name=name,
        application_args=args,
        env_vars={"SPARK_LOCAL_IP": SPARK_CONF["spark.driver.host"]},
    )
    assert hook._connection["master"] == "local[2]", hook._connection
    hook.submit(application=str(application))


@pytest.fixture
def webhdfs() -> Any:
    return WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()


@pytest.fixture
def hdfs_dir(unique_name: str, webhdfs: Any, request: pytest.FixtureRequest) -> str:
    """An HDFS folder for this test, deleted (recursively) when it ends."""
    path = f"/tmp/spot-it/{unique_name}"
    request.addfinalizer(lambda: webhdfs.delete(path, recursive=True))
    return path


@pytest.fixture
def kafka_topic(unique_name: str, request: pytest.FixtureRequest) -> str:
    """A fresh topic with 2 partitions, deleted when the test ends."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers()})
    topic = unique_name

    def delete() -> None:
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result(timeout=60)

    request.addfinalizer(delete)
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result(timeout=60)
    return topic


def produce(topic: str, messages: list[tuple[str, str]]) -> None:
    """Produce (key, value) pairs with an idempotent acks=all producer; fail on any delivery error."""
    producer = Producer({"bootstrap.servers": bootstrap_servers(), "enable.idempotence": True, "acks": "all"})
    errors: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for key, value in messages:
        producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=on_delivery)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages not delivered to {topic}"
    assert errors == [], f"delivery errors: {errors}"


def hdfs_files(client: Any, path: str) -> dict[str, dict[str, Any]]:
    """name -> WebHDFS FileStatus of the entries of ``path`` (LISTSTATUS)."""
    return dict(client.list(path, status=True))


def test_kafka_to_parquet_via_spark_submit(
    kafka_topic: str, hdfs_dir: str, webhdfs: Any, tmp_path: Path
) -> None:
    first = [(f"file-{i % 3}", f"flow-record-{i:03d}") for i in range(7)]
    produce(kafka_topic, first)

    output, checkpoint = f"{hdfs_dir}/parquet", f"{hdfs_dir}/checkpoint"
    jars = connector_jars()
    assert any("spark-sql-kafka-0-10" in Path(j).name for j in jars), jars

    def run(result: Path) -> dict[str, Any]:
        args = ["--bootstrap", bootstrap_servers(), "--topic", kafka_topic, "--output", output]
        args += ["--checkpoint", checkpoint, "--result", str(result)]
        spark_submit(KAFKA_JOB, args, name=f"it-{kafka_topic}", jars=jars)
        return json.loads(result.read_text(encoding="utf-8"))

    result = run(tmp_path / "first.json")
    assert result == {"rows": len(first), "values": sorted(v for _, v in first)}

    # The Parquet files and the streaming bookkeeping are in HDFS.
    files = hdfs_files(webhdfs, output)
    parquet = {n: s for n, s in files.items() if n.startswith("part-") and n.endswith(".parquet")}
    assert parquet, f"no Parquet part files in {output}: {sorted(files)}"
    assert all(s["type"] == "FILE" and s["length"] > 0 for s in parquet.values()), parquet
    assert files["_spark_metadata"]["type"] == "DIRECTORY"
    assert hdfs_files(webhdfs, f"{checkpoint}/offsets"), "no committed offsets in the checkpoint"
    assert hdfs_files(webhdfs, f"{checkpoint}/commits"), "no commits in the checkpoint"

    # Same checkpoint, two new messages: only they are added; nothing is read twice.
    second = [("file-9", "flow-record-100"), ("file-9", "flow-record-101")]
    produce(kafka_topic, second)
    result = run(tmp_path / "second.json")
    assert result == {"rows": len(first) + len(second), "values": sorted(v for _, v in first + second)}
    assert len(hdfs_files(webhdfs, f"{checkpoint}/commits")) >= 2


def test_kafka_job_fails_non_zero(kafka_topic: str, hdfs_dir: str, webhdfs: Any, tmp_path: Path) -> None:
    """A broken job must fail the submit: here the checkpoint path is an existing file."""
    produce(kafka_topic, [("k", "v")])
    webhdfs.write(f"{hdfs_dir}/not-a-folder", data=b"x", overwrite=True)
    args = ["--bootstrap", bootstrap_servers(), "--topic", kafka_topic, "--output", f"{hdfs_dir}/out"]
    args += ["--checkpoint", f"{hdfs_dir}/not-a-folder", "--result", str(tmp_path / "r.json")]
    with pytest.raises(Exception, match="Cannot execute"):
        spark_submit(KAFKA_JOB, args, name=f"it-{kafka_topic}", jars=connector_jars())
    assert not (tmp_path / "r.json").exists()


def test_spark_job_sees_hive_table(unique_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    hs2 = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
    db = unique_name
    request.addfinalizer(lambda: drop_database(hs2, db, None))
    table = f"{db}.dns"
    rows = {
        (2016, 5, 12, 3): [("2016-05-12 03:00:07", "spot.apache.org", 1), ("2016-05-12 03:00:08", "a.b", 28)],
        (2026, 11, 22, 19): [("2026-11-22 19:30:00", "example.org", 1)],
    }
    statements = [
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {table} (frame_time STRING, dns_qry_name STRING, dns_qry_type INT) "
        "PARTITIONED BY (y SMALLINT, m TINYINT, d TINYINT, h TINYINT) STORED AS PARQUET",
    ]
    for (y, m, d, h), part_rows in rows.items():
        values = ", ".join(f"('{t}', '{q}', {n})" for t, q, n in part_rows)
        statements.append(f"INSERT INTO {table} PARTITION (y={y}, m={m}, d={d}, h={h}) VALUES {values}")
    hs2.run(statements)
    seen_by_hs2 = sorted(tuple(r) for r in hs2.get_records(f"SELECT * FROM {table}"))
    partitions_hs2 = sorted(r[0] for r in hs2.get_records(f"SHOW PARTITIONS {table}"))

    result_file = tmp_path / "table.json"
    spark_submit(HIVE_JOB, ["--table", table, "--result", str(result_file), "--dump-rows"], name=f"it-{db}")
    result = json.loads(result_file.read_text(encoding="utf-8"))

    expected_data = sorted(row + part for part, part_rows in rows.items() for row in part_rows)
    assert seen_by_hs2 == expected_data
    assert result["rows"] == len(expected_data)
    assert result["columns"] == ["frame_time", "dns_qry_name", "dns_qry_type", "y", "m", "d", "h"]
    assert result["partitions"] == partitions_hs2 == ["y=2016/m=5/d=12/h=3", "y=2026/m=11/d=22/h=19"]
    assert sorted(tuple(r) for r in result["data"]) == expected_data

    # A table the metastore does not know fails the job, and the submit with it.
    with contextlib.suppress(FileNotFoundError):
        result_file.unlink()
    with pytest.raises(Exception, match="Cannot execute"):
        spark_submit(HIVE_JOB, ["--table", f"{db}.no_such_table", "--result", str(result_file)], name="it-x")
    assert not result_file.exists()
