"""Waits for ready collector files without holding a worker slot (defers to CollectorFilesTrigger)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from spot_operators.config import load_ingest_config
from spot_operators.ledger import FileLedger, ledger_path, settled_keys
from spot_operators.triggers.collector import CollectorFilesTrigger

WATCHER_RUN_TYPES = frozenset({"asset_triggered"})


def watcher_run_wait(max_wait: float, stable_seconds: float, poll_interval: float) -> float:
    """How long a run started by the folder watcher waits: its files were ready when it fired.

    ``stable_seconds`` plus three polls covers a file the trigger saw settle; a run that finds
    nothing (another run took the files) then ends soon instead of holding the DAG's only active
    run for ``max_wait_seconds``.
    """
    return min(max_wait, stable_seconds + 3 * poll_interval)


class CollectorFilesSensor(BaseOperator):
    """Return the ready files of a pipeline's collector directory, or skip the run after a wait.

    Files already ingested (ledger state done) are excluded, so a pipeline with ``post_ingest: keep``
    does not see its originals again. A file that failed ``max_attempts`` times is left alone until
    an operator resets it.
    """

    template_fields: Sequence[str] = ("max_wait_seconds", "stable_seconds")

    def __init__(
        self,
        *,
        pipeline: str,
        max_wait_seconds: float | str | None = None,
        stable_seconds: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.max_wait_seconds = max_wait_seconds
        self.stable_seconds = stable_seconds

    def execute(self, context: Context) -> Any:
        config = load_ingest_config()
        pipeline = config.pipelines[self.pipeline]
        pipeline.local_staging.mkdir(parents=True, exist_ok=True)
        exclude = settled_keys(
            FileLedger(ledger_path(pipeline.local_staging)), self.pipeline, pipeline.max_attempts
        )
        max_wait = (
            float(self.max_wait_seconds)
            if self.max_wait_seconds not in (None, "")
            else pipeline.max_wait_seconds
        )
        stable = (
            float(self.stable_seconds) if self.stable_seconds not in (None, "") else pipeline.stable_seconds
        )
        dag_run = context.get("dag_run")
        if str(getattr(dag_run, "run_type", "")) in WATCHER_RUN_TYPES:
            max_wait = watcher_run_wait(max_wait, stable, config.ingestion_interval)
        self.log.info(
            "waiting up to %ss for files in %s (stable for %ss; %d already ingested or given up)",
            max_wait,
            pipeline.collector_path,
            stable,
            len(exclude),
        )
        trigger = CollectorFilesTrigger(
            pipeline=self.pipeline,
            collector_path=str(pipeline.collector_path),
            patterns=list(pipeline.supported_files or []),
            recursive=pipeline.recursive,
            poll_interval=float(config.ingestion_interval),
            stable_seconds=stable,
            max_wait_seconds=max_wait,
            exclude=exclude,
        )
        # Files that are ready already (a watcher run, a backlog) are returned without deferring: no
        # triggerer round trip, and no trigger firing seconds after the deferral, which Airflow's
        # scheduler can race with the worker's exit event and fail the task (apache/airflow#72716).
        ready = trigger.ready_now()
        if ready:
            return self.execute_complete(context, ready)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=max_wait + 300))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        status = event.get("status")
        if status == "timeout":
            raise AirflowSkipException(
                f"no ready file in {event.get('collector_path')} after {event.get('waited_seconds')}s"
            )
        if status != "ready":
            raise AirflowException(f"watching {event.get('collector_path')} failed: {event.get('message')}")
        files = list(event["files"])
        self.log.info("%d ready files: %s", len(files), ", ".join(str(f["path"]) for f in files[:20]))
        return files
