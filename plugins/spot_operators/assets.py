"""The Airflow assets of the ingest: collector folders -> Kafka topics -> Hive tables.

They make the asset graph show the data's path (collect DAGs are scheduled by their folder's watcher,
announce their topic, load DAGs run on the topics and update the tables), and their events carry the
counts. Cheap at parse time: building them touches neither the file system nor a connection.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from spot_operators.config import IngestConfig
from spot_operators.ledger import ledger_path
from spot_operators.triggers.collector import CollectorFolderWatchTrigger


def topic_asset(config: IngestConfig, topic: str) -> Asset:
    """A Kafka topic: collect DAGs announce it, the load DAG of its type runs on it."""
    return Asset(uri=f"kafka://{config.kafka.bootstrap_servers}/{topic}", name=f"spot_topic_{topic}")


def collector_asset(config: IngestConfig, pipeline_name: str) -> Asset:
    """A pipeline's collector folder, watched from the triggerer: an event per batch of new files.

    The watcher only runs while the collect DAG is unpaused (Airflow runs the watchers of assets
    that schedule an active DAG).
    """
    pipeline = config.pipelines[pipeline_name]
    folder = pipeline.collector_path.resolve()
    trigger = CollectorFolderWatchTrigger(
        pipeline=pipeline_name,
        collector_path=str(folder),
        patterns=list(pipeline.supported_files or []),
        ledger_path=str(ledger_path(pipeline.local_staging)),
        recursive=pipeline.recursive,
        poll_interval=float(config.ingestion_interval),
        stable_seconds=pipeline.stable_seconds,
        max_attempts=pipeline.max_attempts,
    )
    return Asset(
        uri=f"file://{folder}",
        name=f"spot_collector_{pipeline_name}",
        group="collector",
        watchers=[AssetWatcher(name=f"spot_collector_{pipeline_name}_watcher", trigger=trigger)],
    )


def table_asset(config: IngestConfig, table: str) -> Asset:
    """A Hive table of ``dbname`` (flow, dns, proxy or quarantine), named as ``<db>.<table>``."""
    return Asset(
        uri=f"hive://{config.load.hive_server}/{config.dbname}/{table}",
        name=f"{config.dbname}.{table}",
        group="table",
    )
