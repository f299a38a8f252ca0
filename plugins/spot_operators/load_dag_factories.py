"""``spot_load_<type>`` and ``spot_listener_<type>``, built from ``include/ingest_conf.json``.

Cheap at parse time: the operators import Spark, Hive and HDFS clients only when they run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, task
from airflow.sdk.exceptions import AirflowFailException

from spot_operators.assets import table_asset, topic_asset
from spot_operators.config import IngestConfig
from spot_operators.dag_factories import START
from spot_operators.load import LISTENER_APP, hours_written, listener_plans, spark_conf
from spot_operators.operators.hive import HiveQueryOperator
from spot_operators.operators.listener import SparkListenerOperator

RESULT_PLACEHOLDER = "{result_file}"


def build_load_dag(config: IngestConfig, data_type: str) -> DAG:
    """``spot_load_<type>``: listener micro-batch per topic -> register/compact hours -> reconcile."""
    plans = listener_plans(config, data_type)
    assets = [topic_asset(config, p.topic) for p in plans]
    tables = [table_asset(config, data_type), table_asset(config, "quarantine")]
    table = f"{config.dbname}.{data_type}"
    topics = ", ".join(f"`{p.topic}`" for p in plans)
    doc = f"""
### Load `{table}` from Kafka

Runs when a collect DAG announces new data on {topics} (Airflow asset events) and on the safety-net
schedule `{config.load.schedule}` (UTC).

1. `listen_<topic>`: the Spark listener (`include/jobs/spot_listener.py`) in micro-batch mode
   (`availableNow`: drain what is in the topic, commit, exit), submitted and then watched from the
   triggerer. Rows land as Parquet in `{plans[0].table_location if plans else ""}/y=/m=/d=/h=`, bad rows in
   `{config.dbname}.quarantine`; checkpoint under `<hdfs_app_path>/{data_type}/checkpoints/<topic>`. Skipped
   while `spot_listener_{data_type}` runs (it uses the same checkpoint and is already loading).
2. `register_partitions`: `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` for the hours written, and the
   quarantine table's partitions (HiveServer2, deferred).
3. `compact_partitions`: hours that ended over {config.load.compact_after_hours} h ago and hold at least
   {config.load.compact_min_files} files are rewritten into one file each (row counts checked before
   and after).
4. `reconcile`: for every file of this run, rows loaded + quarantined must equal rows published, and
   Hive's `COUNT(*)` per hour must equal the load log's sum; files not fully loaded yet are retried,
   mismatches fail the run with a report. Success updates the assets `{table}` and
   `{config.dbname}.quarantine` with the summary.
