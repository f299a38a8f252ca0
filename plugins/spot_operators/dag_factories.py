"""DAGs built from ``include/ingest_conf.json``: DAG files stay thin and declarative.

Everything here is cheap at parse time: operators import their heavy libraries in ``execute``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from spot_operators.assets import collector_asset, topic_asset
from spot_operators.config import IngestConfig
from spot_operators.operators.collect import CollectFileOperator, summarize
from spot_operators.sensors.collector import CollectorFilesSensor

START = datetime(2026, 1, 1)
OWNER = "spot"
DEFAULT_ARGS: dict[str, Any] = {"owner": OWNER, "retries": 1, "retry_delay": timedelta(seconds=15)}
"""Owner and retries of the collect and setup DAGs (one retry: a collect step is idempotent)."""

__all__ = [
    "DEFAULT_ARGS",
    "OWNER",
    "START",
    "build_collect_dag",
    "build_setup_dag",
    "smoke_dag_args",
    "topic_asset",
]


def smoke_dag_args() -> dict[str, Any]:
    """The shared header of the smoke DAGs (each is triggered by hand, ``schedule=None``): no retries."""
    return {
        "start_date": START,
        "catchup": False,
        "tags": ["spot", "smoke"],
        "default_args": {"owner": OWNER, "retries": 0},
    }


def build_collect_dag(config: IngestConfig, name: str) -> DAG:
    """``spot_collect_<pipeline>``: wait for ready files, collect each (mapped), announce per topic."""
    pipeline = config.pipelines[name]
    topic = pipeline.topic or f"spot-{name}"
    asset = topic_asset(config, topic)
    folder = collector_asset(config, name)
    patterns = ", ".join(f"`{p}`" for p in pipeline.supported_files or [])
    doc = f"""
### Collect `{name}` ({pipeline.type})

Runs when the watcher of asset `{folder.name}` (the triggerer polls `{pipeline.collector_path}` every
{config.ingestion_interval} s) sees new complete files matching {patterns} (recursive: {pipeline.recursive}),
or when triggered by hand. Each ready file (stable for `stable_seconds`) is dissected, its original
is stored and verified in HDFS under `{config.hdfs_app_path}/{pipeline.type}/binary/YYYYMMDD/HH/`, its rows
are published to Kafka topic `{topic}` (inline Avro under {config.kafka.inline_limit_bytes} CSV bytes, else
HDFS pointers to staged pieces of at most {config.kafka.staged_csv_max_bytes} bytes), and the file is recorded
as done in the ledger `{pipeline.local_staging}/ledger.sqlite3`.
At most {config.collector_processes} files at once. A run that sees no ready file within `max_wait_seconds`
ends as skipped (a run started by the watcher waits at most `stable_seconds` + 3 polls: its files were
ready when it fired). Quarantined lines: `{pipeline.local_staging}/quarantine/`; undelivered segments:
`{pipeline.local_staging}/failed/`.
"""
    with DAG(
        dag_id=f"spot_collect_{name}",
        schedule=[folder],
        max_active_runs=1,
        start_date=START,
        catchup=False,
        tags=["spot", "collect", pipeline.type],
        doc_md=doc,
        default_args=DEFAULT_ARGS,
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
        default_args=DEFAULT_ARGS,
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
