"""DAGs built from ``include/ingest_conf.json``: DAG files stay thin and declarative.

Everything here is cheap at parse time: operators import their heavy libraries in ``execute``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from spot_operators.config import IngestConfig
from spot_operators.operators.collect import CollectFileOperator, summarize
from spot_operators.sensors.collector import CollectorFilesSensor

START = datetime(2026, 1, 1)


def topic_asset(config: IngestConfig, topic: str) -> Asset:
    """The Asset that load DAGs listen to: one per Kafka topic."""
    return Asset(uri=f"kafka://{config.kafka.bootstrap_servers}/{topic}", name=f"spot_topic_{topic}")


def build_collect_dag(config: IngestConfig, name: str) -> DAG:
    """``spot_collect_<pipeline>``: wait for ready files, collect each (mapped), announce per topic."""
    pipeline = config.pipelines[name]
    topic = pipeline.topic or f"spot-{name}"
    asset = topic_asset(config, topic)
    patterns = ", ".join(f"`{p}`" for p in pipeline.supported_files or [])
    doc = f"""
### Collect `{name}` ({pipeline.type})

Watches `{pipeline.collector_path}` for files matching {patterns}
(recursive: {pipeline.recursive}). Each ready file (stable for `stable_seconds`) is dissected, its original
is stored and verified in HDFS under `{config.hdfs_app_path}/{pipeline.type}/binary/YYYYMMDD/HH/`, its rows
are published to Kafka topic `{topic}` (inline Avro under {config.kafka.inline_limit_bytes} CSV bytes, else
an HDFS pointer), and the file is recorded as done in the ledger `{pipeline.local_staging}/ledger.sqlite3`.
At most {config.collector_processes} files at once. A run that sees no ready file within `max_wait_seconds`
ends as skipped. Quarantined lines: `{pipeline.local_staging}/quarantine/`; undelivered segments:
`{pipeline.local_staging}/failed/`.
"""
    with DAG(
        dag_id=f"spot_collect_{name}",
        schedule="@continuous",
        max_active_runs=1,
        start_date=START,
        catchup=False,
        tags=["spot", "collect", pipeline.type],
        doc_md=doc,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=15)},
        params={
            "max_wait_seconds": Param(pipeline.max_wait_seconds, type="number", minimum=0),
            "stable_seconds": Param(pipeline.stable_seconds, type="number", minimum=0),
        },
    ) as dag:
        ready = CollectorFilesSensor(
            task_id="wait_for_files",
            pipeline=name,
            max_wait_seconds="{{ params.max_wait_seconds }}",
            stable_seconds="{{ params.stable_seconds }}",
            retries=0,
        )
        collected = CollectFileOperator.partial(
            task_id="collect_file",
            pipeline=name,
            max_active_tis_per_dagrun=config.collector_processes,
        ).expand(file=ready.output)

        @task(task_id="announce", trigger_rule="all_done", outlets=[asset], retries=0)
        def announce(files: Any, results: Any, outlet_events: Any = None) -> dict[str, Any]:
            """Emit the topic's Asset event with totals; fail if any file did not make it."""
            if files is None:
                raise AirflowSkipException("no files were ready")
            summary = summarize(list(files), [r for r in (results or []) if r])
            if summary["files_collected"]:
                outlet_events[asset].extra = summary
            if summary["files_failed"]:
                raise AirflowFailException(
                    f"{len(summary['files_failed'])} of {summary['files_ready']} files failed: "
                    f"{summary['files_failed']}; see the collect_file task logs and the ledger. "
                    f"Collected: {summary['files']}"
                )
            return summary

        announce(ready.output, collected.output)
    return dag


def build_setup_dag(config: IngestConfig) -> DAG:
    """``spot_setup``: create the Kafka topics, HDFS folders and Hive tables the pipelines write into."""
    with DAG(
        dag_id="spot_setup",
        schedule=None,
        start_date=START,
        catchup=False,
        tags=["spot", "setup"],
        doc_md="""
### Set up Spot's topics, folders and tables

Creates the Kafka topic of every configured pipeline (partitions and replication from `kafka` in the config)
and Spot's HDFS folders (`<hdfs_app_path>/<type>/{binary,stage,hive,checkpoints,loadlog}`), plus the local
collector and staging folders. Then, through HiveServer2, the database `<dbname>` and Spot's EXTERNAL
Parquet tables `flow`, `dns`, `proxy` at `<hdfs_app_path>/<type>/hive` and `quarantine` at
`<hdfs_app_path>/quarantine/hive` (DDL: `include/schemas/hive/`). Safe to run again: what exists is left
alone, but an existing table whose columns, partitions or location differ fails the run.
""",
    ) as dag:

        @task
        def create_topics() -> dict[str, str]:
            from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

            from spot_operators.config import load_ingest_config
            from spot_operators.provisioning import ensure_topics

            return ensure_topics(
                KafkaAdminClientHook(kafka_config_id="spot_kafka").get_conn, load_ingest_config()
            )

        @task
        def create_folders() -> dict[str, list[str]]:
            from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

            from spot_operators.config import load_ingest_config
            from spot_operators.provisioning import ensure_hdfs_folders, ensure_local_folders

            current = load_ingest_config()
            client = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
            return {"hdfs": ensure_hdfs_folders(client, current), "local": ensure_local_folders(current)}

        @task
        def create_tables() -> dict[str, Any]:
            from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

            from spot_operators.config import load_ingest_config
            from spot_operators.hive_ddl import create_tables as ensure_tables

            hook = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
            return ensure_tables(hook, load_ingest_config())

        create_topics()
        create_folders() >> create_tables()
    return dag
