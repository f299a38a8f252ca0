"""``spot_backfill``, ``spot_reprocess_<type>`` and ``spot_replay_failed_segments``, from the config.

Cheap at parse time: clients (HDFS, Kafka, Hive) and the work itself are imported inside the tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, CronTriggerTimetable, Param, task
from airflow.sdk.exceptions import AirflowFailException

from spot_operators.config import IngestConfig
from spot_operators.dag_factories import START
from spot_operators.operators.hive import HiveLoadStagedCsvOperator

#: Reprocess runs may cover any past hour (``airflow backfill create``); catchup stays off.
REPROCESS_START = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_ARGS: dict[str, Any] = {"owner": "spot", "retries": 1, "retry_delay": timedelta(minutes=1)}


def _kafka_producer_factory(config: IngestConfig) -> Any:
    from spot_operators.hooks.kafka import IdempotentProducerHook

    return IdempotentProducerHook("spot_kafka", config.kafka.max_request_size).get_producer


def _hdfs_factory() -> Any:
    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

    return WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn


def build_backfill_dag(config: IngestConfig) -> DAG:
    """``spot_backfill``: re-publish staged CSV or failed segments to Kafka, or load them into Hive."""
    names = sorted(config.pipelines)
    doc = f"""
### Backfill staged data of a pipeline (manual)

Trigger with the form. `source` is a file, folder or glob of **staged CSV** (`*.csv`) or **failed
segments** (`failed/<file>.<digest>/segment-NNNNN.avro`) and must lie inside the pipeline's staging roots:
its `local_staging` (which holds `failed/`) or `{config.hdfs_app_path}/<type>/stage` in HDFS (also as
`hdfs:///...`). Anything else, `..` and symlinks leading out, is refused with the path and the roots.

