"""SparkApplicationTrigger driven in-process: serialization, local run folders, REST and YARN mocks.

Local mode runs the real supervisor (spot_operators.spark_supervisor) around small Python commands
standing in for spark-submit; REST and YARN answers come from an httpx.MockTransport serving the
recorded responses of fixtures/spark/.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from spot_operators.hooks.spark_app import (
    LaunchedApp,
    LocalSparkLauncher,
    group_alive,
    kill_local,
    read_local_status,
)
from spot_operators.spark_apps import SparkAppState
from spot_operators.spark_supervisor import STATUS_FILE, SUPERVISOR_FILE
from spot_operators.triggers.spark_app import SparkApplicationTrigger

FIXTURES = Path(__file__).parent / "fixtures" / "spark"
SUBMISSION = "driver-20260307101502-0003"
APP = "application_1772871203318_0042"
CLASSPATH = "spot_operators.triggers.spark_app.SparkApplicationTrigger"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def import_string(dotted_path: str) -> Any:
    """What the triggerer does with a stored classpath."""
    module, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def launch(run_dir: Path, code: str) -> LaunchedApp:
    """The real supervisor around ``python -c code`` (a stand-in for spark-submit)."""
    return LocalSparkLauncher().launch(run_dir, [sys.executable, "-c", code])


async def first_event(trigger: SparkApplicationTrigger, timeout: float = 30.0) -> dict[str, Any]:
    """The payload of the only event; the trigger must stop after it."""
    events = trigger.run()
    try:
        event = await asyncio.wait_for(anext(events), timeout)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(events), 5.0)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    payload = event.payload
    assert json.loads(json.dumps(payload)) == payload, "events must be JSON-safe"
    return dict(payload)


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class Recorder:
    """An httpx.MockTransport handler answering from queued fixtures and recording requests."""

    def __init__(self, routes: dict[tuple[str, str], list[Any]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes[(request.method, request.url.path)]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        status = 404 if "RemoteException" in answer else 200
        return httpx.Response(status, json=answer)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


# --- serialization ------------------------------------------------------------------------------------

ALL_MODES: dict[str, dict[str, Any]] = {
    "local": {"mode": "local", "name": "job", "run_dir": "/r/1", "pid": 11, "pgid": 11, "pid_start_time": 5},
    "yarn": {
        "mode": "yarn",
        "name": "job",
        "run_dir": "/r/2",
        "pid": 12,
        "pgid": 12,
        "app_id": APP,
        "yarn_rm_url": "http://rm:8088",
        "yarn_user": "spot",
        "verify": False,
    },
    "local-no-deadline": {"mode": "local", "name": "listener", "run_dir": "/r/3", "timeout": None},
    "standalone": {
        "mode": "standalone",
        "name": "job",
        "submission_id": SUBMISSION,
        "rest_url": "http://master:6066",
        "poll_interval": 2.5,
        "timeout": 600.0,
        "started_at": 1772878502.5,
    },
}


@pytest.mark.parametrize("mode", sorted(ALL_MODES))
def test_serialize_round_trip(mode: str) -> None:
    trigger = SparkApplicationTrigger(**ALL_MODES[mode])
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs, "kwargs must survive the metadata DB"
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    for key, value in ALL_MODES[mode].items():
        assert kwargs[key] == value
    # The deadline is absolute: a triggerer restart must not extend it.
    assert kwargs["started_at"] == trigger.started_at


def test_invalid_arguments_fail_in_the_task_not_the_triggerer() -> None:
    with pytest.raises(ValueError):
        SparkApplicationTrigger(mode="mesos", run_dir="/r")
    with pytest.raises(ValueError):
        SparkApplicationTrigger(mode="local")
    with pytest.raises(ValueError):
        SparkApplicationTrigger(mode="standalone", rest_url="http://m:6066")
    with pytest.raises(ValueError):
        SparkApplicationTrigger(mode="local", run_dir="/r", poll_interval=0)


# --- local run folders -----------------------------------------------------------------------------


def test_local_success(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    launch(run_dir, "import time\nfor i in range(60): print('line', i)\ntime.sleep(0.5)")
    trigger = SparkApplicationTrigger(mode="local", name="ok", run_dir=str(run_dir), poll_interval=0.1)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "success" and event["state"] == "SUCCEEDED"
    assert event["exit_code"] == 0 and event["error"] == ""
    tail = event["log_tail"].splitlines()
    assert len(tail) == 50 and tail[-1] == "line 59"
    assert event["triggerer_pid"] == os.getpid()
    assert event["polls"] >= 2, "the command sleeps, so the trigger must have waited"


def test_local_failure_carries_the_driver_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    launch(run_dir, "print('starting', flush=True)\nraise ValueError('driver boom 42')")
    trigger = SparkApplicationTrigger(mode="local", name="bad", run_dir=str(run_dir), poll_interval=0.1)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "failed"
    assert event["error"] == "ValueError: driver boom 42"
    assert "Traceback (most recent call last):" in event["log_tail"]
    assert event["exit_code"] == 1


def test_missing_spark_submit_fails_with_the_reason(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    LocalSparkLauncher().launch(run_dir, [str(tmp_path / "no-such-spark-submit")])
    event = asyncio.run(
        first_event(SparkApplicationTrigger(mode="local", run_dir=str(run_dir), poll_interval=0.1))
    )
    assert event["status"] == "failed" and event["exit_code"] == 127
    assert "cannot start" in event["error"]


def test_supervisor_gone_without_status_is_a_failure(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / SUPERVISOR_FILE).write_text(json.dumps({"pid": 2**22 + 7, "pgid": 2**22 + 7, "start_time": 1}))
    (run_dir / "driver.log").write_text("some output\n")
    event = asyncio.run(
        first_event(SparkApplicationTrigger(mode="local", run_dir=str(run_dir), poll_interval=0.1))
    )
    assert event["status"] == "failed"
    assert event["error"] == "supervisor died"
    assert "supervisor died" in event["message"]


def test_killed_by_someone_else_is_reported_as_killed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    app = launch(run_dir, "import time\nprint('sleeping', flush=True)\ntime.sleep(120)")

    async def scenario() -> dict[str, Any]:
        trigger = SparkApplicationTrigger(mode="local", run_dir=str(run_dir), poll_interval=0.1)
        waiting = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        assert await asyncio.to_thread(kill_local, run_dir, 5.0)
        return await waiting

    event = asyncio.run(scenario())
    assert event["status"] == "killed" and event["state"] == "KILLED"
    assert not group_alive(app.pgid)


def test_on_kill_kills_the_process_group(tmp_path: Path) -> None:
    """The triggerer cancels run() and then awaits on_kill() when a user kills the deferred task."""
    run_dir = tmp_path / "run"
    app = launch(run_dir, "import subprocess, sys, time\nsubprocess.Popen(['sleep', '300'])\ntime.sleep(300)")

    async def scenario() -> None:
        trigger = SparkApplicationTrigger(mode="local", run_dir=str(run_dir), poll_interval=0.1, kill_grace=5)
        running = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.5)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert group_alive(app.pgid), "cancelling run() alone (a triggerer restart) must not kill the app"
        await trigger.on_kill()

    asyncio.run(scenario())
    assert not group_alive(app.pgid), "the grandchild `sleep 300` must be gone too"
    status = read_local_status(run_dir)
    assert status.state is SparkAppState.KILLED
    assert (run_dir / STATUS_FILE).exists()


def test_timeout_kills_the_application(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    app = launch(run_dir, "import time\ntime.sleep(300)")
    trigger = SparkApplicationTrigger(mode="local", run_dir=str(run_dir), poll_interval=0.1, timeout=0.5)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout"
    assert "killed" in event["error"]
    assert not group_alive(app.pgid)


def test_resumed_trigger_follows_the_same_application(tmp_path: Path) -> None:
    """A trigger rebuilt from serialize() (a restarted triggerer) finds the running app and its end."""
    run_dir = tmp_path / "run"
    launch(run_dir, "import time\nprint('working', flush=True)\ntime.sleep(1.5)\nprint('done')")

    async def scenario() -> dict[str, Any]:
        first = SparkApplicationTrigger(mode="local", run_dir=str(run_dir), poll_interval=0.1)
        running = asyncio.create_task(first_event(first))
        await asyncio.sleep(0.3)
        running.cancel()  # the old triggerer goes away
        with pytest.raises(asyncio.CancelledError):
            await running
        classpath, kwargs = first.serialize()
        return await first_event(import_string(classpath)(**kwargs))

    event = asyncio.run(scenario())
    assert event["status"] == "success"
    assert event["log_tail"].splitlines()[-1] == "done"


# --- standalone REST --------------------------------------------------------------------------------


def standalone(recorder: Recorder, **overrides: Any) -> SparkApplicationTrigger:
    kwargs: dict[str, Any] = {
        "mode": "standalone",
        "name": "job",
        "submission_id": SUBMISSION,
        "rest_url": "http://master:6066",
        "poll_interval": 0.01,
        **overrides,
    }
    trigger = SparkApplicationTrigger(**kwargs)
    trigger._transport = recorder.transport()
    return trigger


STATUS_PATH = f"/v1/submissions/status/{SUBMISSION}"
KILL_PATH = f"/v1/submissions/kill/{SUBMISSION}"


def test_standalone_success() -> None:
    recorder = Recorder(
        {
            ("GET", STATUS_PATH): [
                fixture("standalone_status_submitted.json"),
                fixture("standalone_status_running.json"),
                httpx.ConnectError("master restarting"),
                fixture("standalone_status_finished.json"),
            ]
        }
    )
    event = asyncio.run(first_event(standalone(recorder)))
    assert event["status"] == "success"
    assert event["submission_id"] == SUBMISSION
    assert event["polls"] == 4, "a transient HTTP error is tolerated"


def test_standalone_failure_carries_the_driver_exception() -> None:
    recorder = Recorder({("GET", STATUS_PATH): [fixture("standalone_status_error.json")]})
    event = asyncio.run(first_event(standalone(recorder)))
    assert event["status"] == "failed" and event["state"] == "FAILED"
    assert event["error"].startswith("java.io.FileNotFoundException: /opt/spot/include/jobs/spot_listener.py")


def test_standalone_unknown_submission_gives_up() -> None:
    recorder = Recorder({("GET", STATUS_PATH): [fixture("standalone_status_not_found.json")]})
    event = asyncio.run(first_event(standalone(recorder, max_unknown_polls=3)))
    assert event["status"] == "failed"
    assert event["polls"] == 3
    assert "no status after 3 polls" in event["error"]


def test_standalone_kill() -> None:
    recorder = Recorder(
        {
            ("GET", STATUS_PATH): [fixture("standalone_status_running.json")],
            ("POST", KILL_PATH): [fixture("standalone_kill_ok.json")],
        }
    )
    trigger = standalone(recorder)
    asyncio.run(trigger.on_kill())
    assert [(r.method, r.url.path) for r in recorder.requests] == [("POST", KILL_PATH)]
    recorder.routes[("GET", STATUS_PATH)] = [fixture("standalone_status_killed.json")]
    assert asyncio.run(first_event(trigger))["status"] == "killed"


# --- YARN ------------------------------------------------------------------------------------------------

APP_PATH = f"/ws/v1/cluster/apps/{APP}"
YARN_OUTPUT = (FIXTURES / "spark_submit_yarn_cluster.log").read_text()


def yarn(recorder: Recorder, run_dir: Path, **overrides: Any) -> SparkApplicationTrigger:
    trigger = SparkApplicationTrigger(
        mode="yarn",
        name="job",
        run_dir=str(run_dir),
        yarn_rm_url="http://rm:8088",
        yarn_user="spot",
        poll_interval=0.05,
        **overrides,
    )
    trigger._transport = recorder.transport()
    return trigger


def launch_yarn_client(run_dir: Path, seconds: float = 120) -> LaunchedApp:
    """A stand-in for `spark-submit --deploy-mode cluster` on YARN: prints the report lines, then waits."""
    code = f"import sys, time\nsys.stdout.write({YARN_OUTPUT!r})\nsys.stdout.flush()\ntime.sleep({seconds})"
    app = launch(run_dir, code)
    wait_until(lambda: APP in (run_dir / "driver.log").read_text())
    return app


def test_yarn_success_follows_the_resource_manager(tmp_path: Path) -> None:
    app = launch_yarn_client(tmp_path / "run")
    recorder = Recorder(
        {
            ("GET", APP_PATH): [
                fixture("yarn_app_accepted.json"),
                fixture("yarn_app_running.json"),
                fixture("yarn_app_succeeded.json"),
            ]
        }
    )
    try:
        event = asyncio.run(first_event(yarn(recorder, tmp_path / "run")))
    finally:
        kill_local(tmp_path / "run", 2.0)
    assert event["status"] == "success" and event["app_id"] == APP
    assert "Submitted application" in event["log_tail"]
    assert all(r.url.params["user.name"] == "spot" for r in recorder.requests)
    assert not group_alive(app.pgid)


def test_yarn_failure_carries_the_diagnostics(tmp_path: Path) -> None:
    launch_yarn_client(tmp_path / "run")
    recorder = Recorder(
        {("GET", APP_PATH): [fixture("yarn_app_running.json"), fixture("yarn_app_failed.json")]}
    )
    try:
        event = asyncio.run(first_event(yarn(recorder, tmp_path / "run")))
    finally:
        kill_local(tmp_path / "run", 2.0)
    assert event["status"] == "failed"
    assert event["error"].startswith(f"Application {APP} failed 2 times due to AM Container")


def test_yarn_kill_puts_killed_state_and_stops_spark_submit(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    app = launch_yarn_client(run_dir)
    recorder = Recorder(
        {
            ("GET", APP_PATH): [fixture("yarn_app_running.json")],
            ("PUT", f"{APP_PATH}/state"): [fixture("yarn_kill_accepted.json")],
        }
    )
    trigger = yarn(recorder, run_dir, kill_grace=5)
    asyncio.run(trigger.on_kill())
    kills = [r for r in recorder.requests if r.method == "PUT"]
    assert len(kills) == 1 and json.loads(kills[0].content) == {"state": "KILLED"}
    assert not group_alive(app.pgid)
    recorder.routes[("GET", APP_PATH)] = [fixture("yarn_app_killed.json")]
    assert asyncio.run(first_event(trigger))["status"] == "killed"


def test_yarn_without_resource_manager_uses_spark_submit_exit(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code = f"import sys\nsys.stdout.write({YARN_OUTPUT!r})\nsys.exit(1)"
    launch(run_dir, code)
    trigger = SparkApplicationTrigger(mode="yarn", run_dir=str(run_dir), poll_interval=0.05)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "failed" and event["app_id"] == APP and event["exit_code"] == 1


# --- the operator's resume step ---------------------------------------------------------------------


def test_execute_complete_fails_with_the_driver_error_and_log_tail(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowException

    from spot_operators.operators.spark_app import SparkApplicationOperator

    operator = SparkApplicationOperator(task_id="spark", application="/jobs/app.py", name="job")
    event = {
        "status": "failed",
        "state": "FAILED",
        "name": "job",
        "app_id": None,
        "run_dir": str(tmp_path),
        "error": "ValueError: driver boom 42",
        "log_tail": "Traceback (most recent call last):\nValueError: driver boom 42",
    }
    with pytest.raises(AirflowException) as raised:
        operator.execute_complete({}, event)
    text = str(raised.value)
    assert "job failed" in text and "ValueError: driver boom 42" in text
    assert "Traceback (most recent call last):" in text


def test_execute_complete_returns_the_result_file(tmp_path: Path) -> None:
    from spot_operators.operators.spark_app import SparkApplicationOperator

    operator = SparkApplicationOperator(
        task_id="spark", application="/jobs/app.py", result_file="result.json"
    )
    (tmp_path / "result.json").write_text(json.dumps({"rows": 3}))
    event = {
        "status": "success",
        "mode": "local",
        "run_dir": str(tmp_path),
        "app_id": None,
        "triggerer_pid": 1,
    }
    outcome = operator.execute_complete({}, event)
    assert outcome["status"] == "success" and outcome["result"] == {"rows": 3}
    assert outcome["run_dir"] == str(tmp_path)
