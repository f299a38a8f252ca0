"""The deferrable Spark operator on the real stack: real spark-submit, real triggerer.

(a) SparkApplicationTrigger in-process against real spark-submit runs of a tiny PySpark job (success
with its JSON result; failure whose error text reaches the event); (b) kill through the hook leaves no
process of the run; (c) the spot_spark_app_smoke DAG under the stack's scheduler and triggerer.
Spark jobs stay tiny (local[1], 512 MB driver): the machine has two cores shared with the stack.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from spot_operators.hooks.spark_app import (
    LocalSparkLauncher,
    group_alive,
    kill_local,
    read_local_status,
    spark_endpoint,
)
from spot_operators.spark_apps import SparkAppState, build_spark_submit_args
from spot_operators.triggers.spark_app import SparkApplicationTrigger

from .airflow_api import AirflowApi
from .test_spark import SPARK_CONF

JOB = Path(__file__).resolve().parents[2] / "include" / "jobs" / "smoke_spark_app.py"
DAG_ID = "spot_spark_app_smoke"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "spark-run"


def submit(run_dir: Path, name: str, *args: str) -> Any:
    """Launch the job like the operator does: spot_spark connection, argument list, supervisor."""
    endpoint = spark_endpoint("spot_spark")
    assert endpoint.mode == "local", endpoint
    argv = build_spark_submit_args(
        application=str(JOB),
        master="local[1]",
        deploy_mode=endpoint.deploy_mode,
        name=name,
        conf={**SPARK_CONF, "spark.sql.shuffle.partitions": "1"},
        driver_memory="512m",
        application_args=list(args),
        spark_binary=endpoint.spark_binary,
    )
    return LocalSparkLauncher().launch(run_dir, argv)


def wait_for_event(run_dir: Path, timeout: float = 300) -> dict[str, Any]:
    trigger = SparkApplicationTrigger(mode="local", name="it", run_dir=str(run_dir), poll_interval=1.0)
    classpath, kwargs = trigger.serialize()
    assert SparkApplicationTrigger(**kwargs).serialize() == (classpath, kwargs)

    async def first() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await asyncio.wait_for(anext(events), timeout)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return dict(event.payload)

    return asyncio.run(first())


def run_processes(marker: str) -> list[str]:
    """Live processes whose command line mentions ``marker`` (the app name) or that run in that folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if (marker in cmdline or cwd == marker) and state != "Z":
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_trigger_follows_a_successful_spark_job(run_dir: Path) -> None:
    result = run_dir / "result.json"
    submit(run_dir, f"it-ok-{uuid.uuid4().hex[:8]}", "--mode", "ok", "--rows", "50", "--result", str(result))
    event = wait_for_event(run_dir)
    assert event["status"] == "success", event
    assert event["exit_code"] == 0 and event["polls"] >= 2
    assert "spot-spark-app-job: sum of 50 ids is 1225" in (run_dir / "driver.log").read_text()
    assert '"total": 1225' in result.read_text()


def test_trigger_reports_the_driver_error_of_a_failing_job(run_dir: Path) -> None:
    message = f"spot-it-failure-{uuid.uuid4().hex[:8]}"
    submit(run_dir, "it-fail", "--mode", "fail", "--message", message)
    event = wait_for_event(run_dir)
    assert event["status"] == "failed", event
    assert event["error"] == f"ValueError: {message}", event
    assert message in event["log_tail"] and "Traceback" in event["log_tail"]
    assert event["exit_code"] not in (0, None)


def test_kill_through_the_hook_leaves_no_process(run_dir: Path) -> None:
    name = f"it-kill-{uuid.uuid4().hex[:8]}"
    app = submit(run_dir, name, "--mode", "sleep", "--seconds", "600")
    deadline = time.monotonic() + 240
    while "spot-spark-app-job: sleeping" not in (run_dir / "driver.log").read_text(errors="replace"):
        status = read_local_status(run_dir)
        assert not status.terminal, status
        assert time.monotonic() < deadline, "the job did not reach its sleep"
        time.sleep(1)
    assert run_processes(name), "the JVM of the run should be visible before the kill"
    assert read_local_status(run_dir).state is SparkAppState.RUNNING
    assert kill_local(run_dir, grace=15.0)
    status = read_local_status(run_dir)
    assert status.state is SparkAppState.KILLED, status
    assert not group_alive(app.pgid)
    assert run_processes(name) == [], "java or python processes of the run survived the kill"
    assert run_processes(str(run_dir)) == []


def _triggerer_pgid() -> int:
    pid_file = Path(os.environ["SPOT_STACK_DIR"]) / "run" / "airflow-triggerer.pid"
    return int(pid_file.read_text().strip())


def test_operator_defers_to_the_real_triggerer() -> None:
    api = AirflowApi()
    api.wait_for_dag(DAG_ID)
    run_id = api.trigger(DAG_ID, conf={"rows": 20})
    run = api.wait_for_run(DAG_ID, run_id, timeout=600)
    states = api.task_states(DAG_ID, run_id)
    assert run["state"] == "success", states
    outcome = api.xcom(DAG_ID, run_id, "spark_app")
    assert outcome["status"] == "success" and outcome["mode"] == "local", outcome
    assert outcome["result"]["rows"] == 20 and outcome["result"]["total"] == 190, outcome
    # The trigger ran inside the stack's triggerer (its process group), so the task did defer.
    assert os.getpgid(outcome["triggerer_pid"]) == _triggerer_pgid(), outcome
    run_dir = Path(outcome["run_dir"])
    assert run_dir.is_relative_to(Path(os.environ["AIRFLOW_HOME"]) / "spark_apps"), run_dir
    assert (run_dir / "status.json").exists() and (run_dir / "driver.log").exists()
