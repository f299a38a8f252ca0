"""Airflow glue for collecting: one mapped task instance per ready file, and the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from spot_operators.config import load_ingest_config


class CollectFileOperator(BaseOperator):
    """Dissect, store, route and publish one collector file (see :mod:`spot_operators.collect`)."""

    def __init__(
        self,
        *,
        pipeline: str,
        file: dict[str, Any] | str,
        webhdfs_conn_id: str = "spot_webhdfs",
        kafka_conn_id: str = "spot_kafka",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.file = file
        self.webhdfs_conn_id = webhdfs_conn_id
        self.kafka_conn_id = kafka_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

        from spot_operators.collect import collect_file
        from spot_operators.detection import FileSnapshot
        from spot_operators.hooks.kafka import IdempotentProducerHook
        from spot_operators.ledger import FileLedger, ledger_path

        config = load_ingest_config()
        pipeline = config.pipelines[self.pipeline]
        snapshot = FileSnapshot.from_event(self.file) if isinstance(self.file, dict) else None
        path = Path(snapshot.path if snapshot else str(self.file))
        root = pipeline.collector_path.resolve()
        if not path.resolve().is_relative_to(root):
            raise AirflowFailException(f"{path} is outside the collector directory {root} of {self.pipeline}")
        ti = context["ti"]
        owner = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
        producer_hook = IdempotentProducerHook(self.kafka_conn_id, config.kafka.max_request_size)
        result = collect_file(
            path,
            config=config,
            pipeline=pipeline,
            ledger=FileLedger(ledger_path(pipeline.local_staging)),
            owner=owner,
            hdfs_factory=WebHDFSHook(webhdfs_conn_id=self.webhdfs_conn_id).get_conn,
            producer_factory=producer_hook.get_producer,
        )
        return result.to_dict()


def summarize(files: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of a collect run, per topic; raises when some files did not make it (loud, not lost)."""
    collected = [r for r in results if r and r.get("status") == "collected"]
    summary = {
        "files_ready": len(files),
        "files_collected": len(collected),
        "files_skipped": sum(1 for r in results if r and r.get("status") == "skipped"),
        "rows": sum(r["rows"] for r in collected),
        "quarantined": sum(r["quarantined"] for r in collected),
        "bytes": sum(r["csv_bytes"] for r in collected),
        "messages": sum(r["messages"] for r in collected),
        "routes": sorted({r["route"] for r in collected}),
        "files": [Path(r["file"]).name for r in collected],
        # What the load DAG reconciles against: the publisher's own row count per file digest.
        "published": [
            {
                "file": Path(r["file"]).name,
                "digest": r["digest"],
                "rows": r["rows"],
                "topic": r.get("topic", ""),
            }
            for r in collected
        ],
    }
    answered = {r["file"] for r in results if r}
    summary["files_failed"] = sorted(str(f.get("path")) for f in files if str(f.get("path")) not in answered)
    return summary
