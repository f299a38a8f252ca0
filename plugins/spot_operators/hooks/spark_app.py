"""Clients that start, watch and kill Spark applications without holding an Airflow worker.

Three backends, picked from the Airflow Spark connection (``conn_type`` ``spark``) by
:func:`endpoint_from_connection`:

* ``local`` - the local launcher (:class:`LocalSparkLauncher`): spark-submit runs detached under
  :mod:`spot_operators.spark_supervisor`, which records output and exit code in a run folder. Used for
  ``local[*]`` masters and for any master in client mode (the driver lives in that process). The
  worker that launches and the triggerer that watches must share the run folder's file system and
  process table (one machine, as on the local stack).
* ``standalone`` - Spark standalone cluster mode through the master's REST gateway
  (:class:`StandaloneRestClient`, ``/v1/submissions/create|status|kill``).
* ``yarn`` - spark-submit ``--deploy-mode cluster`` through the local launcher; the application id is
  read from its output, then the ResourceManager REST API (:class:`YarnRmClient`) is the status and
  kill authority.

Connection fields and extras:

* ``host``: the master: ``local[2]``, ``spark://master`` (``port`` 7077 is appended) or ``yarn``.
* extra ``deploy-mode``: ``client`` (default) or ``cluster``.
* extra ``spark-binary``: the spark-submit executable (default ``spark-submit``), as in the provider.
* extra ``rest-url``: standalone REST gateway, e.g. ``http://master:6066`` (default: the master's host
  on port 6066 when ``deploy-mode`` is ``cluster``; the master needs ``spark.master.rest.enabled``).
* extra ``yarn-rm-url``: ResourceManager web address, e.g. ``http://rm:8088``; without it a YARN
  application is followed through its spark-submit process only.
* extra ``queue``: YARN queue; extra ``verify``: ``false`` to skip TLS verification.
* ``login``: sent as ``user.name`` to the ResourceManager (simple authentication).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from spot_operators import spark_supervisor
from spot_operators.spark_apps import (
    LOG_TAIL_LINES,
    SparkAppError,
    SparkAppState,
    SparkAppStatus,
    extract_driver_error,
    find_submission_id,
    find_yarn_app_id,
    parse_standalone_create,
    parse_standalone_kill,
    parse_standalone_status,
    parse_yarn_app,
    parse_yarn_kill,
    tail_lines,
    yarn_kill_body,
)
from spot_operators.spark_supervisor import KILL_FILE, LOG_FILE, STATUS_FILE, SUPERVISOR_FILE

MODES = ("local", "standalone", "yarn")
RUN_DIR_ENV = "SPOT_SPARK_APPS_DIR"
LOG_READ_BYTES = 256 * 1024


@dataclass(frozen=True)
class SparkEndpoint:
    """How to reach Spark for one connection, and which backend watches the application."""

    mode: str
    master: str
    deploy_mode: str
    spark_binary: str = "spark-submit"
    rest_url: str | None = None
    yarn_rm_url: str | None = None
    yarn_user: str | None = None
    queue: str | None = None
    verify: bool = True


def _truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).strip().lower() not in {"false", "0", "no", "off"}


def endpoint_from_connection(
    host: str | None, port: int | None, extra: Mapping[str, Any], login: str | None = None
) -> SparkEndpoint:
    """The endpoint of a Spark connection's fields (pure, so it is unit-tested without Airflow)."""
    master = (host or "").strip() or "local[*]"
    if port and master.startswith(("spark://", "mesos://", "k8s://")):
        master = f"{master}:{port}"
    deploy_mode = str(extra.get("deploy-mode") or "client").strip().lower()
    if deploy_mode not in {"client", "cluster"}:
        raise ValueError(f"deploy-mode must be client or cluster, got {deploy_mode!r}")
    rest_url = extra.get("rest-url") or None
    yarn_rm_url = extra.get("yarn-rm-url") or None
    if master.startswith("yarn"):
        mode = "yarn"
        if deploy_mode != "cluster":
            # In client mode the driver is the spark-submit process: the launcher knows everything.
            mode = "local"
    elif master.startswith("spark://") and deploy_mode == "cluster":
        mode = "standalone"
        if not rest_url:
            first = master[len("spark://") :].split(",")[0]
            rest_url = f"http://{first.rsplit(':', 1)[0]}:6066"
    else:
        mode = "local"
    return SparkEndpoint(
        mode=mode,
        master=master,
        deploy_mode=deploy_mode,
        spark_binary=str(extra.get("spark-binary") or "spark-submit"),
        rest_url=str(rest_url).rstrip("/") if rest_url else None,
        yarn_rm_url=str(yarn_rm_url).rstrip("/") if yarn_rm_url else None,
        yarn_user=login or None,
        queue=extra.get("queue") or None,
        verify=_truthy(extra.get("verify"), True),
    )