"""
    with DAG(
        dag_id=f"spot_load_{data_type}",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(config.load.schedule, timezone="UTC"),
            assets=AssetAny(*assets),
        ),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["spot", "load", data_type],
        doc_md=doc,
        default_args={"owner": "spot", "retries": 1, "retry_delay": timedelta(minutes=1)},
    ) as dag:

        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def continuous_listener_idle(ti: Any = None) -> bool:
            """False (skip the micro-batch) while spot_listener_<type> runs on the same checkpoints."""
            running = ti.get_dr_count(dag_id=f"spot_listener_{data_type}", states=["running"]) if ti else 0
            if running:
                print(f"spot_listener_{data_type} is running and loading; no micro-batch this time")
            return not running

        idle = continuous_listener_idle()
        listens = []
        for plan in plans:
            listen = SparkListenerOperator(
                task_id=f"listen_{plan.task_suffix}",
                application=str(LISTENER_APP),
                application_args=plan.application_args(config, "availableNow", RESULT_PLACEHOLDER),
                result_file="result.json",
                conf=spark_conf(config),
                name=f"spot-load-{data_type}-{plan.task_suffix}",
                driver_memory=config.spark_streaming.driver_memory or "1g",
                retries=2,
            )
            idle >> listen
            listens.append(listen)

        @task(trigger_rule="none_failed")
        def plan_partitions(results: list[Any]) -> dict[str, Any]:
            """The HQL that registers the hours written (table and quarantine) after the listeners."""
            from spot_operators.hql import register_hours_sql

            done = [r.get("result") if isinstance(r, dict) else None for r in results]
            hours = hours_written(done)
            hql = (
                register_hours_sql(config.dbname, data_type, hours, plans[0].table_location) if hours else []
            )
            if any((r or {}).get("quarantine_hours") for r in done):
                hql.append(f"MSCK REPAIR TABLE `{config.dbname}`.`quarantine`")
            print(f"{len(hours)} hour(s) written: {hours}")
            return {"hql": hql, "hours": hours, "results": done}

        planned: Any = plan_partitions([listen.output for listen in listens])
        register = HiveQueryOperator(task_id="register_partitions", hql=planned["hql"])

        @task
        def plan_compaction(planned: dict[str, Any]) -> dict[str, list[str]]:
            """Compaction HQL for the closed hours of this run that hold many small files."""
            from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

            from spot_operators.hql import HourPartition, compact_partition_sql
            from spot_operators.load import hours_to_compact
            from spot_operators.tables import TABLES

            client = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
            spec = TABLES[data_type]
            counts = {}
            for hour in planned["hours"]:
                folder = f"{plans[0].table_location}/{HourPartition.of(hour).folder(spec)}"
                names = client.list(folder) if client.status(folder, strict=False) else []
                counts[tuple(hour)] = sum(1 for n in names if n.endswith(".parquet"))
            chosen = hours_to_compact(
                counts,
                min_files=config.load.compact_min_files,
                min_age_hours=config.load.compact_after_hours,
            )
            hql: list[str] = []
            for hour in chosen:
                hql += compact_partition_sql(config.dbname, data_type, hour).statements
            print(f"files per hour: {counts}; compacting {chosen}")
            return {"hql": hql}

        compaction: Any = plan_compaction(planned)
        compact = HiveQueryOperator(task_id="compact_partitions", hql=compaction["hql"])

        @task(retries=3, retry_delay=timedelta(seconds=60), outlets=tables)
        def reconcile(
            planned: dict[str, Any], triggering_asset_events: Any = None, outlet_events: Any = None
        ) -> dict[str, Any]:
            """Rows loaded + quarantined == rows published per file; Hive's counts == the load log's.

            Success updates the table assets (the rows are in Hive and checked), with the summary.
            """
            from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
            from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

            from spot_operators.operators.reconcile import reconcile_load

            extras = [
                event.extra
                for events in (triggering_asset_events or {}).values()
                for event in events
                if getattr(event, "extra", None)
            ]
            report = reconcile_load(
                config,
                data_type,
                planned["results"],
                extras,
                WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn(),
                HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2"),
            )
            print(report.text())
            if report.failed:
                raise AirflowFailException(
                    f"{len(report.failed)} problem(s) in {table}:\n" + "\n".join(report.failed)
                )
            if report.pending:
                raise RuntimeError(
                    f"{len(report.pending)} file(s) not fully loaded yet (retrying):\n"
                    + "\n".join(report.pending)
                )
            summary = report.summary()
            if outlet_events is not None:
                outlet_events[tables[0]].extra = summary
            return summary

        register >> compaction
        compact >> reconcile(planned)
    return dag


def build_listener_dag(config: IngestConfig, data_type: str) -> DAG:
    """``spot_listener_<type>``: the continuous listener of each topic, restarted when it fails."""
    plans = listener_plans(config, data_type)
    doc = f"""
### Continuous listener for `{config.dbname}.{data_type}`

Runs `include/jobs/spot_listener.py` in continuous mode (a micro-batch every
{config.spark_streaming.spark_batch_size} s, Spot's `spark_batch_size`) on
{", ".join(f"`{p.topic}`" for p in plans)}; each batch registers the hour partitions it wrote, so rows
are queryable within about one batch interval. The task defers while the application runs; when the
application fails, the task fails with the driver's error and log tail, and Airflow restarts it (retries
with exponential back-off). Pause the DAG to stop listening (the running application is killed when its
task is marked failed or cleared). While it runs, `spot_load_{data_type}` skips its own micro-batch:
both share the checkpoint, so no row is loaded twice.
"""
    with DAG(
        dag_id=f"spot_listener_{data_type}",
        schedule="@continuous",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["spot", "listener", data_type],
        doc_md=doc,
        default_args={
            "owner": "spot",
            "retries": 20,
            "retry_delay": timedelta(seconds=30),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
        },
    ) as dag:
        for plan in plans:
            SparkListenerOperator(
                task_id=f"listen_{plan.task_suffix}",
                application=str(LISTENER_APP),
                application_args=plan.application_args(config, "continuous", register=True),
                conf=spark_conf(config),
                name=f"spot-listener-{data_type}-{plan.task_suffix}",
                driver_memory=config.spark_streaming.driver_memory or "1g",
                app_timeout=None,
                # For the asset graph: each batch writes these tables (an event only if the app ends).
                outlets=[table_asset(config, data_type), table_asset(config, "quarantine")],
            )
    return dag
