"""Smoke test of the local stack: one run touches Kafka, HDFS, Hive and Spark through Airflow.

``make demo`` runs it with ``airflow dags test spot_smoke``; it is also the first thing to trigger in
the UI after ``make stack-up``. Hooks are imported inside the tasks to keep DAG parsing light.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from spot_operators.dag_factories import smoke_dag_args
from spot_operators.layout import name_component
from spot_operators.sensors.webhdfs import WebHdfsPathSensor

SMOKE_TOPIC = "spot-smoke"
SMOKE_DB = "spot_smoke"


@dag(
    dag_id="spot_smoke",
    schedule=None,
    doc_md=__doc__,
    **smoke_dag_args(),
)
def spot_smoke() -> None:
    @task
    def kafka_roundtrip(run_id: str | None = None) -> dict[str, object]:
        """Create the smoke topic if needed, produce one message, read it back by its key."""
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook
        from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
        from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
        from confluent_kafka import TopicPartition

        assert run_id
        KafkaAdminClientHook(kafka_config_id="spot_kafka").create_topic([(SMOKE_TOPIC, 1, 1)])
        producer = KafkaProducerHook(kafka_config_id="spot_kafka").get_producer()
        delivered: list[tuple[int, int]] = []
        errors: list[str] = []

        def on_delivery(err: object, msg: object) -> None:
            if err:
                errors.append(str(err))
            else:
                delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

        producer.produce(SMOKE_TOPIC, key=run_id.encode(), value=b"smoke", on_delivery=on_delivery)
        if producer.flush(30) != 0 or errors or not delivered:
            raise RuntimeError(f"Kafka did not acknowledge the smoke message: {errors or 'flush timed out'}")
        partition, offset = delivered[0]
        consumer = KafkaConsumerHook([SMOKE_TOPIC], kafka_config_id="spot_kafka").get_consumer()
        try:
            # Read exactly the acknowledged offset, whatever the group's committed position is.
            consumer.unsubscribe()
            consumer.assign([TopicPartition(SMOKE_TOPIC, partition, offset)])
            for message in consumer.consume(num_messages=1, timeout=30.0):
                if message.error() is None and message.key() == run_id.encode():
                    return {"topic": SMOKE_TOPIC, "partition": partition, "offset": offset}
        finally:
            consumer.close()
        raise RuntimeError(f"message {partition}/{offset} with key {run_id} not read back from {SMOKE_TOPIC}")

    @task
    def hdfs_roundtrip(run_id: str | None = None) -> str:
        """Write a marker file through WebHDFS and read it back; return its path."""
        from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

        assert run_id
        path = f"/tmp/spot-smoke/{name_component(run_id)}/ready"
        client = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
        client.write(path, data=run_id.encode(), overwrite=True)
        with client.read(path) as reader:
            if reader.read() != run_id.encode():
                raise RuntimeError(f"HDFS returned different bytes for {path}")
        return path

    @task
    def hive_roundtrip(run_id: str | None = None) -> str:
        """Create a partitioned Parquet table through HiveServer2, insert a row, count it."""
        from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

        assert run_id
        table = f"{SMOKE_DB}.run_{name_component(run_id)}"[:120]
        hook = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
        hook.run(f"CREATE DATABASE IF NOT EXISTS {SMOKE_DB}")
        hook.run(f"DROP TABLE IF EXISTS {table}")
        hook.run(f"CREATE TABLE {table} (note STRING) PARTITIONED BY (y SMALLINT) STORED AS PARQUET")
        hook.run(f"INSERT INTO {table} PARTITION (y=2026) VALUES ('smoke')")
        rows = hook.get_records(f"SELECT count(*) FROM {table}")
        if rows != [(1,)]:
            raise RuntimeError(f"expected one row in {table}, HiveServer2 answered {rows}")
        return table

    @task
    def spark_reads_hive(table: str) -> dict[str, object]:
        """A Spark job (spark-submit) sees the table HiveServer2 created: one shared metastore."""
        import json
        import tempfile
        from pathlib import Path

        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

        from spot_operators.config import project_root
        from spot_operators.spark_jars import connector_jars

        with tempfile.TemporaryDirectory(prefix="spot-smoke-") as tmp:
            result = Path(tmp) / "result.json"
            SparkSubmitHook(
                conn_id="spot_spark",
                name="spot-smoke-hive-count",
                driver_memory="1g",
                jars=",".join(connector_jars()),
                application_args=["--table", table, "--result", str(result)],
            ).submit(application=str(project_root() / "include" / "jobs" / "smoke_hive_table_count.py"))
            answer = json.loads(result.read_text())
        if answer.get("rows") != 1:
            raise RuntimeError(f"Spark saw {answer} in {table}, expected 1 row")
        return answer

    marker = hdfs_roundtrip()
    wait = WebHdfsPathSensor(task_id="wait_for_marker", path=marker, poll_interval=2, timeout=300)
    marker >> wait
    spark_reads_hive(hive_roundtrip())
    kafka_roundtrip()


spot_smoke()