def spark_endpoint(conn_id: str) -> SparkEndpoint:
    """Read an Airflow Spark connection (see the module docstring for the extras)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return endpoint_from_connection(conn.host, conn.port, conn.extra_dejson, conn.login)


def default_run_root() -> Path:
    """``$SPOT_SPARK_APPS_DIR``, else ``$AIRFLOW_HOME/spark_apps`` (not /tmp: logs must survive)."""
    configured = os.environ.get(RUN_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    airflow_home = os.environ.get("AIRFLOW_HOME", "").strip() or str(Path.home() / "airflow")
    return Path(airflow_home).expanduser() / "spark_apps"


# --- local launcher --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchedApp:
    """A supervisor started by :class:`LocalSparkLauncher`: enough to watch or kill it from anywhere."""

    run_dir: str
    pid: int
    pgid: int
    start_time: int | None


def process_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs and is not a zombie (and, given ``start_time``, is the same process)."""
    stat_path = Path(f"/proc/{pid}/stat")
    if stat_path.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            stat = stat_path.read_text()
        except OSError:
            return False
        fields = stat[stat.rfind(")") + 2 :].split()
        if not fields or fields[0] in {"Z", "X"}:
            return False
        if start_time is not None and spark_supervisor.process_start_time(pid) != start_time:
            return False  # the pid was reused by another process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` (spark-submit, its JVM, Python workers) is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_log_lines(run_dir: Path, max_bytes: int = LOG_READ_BYTES) -> list[str]:
    """The last ``max_bytes`` of ``driver.log`` as lines (a long run's log never sits in memory)."""
    path = run_dir / LOG_FILE
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if size > max_bytes and lines else lines


