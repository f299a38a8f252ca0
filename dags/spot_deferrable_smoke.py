"""Proves deferral works end to end: a sensor waits in the triggerer, not in a worker slot.

``wait_for_marker`` defers to :class:`~spot_operators.triggers.webhdfs.WebHdfsPathTrigger` (defined in
plugins/, where the triggerer can import it); ``write_marker_later`` creates the HDFS file it waits for
a few seconds later. The sensor's result carries the pid of the process that ran the trigger.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from spot_operators.dag_factories import smoke_dag_args
from spot_operators.layout import name_component
from spot_operators.sensors.webhdfs import WebHdfsPathSensor


@dag(
    dag_id="spot_deferrable_smoke",
    schedule=None,
    doc_md=__doc__,
    **smoke_dag_args(),
    params={"delay_seconds": 8},
)
def spot_deferrable_smoke() -> None:
    @task
    def marker_path(run_id: str | None = None) -> str:
        """One HDFS path per run (run ids hold ':' and '+', which HDFS names cannot)."""
        assert run_id
        return "/tmp/spot-deferrable-smoke/" + name_component(run_id)

    @task
    def write_marker_later(path: str, params: dict | None = None) -> None:
        """Create the marker after a pause, so the sensor has to defer first."""
        import time

        from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook

        time.sleep(int((params or {}).get("delay_seconds", 8)))
        WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn().write(path, data=b"ready", overwrite=True)

    path = marker_path()
    WebHdfsPathSensor(task_id="wait_for_marker", path=path, poll_interval=1, timeout=300)
    write_marker_later(path)


spot_deferrable_smoke()