* `target=kafka` re-publishes without conversion (Spot's `--skip-conversion`): CSV rows as inline Avro or
  an HDFS pointer, like collect; failed segments as they are, then removed (replayed).
* `target=hive` stages the selected rows to a unique folder `<type>/stage/_backfill/<key>` and loads them
  with `HiveLoadStagedCsvOperator` (deferred to the triggerer); kept segments it loaded are removed.
* `since` / `until` (UTC, inclusive / exclusive) filter on each row's own time: flow and dns
  `unix_tstamp`, proxy `p_date` + `p_time`. Rows without a usable time are left out (and counted).
* `dry_run` counts files, rows and bytes and changes nothing.

Idempotent: each file is one entry of `<local_staging>/backfill_ledger.sqlite3` keyed by its sha256, the
target and the window, and is `done` only after Kafka acknowledged every message or Hive reported the
load. The same backfill again skips it (the log says how many). Kafka messages carry the sha256 of the
rows as file digest, so a repeat is recognised downstream too.
"""
    with DAG(
        dag_id="spot_backfill",
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["spot", "backfill", "operate"],
        doc_md=doc,
        default_args={**DEFAULT_ARGS, "retries": 0},
        params={
            "pipeline": Param(
                names[0],
                type="string",
                enum=names,
                title="Pipeline",
                description="Configured pipeline whose staged data is backfilled (sets topic and table).",
            ),
            "source": Param(
                type="string",
                minLength=1,
                title="Source",
                description="File, folder or glob of staged CSV or failed segments, inside the pipeline's "
                "local_staging or <hdfs_app_path>/<type>/stage (HDFS: the path or hdfs:///path).",
            ),
            "target": Param(
                "kafka",
                type="string",
                enum=["kafka", "hive"],
                title="Target",
                description="kafka: re-publish to the pipeline's topic without conversion; "
                "hive: stage the rows in HDFS and load them into <dbname>.<type>.",
            ),
            "since": Param(
                None,
                type=["null", "string"],
                title="Since (UTC, inclusive)",
                description="Keep rows whose own time is at or after this, e.g. 2023-01-25T18:00:00Z. "
                "Empty: no bound.",
            ),
            "until": Param(
                None,
                type=["null", "string"],
                title="Until (UTC, exclusive)",
                description="Keep rows whose own time is before this. Empty: no bound.",
            ),
            "dry_run": Param(
                False,
                type="boolean",
                title="Dry run",
                description="Only count files, rows and bytes that would be sent; change nothing.",
            ),
        },
    ) as dag:

        @task(task_id="backfill")
        def run(params: dict[str, Any] | None = None) -> dict[str, Any]:
            """Resolve and confine the source, then publish (kafka) or stage (hive), or only count."""
            from spot_operators.backfill import (
                BackfillSourceError,
                TimeWindow,
                is_hdfs_source,
                parse_utc,
                resolve_hdfs_source,
                resolve_local_source,
                roots_of,
            )
            from spot_operators.backfill_run import run_backfill
            from spot_operators.config import load_ingest_config

            p = params or {}
            current = load_ingest_config()
            name = str(p["pipeline"])
            if name not in current.pipelines:
                raise AirflowFailException(
                    f"pipeline {name!r} is not configured ({', '.join(current.pipelines)})"
                )
            pipeline = current.pipelines[name]
            target = str(p.get("target") or "kafka")
            if target == "kafka" and pipeline.message_format != "ingest":
                raise AirflowFailException(
                    f"pipeline {name} carries {pipeline.message_format} messages; "
                    "backfill it with target=hive"
                )
            try:
                window = TimeWindow(parse_utc(p.get("since"), "since"), parse_utc(p.get("until"), "until"))
                roots = roots_of(current, pipeline)
                source = str(p["source"]).strip()
                if is_hdfs_source(source, roots):
                    items = resolve_hdfs_source(source, roots, _hdfs_factory()())
                else:
                    items = resolve_local_source(source, roots)
            except (BackfillSourceError, ValueError) as exc:
                raise AirflowFailException(str(exc)) from None
            print(f"{len(items)} file(s) selected from {source}: " + ", ".join(i.path for i in items[:20]))
            report = run_backfill(
                current,
                pipeline,
                items,
                target="hive" if target == "hive" else "kafka",
                window=window,
                dry_run=bool(p.get("dry_run")),
                hdfs_factory=_hdfs_factory(),
                producer_factory=_kafka_producer_factory(current),
            )
            print(report.line())
            return {**report.to_dict(), "table": pipeline.type, "database": current.dbname}

        @task.short_circuit(task_id="needs_hive_load")
        def needs_hive_load(report: dict[str, Any]) -> bool:
            """Only a Hive backfill that staged rows goes on to the load."""
            return bool(report.get("hive_folder")) and not report.get("dry_run")

        load = HiveLoadStagedCsvOperator(
            task_id="load_hive",
            database=config.dbname,
            table="{{ ti.xcom_pull(task_ids='backfill')['table'] }}",
            csv_folder="{{ ti.xcom_pull(task_ids='backfill')['hive_folder'] }}",
        )

        @task(task_id="record_hive_load", retries=3)
        def record(report: dict[str, Any], params: dict[str, Any] | None = None) -> int:
            """Mark the loaded files done in the backfill ledger (a repeat now skips them)."""
            from spot_operators.backfill_run import mark_hive_done
            from spot_operators.config import load_ingest_config

            pipeline = load_ingest_config().pipelines[str((params or {})["pipeline"])]
            done = mark_hive_done(pipeline, report["versions"], report["kept_folders"])
            print(f"{done} file(s) recorded as loaded into Hive from {report['hive_folder']}")
            return done

        report: Any = run()
        needs_hive_load(report) >> load >> record(report)
    return dag


def build_reprocess_dag(config: IngestConfig, data_type: str) -> DAG:
    """``spot_reprocess_<type>``: re-ingest the HDFS originals of one hour (its data interval)."""
    root = f"{config.hdfs_app_path}/{data_type}"
    doc = f"""
### Reprocess the `{data_type}` originals of one hour

Hourly, keyed on the data interval (UTC): downloads the originals under
`{root}/binary/YYYYMMDD/HH/` of the interval's start, dissects them with the collect dissectors and
publishes them like collect (inline Avro or HDFS pointer), to the topic of the pipeline that stored them.
Paused by default; made for past hours:

    airflow backfill create --dag-id spot_reprocess_{data_type} \\
        --from-date 2023-01-25T18:00:00+00:00 --to-date 2023-01-25T20:00:00+00:00

`airflow dags test spot_reprocess_{data_type} 2023-01-25T19:00:00+00:00` reprocesses hour 18: a manual
run covers the last complete interval before its logical date.

Never twice: each original is an entry of `<local_staging>/reprocess_ledger.sqlite3` (HDFS path with
its hour, size, sha256); a `done` original is skipped. Originals whose rows are already published by
collect (collect ledger) or loaded (load log) are skipped too unless the `force` param is set: the
listener only drops a repeated file within one micro-batch. Returns and logs the counts.
"""
    with DAG(
        dag_id=f"spot_reprocess_{data_type}",
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=REPROCESS_START,
        catchup=False,
        max_active_runs=4,
        tags=["spot", "reprocess", "operate", data_type],
        doc_md=doc,
        default_args=DEFAULT_ARGS,
        params={
            "force": Param(
                False,
                type="boolean",
                title="Force",
                description="Also re-publish originals that collect already published or the load already "
                "loaded (only when those rows are known lost: otherwise Hive gets them twice).",
            )
        },
    ) as dag:

        @task(task_id="reprocess_hour")
        def reprocess(
            data_interval_start: Any = None, params: dict[str, Any] | None = None, ti: Any = None
        ) -> dict[str, Any]:
            """Re-ingest the originals of this run's hour; counts in the log and the return value."""
            from spot_operators.config import load_ingest_config
            from spot_operators.operators.reconcile import load_log_of_type
            from spot_operators.reprocess import reprocess_hour

            current = load_ingest_config()
            hdfs_factory = _hdfs_factory()
            start = data_interval_start
            if start is None:
                raise AirflowFailException("this run has no data interval; trigger it for a logical date")

            def loaded() -> set[str]:
                entries = load_log_of_type(current, data_type, hdfs_factory())
                return {e.file_digest for e in entries if e.rows or e.quarantined}

            report = reprocess_hour(
                current,
                data_type,
                start,
                owner=f"spot_reprocess_{data_type}/{start.isoformat()}",
                hdfs_factory=hdfs_factory,
                producer_factory=_kafka_producer_factory(current),
                loaded_digests=loaded,
                force=bool((params or {}).get("force")),
            )
            for item in report.files:
                print(f"{item['original']}: {item.get('status')} ({item.get('rows', '-')} rows)")
            return report.to_dict()

        reprocess()
    return dag


def build_replay_dag(config: IngestConfig) -> DAG:
    """``spot_replay_failed_segments``: re-send kept segments once Kafka answers, then remove them."""
    doc = """
### Replay failed Kafka segments

Every 5 minutes (UTC): if Kafka answers, every segment kept under each pipeline's
`<local_staging>/failed/<file>.<digest>/` (written when Kafka did not acknowledge it) is sent once more
with the idempotent producer (acks=all), every delivery report is checked, and only then is the folder
removed. Folders superseded by a later successful collect of the same file (same digest and name
`published`/`done` in the collect ledger) are removed without sending. The task returns and logs the
segments still pending per pipeline (`spot_operators.replay.pending_failed_segments(config)` gives the same
numbers to other code); when Kafka does not answer, nothing is sent and the pending count is returned.
"""
    with DAG(
        dag_id="spot_replay_failed_segments",
        schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["spot", "replay", "operate"],
        doc_md=doc,
        default_args=DEFAULT_ARGS,
    ) as dag:

        @task(task_id="replay_failed_segments")
        def replay() -> dict[str, Any]:
            """Replay what Kafka did not acknowledge; return the pending count per pipeline."""
            from spot_operators.config import load_ingest_config
            from spot_operators.replay import ReplayReport, pending_failed_segments, replay_pipeline

            current = load_ingest_config()
            before = pending_failed_segments(current)
            report = ReplayReport()
            if not any(before.values()):
                report.pending = before
                print("no failed segments pending")
                return report.to_dict()
            factory = _kafka_producer_factory(current)
            producer = factory()
            try:
                producer.list_topics(timeout=15)
            except Exception as exc:  # KafkaException: the broker does not answer yet
                report.pending = before
                print(
                    f"Kafka does not answer ({exc}); "
                    f"{sum(before.values())} segment(s) still pending: {before}"
                )
                return report.to_dict()
            for pipeline in current.pipelines.values():
                replay_pipeline(pipeline, lambda: producer, report)
            report.pending = pending_failed_segments(current)
            print(
                f"replayed {report.sent_segments} segment(s) of {report.sent_files} file(s) "
                f"({report.sent_bytes} bytes), removed {report.superseded} superseded folder(s); "
                f"pending: {report.pending}"
            )
            if report.errors:
                raise AirflowFailException(
                    f"{len(report.errors)} folder(s) could not be replayed; {sum(report.pending.values())} "
                    "segment(s) still pending:\n" + "\n".join(report.errors)
                )
            return report.to_dict()

        replay()
    return dag