class LocalSparkLauncher:
    """Start spark-submit detached (own session) under the supervisor, and find out how it went.

    The supervisor, not the caller, waits for spark-submit, so the Airflow task can defer and exit.
    """

    def __init__(self, python: str | None = None, start_timeout: float = 30.0) -> None:
        self.python = python or sys.executable
        self.start_timeout = start_timeout

    def launch(
        self, run_dir: str | Path, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> LaunchedApp:
        """Start ``argv`` (a spark-submit argument list) in ``run_dir``; return once it is supervised."""
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (SUPERVISOR_FILE, STATUS_FILE, KILL_FILE):
            (folder / stale).unlink(missing_ok=True)
        plugins_dir = str(Path(spark_supervisor.__file__).resolve().parents[1])
        child_env = {**os.environ, **dict(env or {})}
        python_path = child_env.get("PYTHONPATH", "")
        if plugins_dir not in python_path.split(os.pathsep):
            child_env["PYTHONPATH"] = os.pathsep.join(p for p in (plugins_dir, python_path) if p)
        with open(folder / "supervisor.err", "ab") as err:
            proc = subprocess.Popen(  # noqa: S603 - an argument list, no shell
                [self.python, "-m", "spot_operators.spark_supervisor", str(folder), "--", *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=child_env,
                cwd=str(folder),
                start_new_session=True,
            )
        # Reap it when it ends, so a long-lived caller (a test, the triggerer) keeps no zombie.
        threading.Thread(target=proc.wait, name=f"reap-spark-supervisor-{proc.pid}", daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while True:
            info = _read_json(folder / SUPERVISOR_FILE)
            if info is not None:
                return LaunchedApp(
                    run_dir=str(folder),
                    pid=int(info["pid"]),
                    pgid=int(info["pgid"]),
                    start_time=info.get("start_time"),
                )
            if proc.poll() is not None:
                err_text = (folder / "supervisor.err").read_text(errors="replace")[-2000:]
                raise SparkAppError(f"the Spark supervisor exited with code {proc.returncode}: {err_text}")
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise SparkAppError(f"the Spark supervisor did not start within {self.start_timeout:g}s")
            time.sleep(0.05)


def read_local_status(run_dir: str | Path, tail: int = LOG_TAIL_LINES) -> SparkAppStatus:
    """The state of a launched application from its run folder (blocking file reads: use a thread).

    status.json decides when present; otherwise a live supervisor means RUNNING, and a supervisor
    gone without status.json means it was killed hard (FAILED "supervisor died", or KILLED on request).
    """
    folder = Path(run_dir)
    lines = read_log_lines(folder)
    text = "\n".join(lines)
    common: dict[str, Any] = {
        "log_tail": tail_lines(lines, tail),
        "app_id": find_yarn_app_id(text),
        "submission_id": find_submission_id(text),
    }
    killed = (folder / KILL_FILE).exists()
    status = _read_json(folder / STATUS_FILE)
    if status is None:
        info = _read_json(folder / SUPERVISOR_FILE)
        if info is None:
            return SparkAppStatus(
                SparkAppState.UNKNOWN, message=f"no supervisor record in {folder}", **common
            )
        if process_alive(int(info["pid"]), info.get("start_time")):
            return SparkAppStatus(SparkAppState.RUNNING, message="spark-submit is running", **common)
        status = _read_json(folder / STATUS_FILE)  # it may have finished between the two reads
        if status is None:
            if killed:
                return SparkAppStatus(SparkAppState.KILLED, message="killed on request", **common)
            return SparkAppStatus(
                SparkAppState.FAILED,
                message="supervisor died without recording spark-submit's exit code",
                driver_error=extract_driver_error(lines) or "supervisor died",
                **common,
            )
    exit_code = status.get("exit_code")
    if killed:
        return SparkAppStatus(
            SparkAppState.KILLED,
            message=f"killed on request (exit code {exit_code})",
            exit_code=exit_code,
            **common,
        )
    if exit_code == 0:
        return SparkAppStatus(
            SparkAppState.SUCCEEDED, message="spark-submit exited with code 0", exit_code=0, **common
        )
    message = str(status.get("error") or f"spark-submit exited with code {exit_code}")
    return SparkAppStatus(
        SparkAppState.FAILED,
        message=message,
        driver_error=extract_driver_error(lines) or message,
        exit_code=exit_code,
        **common,
    )


def kill_local(run_dir: str | Path, grace: float = 10.0) -> bool:
    """Kill a launched application: SIGTERM to its process group, SIGKILL after ``grace`` seconds.

    Marks the run folder first, so its status reads KILLED even if the supervisor dies with it.
    Returns whether anything was still running.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        return False
    (folder / KILL_FILE).write_text(str(time.time()))
    info = _read_json(folder / SUPERVISOR_FILE)
    if info is None:
        return False
    pgid = int(info["pgid"])
    supervisor_alive = process_alive(int(info["pid"]), info.get("start_time"))
    if not supervisor_alive and not group_alive(pgid):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not group_alive(pgid):
            break
    if _read_json(folder / STATUS_FILE) is None and not process_alive(
        int(info["pid"]), info.get("start_time")
    ):
        spark_supervisor.write_json_atomically(
            folder / STATUS_FILE, {"exit_code": None, "error": "killed", "finished_at": time.time()}
        )
    return True


# --- REST clients ------------------------------------------------------------------------------------


def _json_of(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise SparkAppError(f"{what}: HTTP {response.status_code}, not JSON: {response.text[:500]}") from None


class _HttpClients:
    """The sync (worker) and async (trigger) httpx clients of one REST endpoint.

    ``transport`` lets tests put an ``httpx.MockTransport`` in place of the network.
    """

    def __init__(
        self,
        *,
        verify: bool = True,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.verify = verify
        self.timeout = timeout
        self.transport = transport

    def _client(self) -> httpx.Client:
        transport = self.transport if isinstance(self.transport, httpx.BaseTransport) else None
        return httpx.Client(timeout=self.timeout, verify=self.verify, transport=transport)

    def _async_client(self) -> httpx.AsyncClient:
        transport = self.transport if isinstance(self.transport, httpx.AsyncBaseTransport) else None
        return httpx.AsyncClient(timeout=self.timeout, verify=self.verify, transport=transport)


class StandaloneRestClient(_HttpClients):
    """Spark standalone REST gateway (``spark.master.rest.enabled``; port 6066 by default).

    Synchronous calls for the worker (submit, kill from ``on_kill``), async ones for the trigger.
    """

    def __init__(
        self,
        rest_url: str,
        *,
        verify: bool = True,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(verify=verify, timeout=timeout, transport=transport)
        self.rest_url = rest_url.rstrip("/")

    def create_url(self) -> str:
        return f"{self.rest_url}/v1/submissions/create"

    def status_url(self, submission_id: str) -> str:
        return f"{self.rest_url}/v1/submissions/status/{submission_id}"

    def kill_url(self, submission_id: str) -> str:
        return f"{self.rest_url}/v1/submissions/kill/{submission_id}"

    def create(self, request: Mapping[str, Any]) -> str:
        with self._client() as client:
            response = client.post(self.create_url(), json=dict(request))
        return parse_standalone_create(_json_of(response, "standalone create"))

    def status(self, submission_id: str) -> SparkAppStatus:
        with self._client() as client:
            response = client.get(self.status_url(submission_id))
        return parse_standalone_status(_json_of(response, "standalone status"))

    def kill(self, submission_id: str) -> bool:
        with self._client() as client:
            response = client.post(self.kill_url(submission_id))
        return parse_standalone_kill(_json_of(response, "standalone kill"))

    async def astatus(self, submission_id: str) -> SparkAppStatus:
        async with self._async_client() as client:
            response = await client.get(self.status_url(submission_id))
        return parse_standalone_status(_json_of(response, "standalone status"))

    async def akill(self, submission_id: str) -> bool:
        async with self._async_client() as client:
            response = await client.post(self.kill_url(submission_id))
        return parse_standalone_kill(_json_of(response, "standalone kill"))


class YarnRmClient(_HttpClients):
    """YARN ResourceManager REST API: application status and kill (submission is spark-submit's)."""

    def __init__(
        self,
        rm_url: str,
        *,
        user: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(verify=verify, timeout=timeout, transport=transport)
        self.rm_url = rm_url.rstrip("/")
        self.user = user

    def _params(self) -> dict[str, str]:
        return {"user.name": self.user} if self.user else {}

    def app_url(self, app_id: str) -> str:
        return f"{self.rm_url}/ws/v1/cluster/apps/{app_id}"

    def state_url(self, app_id: str) -> str:
        return f"{self.app_url(app_id)}/state"

    def status(self, app_id: str) -> SparkAppStatus:
        with self._client() as client:
            response = client.get(self.app_url(app_id), params=self._params())
        return parse_yarn_app(_json_of(response, "YARN app status"))

    def kill(self, app_id: str) -> str:
        with self._client() as client:
            response = client.put(self.state_url(app_id), json=yarn_kill_body(), params=self._params())
        return parse_yarn_kill(_json_of(response, "YARN kill"))

    async def astatus(self, app_id: str) -> SparkAppStatus:
        async with self._async_client() as client:
            response = await client.get(self.app_url(app_id), params=self._params())
        return parse_yarn_app(_json_of(response, "YARN app status"))

    async def akill(self, app_id: str) -> str:
        async with self._async_client() as client:
            response = await client.put(self.state_url(app_id), json=yarn_kill_body(), params=self._params())
        return parse_yarn_kill(_json_of(response, "YARN kill"))
