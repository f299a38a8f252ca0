"""A deferrable HDFS path sensor: while it waits it holds no worker slot, only a trigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowException

from spot_operators.hooks.webhdfs import webhdfs_endpoint
from spot_operators.triggers.webhdfs import WebHdfsPathTrigger


class WebHdfsPathSensor(BaseSensorOperator):
    """Wait for ``path`` in HDFS; return its WebHDFS FileStatus (plus where and how long it waited).

    Unlike the provider's WebHdfsSensor this one defers to :class:`WebHdfsPathTrigger`, so a long
    wait costs the triggerer a coroutine instead of a worker slot.
    """

    template_fields: Sequence[str] = ("path",)

    def __init__(
        self,
        *,
        path: str,
        webhdfs_conn_id: str = "spot_webhdfs",
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", 3600)
        super().__init__(**kwargs)
        self.path = path
        self.webhdfs_conn_id = webhdfs_conn_id
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> Any:
        endpoint = webhdfs_endpoint(self.webhdfs_conn_id)
        trigger = WebHdfsPathTrigger(
            base_url=endpoint.base_url,
            path=self.path,
            user=endpoint.user,
            poll_interval=self.poll_interval,
            timeout=float(self.timeout),
            verify=endpoint.verify,
        )
        response = httpx.get(trigger.status_url(), timeout=30.0, verify=endpoint.verify)
        if response.status_code == 200:
            self.log.info("HDFS path %s already exists", self.path)
            return {"status": "found", "path": self.path, "file_status": response.json()["FileStatus"]}
        self.log.info("HDFS path %s not there yet; deferring to the triggerer", self.path)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume on the worker with the trigger's event; a timeout or error fails the task."""
        if event.get("status") != "found":
            raise AirflowException(
                f"waiting for HDFS path {self.path} ended with {event.get('status')}: "
                f"{event.get('message', 'not found before the timeout')}"
            )
        self.log.info(
            "HDFS path %s appeared after %s s (%s polls, triggerer pid %s)",
            self.path,
            event.get("waited_seconds"),
            event.get("polls"),
            event.get("triggerer_pid"),
        )
        return event
