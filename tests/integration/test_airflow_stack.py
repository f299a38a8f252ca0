"""Airflow itself, against the running stack: the real scheduler, triggerer and `airflow dags test`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from .airflow_api import AirflowApi, all_admins, base_url


@pytest.fixture(scope="module")
def api() -> AirflowApi:
    return AirflowApi()


def _triggerer_pgid() -> int:
    pid_file = Path(os.environ["SPOT_STACK_DIR"]) / "run" / "airflow-triggerer.pid"
    return int(pid_file.read_text().strip())


def test_health_reports_every_component(api: AirflowApi) -> None:
    health = api.get("/monitor/health")
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health


def test_deferrable_sensor_completes_in_the_real_triggerer(api: AirflowApi) -> None:
    """The sensor defers; the stack's triggerer process (not a worker, not `dags test`) runs the trigger."""
    api.wait_for_dag("spot_deferrable_smoke")
    run_id = api.trigger("spot_deferrable_smoke", conf={})
    run = api.wait_for_run("spot_deferrable_smoke", run_id, timeout=240)
    states = api.task_states("spot_deferrable_smoke", run_id)
    assert run["state"] == "success", states
    event = api.xcom("spot_deferrable_smoke", run_id, "wait_for_marker")
    assert event["status"] == "found"
    assert event["polls"] >= 2, f"the trigger found the marker at once, so nothing was deferred: {event}"
    # The trigger ran inside the triggerer's process group (stack.sh starts each service in its own).
    assert os.getpgid(event["triggerer_pid"]) == _triggerer_pgid(), event


def test_smoke_dag_touches_all_services_with_dags_test(api: AirflowApi) -> None:
    """`airflow dags test spot_smoke`: Kafka, HDFS (with the deferrable sensor), Hive and Spark.

    The DAG must be paused: `dags test` records its run in the metadata DB, and an unpaused DAG's
    running run would also be picked up by the stack's scheduler, running every task twice.
    """
    api.wait_for_dag("spot_smoke")
    api.client.patch("/dags/spot_smoke", json={"is_paused": True}).raise_for_status()
    out = subprocess.run(
        ["airflow", "dags", "test", "spot_smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    runs = api.get("/dags/spot_smoke/dagRuns", order_by="-start_date", limit=1)["dag_runs"]
    assert runs, "airflow dags test recorded no run"
    states = api.task_states("spot_smoke", runs[0]["dag_run_id"])
    failed = [task for task, state in states.items() if state != "success"]
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs" / "dag_id=spot_smoke"
    output_tail = (out.stdout + out.stderr)[-3000:]
    detail = f"task states {states}; task logs under {logs}; output tail:\n{output_tail}"
    assert out.returncode == 0 and not failed, detail
    assert runs[0]["state"] == "success", detail
    assert states == dict.fromkeys(
        ["hdfs_roundtrip", "wait_for_marker", "hive_roundtrip", "spark_reads_hive", "kafka_roundtrip"],
        "success",
    ), states


def test_the_ui_needs_a_login_and_a_viewer_cannot_trigger(api: AirflowApi) -> None:
    """The stack's auth: no token, no data; the viewer reads DAGs and the Ingest page but triggers nothing."""
    if all_admins():
        pytest.skip("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS is set: the stack runs without logins")
    anonymous = httpx.get(f"{base_url()}/api/v2/dags", timeout=30)
    assert anonymous.status_code == 401, anonymous.text[:300]
    assert httpx.get(f"{base_url()}/spot-ingest/api/summary", timeout=30).status_code in (401, 403)
    wrong = httpx.post(
        f"{base_url()}/auth/token", json={"username": "admin", "password": "not-the-password"}, timeout=30
    )
    assert wrong.status_code in (401, 403), wrong.text[:300]

    viewer = AirflowApi(user="viewer")
    assert viewer.get("/dags/spot_smoke")["dag_id"] == "spot_smoke"
    summary = viewer.client.get(f"{base_url()}/spot-ingest/api/summary")
    assert summary.status_code == 200, summary.text[:300]
    assert {p["name"] for p in summary.json()["pipelines"]}, summary.json()
    refused = viewer.client.post("/dags/spot_smoke/dagRuns", json={"logical_date": None})
    assert refused.status_code == 403, refused.text[:300]
    # The admin's token (the module's client) may trigger: proven by the deferrable test above.
