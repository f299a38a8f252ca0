"""Parsers of Spark standalone REST and YARN RM responses, spark-submit output, and the argument list.

The JSON under fixtures/spark/ copies the shape of what a Spark 4 standalone master's REST gateway
(``/v1/submissions/...``) and a Hadoop 3 ResourceManager (``/ws/v1/cluster/apps/<id>``) answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spot_operators.hooks.spark_app import endpoint_from_connection
from spot_operators.spark_apps import (
    SparkAppError,
    SparkAppState,
    SparkAppStatus,
    build_spark_submit_args,
    extract_driver_error,
    find_submission_id,
    find_yarn_app_id,
    parse_standalone_create,
    parse_standalone_kill,
    parse_standalone_status,
    parse_yarn_app,
    parse_yarn_kill,
    standalone_create_request,
    standalone_error_text,
    tail_lines,
    yarn_kill_body,
)

FIXTURES = Path(__file__).parent / "fixtures" / "spark"
SUBMISSION = "driver-20260307101502-0003"
APP = "application_1772871203318_0042"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# --- standalone -----------------------------------------------------------------------------------


def test_create_response_gives_the_submission_id() -> None:
    assert parse_standalone_create(fixture("standalone_create_ok.json")) == SUBMISSION


def test_create_error_response_raises_with_the_masters_message() -> None:
    with pytest.raises(SparkAppError, match="Validation of message CreateSubmissionRequest failed"):
        parse_standalone_create(fixture("standalone_create_error.json"))


def test_create_not_accepted_raises() -> None:
    payload = {**fixture("standalone_create_ok.json"), "success": False, "message": "master is in STANDBY"}
    with pytest.raises(SparkAppError, match="STANDBY"):
        parse_standalone_create(payload)


@pytest.mark.parametrize(
    ("name", "state", "terminal"),
    [
        ("standalone_status_submitted.json", SparkAppState.SUBMITTED, False),
        ("standalone_status_running.json", SparkAppState.RUNNING, False),
        ("standalone_status_finished.json", SparkAppState.SUCCEEDED, True),
        ("standalone_status_failed.json", SparkAppState.FAILED, True),
        ("standalone_status_error.json", SparkAppState.FAILED, True),
        ("standalone_status_killed.json", SparkAppState.KILLED, True),
        ("standalone_status_not_found.json", SparkAppState.UNKNOWN, False),
    ],
)
def test_standalone_driver_states(name: str, state: SparkAppState, terminal: bool) -> None:
    status = parse_standalone_status(fixture(name))
    assert status.state is state
    assert status.terminal is terminal
    assert status.submission_id and status.submission_id.startswith("driver-")


def test_standalone_relaunching_counts_as_running() -> None:
    payload = {**fixture("standalone_status_running.json"), "driverState": "RELAUNCHING"}
    assert parse_standalone_status(payload).state is SparkAppState.RUNNING


def test_standalone_error_message_carries_the_driver_exception() -> None:
    status = parse_standalone_status(fixture("standalone_status_error.json"))
    assert status.driver_error == (
        "java.io.FileNotFoundException: /opt/spot/include/jobs/spot_listener.py (No such file or directory)"
    )
    assert "Exception from the cluster" in status.message


def test_standalone_failed_without_message_still_names_a_reason() -> None:
    assert (
        parse_standalone_status(fixture("standalone_status_failed.json")).driver_error
        == "driver state FAILED"
    )


def test_standalone_error_text() -> None:
    assert standalone_error_text("Exception from the cluster:\njava.lang.X: y\n\tat z") == "java.lang.X: y"
    assert standalone_error_text("") == ""


def test_standalone_kill() -> None:
    assert parse_standalone_kill(fixture("standalone_kill_ok.json")) is True
    with pytest.raises(SparkAppError):
        parse_standalone_kill(fixture("standalone_status_running.json"))


def test_standalone_status_rejects_other_payloads() -> None:
    with pytest.raises(SparkAppError):
        parse_standalone_status(["not", "an", "object"])
    with pytest.raises(SparkAppError, match="refused"):
        parse_standalone_status(fixture("standalone_create_error.json"))


def test_create_request_body() -> None:
    body = standalone_create_request(
        app_resource="file:/opt/jobs/app.py",
        main_class="org.apache.spark.deploy.PythonRunner",
        app_args=["file:/opt/jobs/app.py", "", "--n", 3],
        spark_properties={"spark.master": "spark://m:7077", "spark.driver.memory": "1g"},
        spark_version="4.0.1",
    )
    assert body["action"] == "CreateSubmissionRequest"
    assert body["appArgs"] == ["file:/opt/jobs/app.py", "", "--n", "3"]
    assert body["environmentVariables"] == {"SPARK_ENV_LOADED": "1"}
    assert body["sparkProperties"]["spark.master"] == "spark://m:7077"
    assert body["clientSparkVersion"] == "4.0.1"


# --- YARN -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("yarn_app_accepted.json", SparkAppState.SUBMITTED),
        ("yarn_app_running.json", SparkAppState.RUNNING),
        ("yarn_app_succeeded.json", SparkAppState.SUCCEEDED),
        ("yarn_app_failed.json", SparkAppState.FAILED),
        ("yarn_app_finished_failed.json", SparkAppState.FAILED),
        ("yarn_app_killed.json", SparkAppState.KILLED),
    ],
)
def test_yarn_states(name: str, state: SparkAppState) -> None:
    status = parse_yarn_app(fixture(name))
    assert status.state is state
    assert status.app_id == APP


def test_yarn_failure_surfaces_diagnostics() -> None:
    status = parse_yarn_app(fixture("yarn_app_failed.json"))
    assert status.driver_error.startswith(f"Application {APP} failed 2 times")
    assert "exitCode: 13" in status.message
    assert (
        "User application exited with status 1"
        in parse_yarn_app(fixture("yarn_app_finished_failed.json")).driver_error
    )


def test_yarn_finished_but_killed_final_status() -> None:
    payload = fixture("yarn_app_succeeded.json")
    payload["app"]["finalStatus"] = "KILLED"
    assert parse_yarn_app(payload).state is SparkAppState.KILLED


def test_yarn_not_found_raises_with_the_remote_exception() -> None:
    with pytest.raises(SparkAppError, match=r"NotFoundException: .*not found"):
        parse_yarn_app(fixture("yarn_app_not_found.json"))


def test_yarn_kill() -> None:
    assert yarn_kill_body() == {"state": "KILLED"}
    assert parse_yarn_kill(fixture("yarn_kill_accepted.json")) == "RUNNING"
    assert parse_yarn_kill(fixture("yarn_kill_done.json")) == "KILLED"
    with pytest.raises(SparkAppError, match="refused the kill"):
        parse_yarn_kill(fixture("yarn_app_not_found.json"))


# --- spark-submit output ------------------------------------------------------------------------------


def test_ids_from_spark_submit_output() -> None:
    assert find_yarn_app_id((FIXTURES / "spark_submit_yarn_cluster.log").read_text()) == APP
    assert find_submission_id((FIXTURES / "spark_submit_standalone_cluster.log").read_text()) == SUBMISSION
    assert find_yarn_app_id("no id here; container_1772871203318_0042_01_000001") is None
    assert find_submission_id("worker-20260307094412-10.0.3.17-38811") is None


def test_driver_error_from_a_python_traceback() -> None:
    log = [
        "Traceback (most recent call last):",
        '  File "/jobs/app.py", line 3, in <module>',
        "    raise ValueError('bad row count 7')",
        "ValueError: bad row count 7",
        "26/03/07 10:15:09 INFO SparkContext: Invoking stop() from shutdown hook",
        "26/03/07 10:15:09 INFO ShutdownHookManager: Shutdown hook called",
    ]
    assert extract_driver_error(log) == "ValueError: bad row count 7"


def test_driver_error_from_a_jvm_exception() -> None:
    log = [
        'Exception in thread "main" org.apache.spark.sql.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] t',
        "\tat org.apache.spark.sql.catalyst.Foo.bar(Foo.scala:1)",
    ]
    assert extract_driver_error(log).endswith("AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] t")
    assert extract_driver_error(["INFO all good", "done"]) == ""


def test_tail_lines() -> None:
    assert tail_lines([f"l{i}\n" for i in range(100)], 3) == ["l97", "l98", "l99"]
    assert tail_lines(["a"], 0) == []


def test_status_to_dict_is_json_safe() -> None:
    status = SparkAppStatus(SparkAppState.FAILED, message="m", driver_error="e", log_tail=["x"], exit_code=1)
    data = status.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["state"] == "FAILED" and data["terminal"] is True


# --- spark-submit argument list ----------------------------------------------------------------------


def test_spark_submit_args_are_a_list_in_order() -> None:
    args = build_spark_submit_args(
        application="/opt/jobs/app.py",
        master="yarn",
        deploy_mode="cluster",
        name="spot load; $(rm -rf /)",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": 4},
        jars=["/l/a.jar", "/l/b.jar"],
        py_files=["/l/dep.zip"],
        driver_memory="1g",
        application_args=["--topics", "a b", 3],
        queue="etl",
    )
    assert args == [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--name",
        "spot load; $(rm -rf /)",
        "--queue",
        "etl",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--jars",
        "/l/a.jar,/l/b.jar",
        "--py-files",
        "/l/dep.zip",
        "--driver-memory",
        "1g",
        "/opt/jobs/app.py",
        "--topics",
        "a b",
        "3",
    ]


def test_spark_submit_args_minimal_and_invalid() -> None:
    assert build_spark_submit_args(application="a.py", master="local[2]") == [
        "spark-submit",
        "--master",
        "local[2]",
        "a.py",
    ]
    with pytest.raises(ValueError, match="','"):
        build_spark_submit_args(application="a.py", master="local", jars=["/x,y.jar"])
    with pytest.raises(ValueError):
        build_spark_submit_args(application="", master="local")
    with pytest.raises(ValueError):
        build_spark_submit_args(application="a.py", master="local", conf={" ": "x"})


# --- connection -> endpoint ---------------------------------------------------------------------------


def test_endpoint_local() -> None:
    endpoint = endpoint_from_connection(
        "local[2]", None, {"deploy-mode": "client", "spark-binary": "spark-submit"}
    )
    assert (endpoint.mode, endpoint.master, endpoint.deploy_mode) == ("local", "local[2]", "client")


def test_endpoint_standalone_cluster_derives_the_rest_url() -> None:
    endpoint = endpoint_from_connection("spark://master", 7077, {"deploy-mode": "cluster"})
    assert endpoint.mode == "standalone"
    assert endpoint.master == "spark://master:7077"
    assert endpoint.rest_url == "http://master:6066"
    explicit = endpoint_from_connection(
        "spark://m", 7077, {"deploy-mode": "cluster", "rest-url": "https://r:1/"}
    )
    assert explicit.rest_url == "https://r:1"


def test_endpoint_standalone_client_mode_uses_the_launcher() -> None:
    assert endpoint_from_connection("spark://master", 7077, {}).mode == "local"


def test_endpoint_yarn() -> None:
    endpoint = endpoint_from_connection(
        "yarn",
        None,
        {"deploy-mode": "cluster", "yarn-rm-url": "http://rm:8088/", "queue": "etl"},
        login="spot",
    )
    assert (endpoint.mode, endpoint.yarn_rm_url, endpoint.yarn_user, endpoint.queue) == (
        "yarn",
        "http://rm:8088",
        "spot",
        "etl",
    )
    assert endpoint_from_connection("yarn", None, {"deploy-mode": "client"}).mode == "local"
    with pytest.raises(ValueError):
        endpoint_from_connection("yarn", None, {"deploy-mode": "sideways"})
