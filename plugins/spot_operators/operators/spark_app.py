"""Submit a Spark application and wait for it in the triggerer, not in a worker slot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from spot_operators.hooks.spark_app import (
    LaunchedApp,
    LocalSparkLauncher,
    SparkEndpoint,
    StandaloneRestClient,
    YarnRmClient,
    default_run_root,
    kill_local,
    read_local_status,
    spark_endpoint,
)
from spot_operators.layout import name_component
from spot_operators.spark_apps import LOG_TAIL_LINES, build_spark_submit_args, standalone_create_request
from spot_operators.triggers.spark_app import SparkApplicationTrigger

RESULT_PLACEHOLDER = "{result_file}"


class SparkApplicationOperator(BaseOperator):
    """Run ``application`` with spark-submit (or the standalone REST gateway) and defer until it ends.

    The backend comes from the Spark connection ``conn_id`` (see :mod:`spot_operators.hooks.spark_app`):
    local launcher for ``local[*]`` and client mode, REST for standalone cluster mode, spark-submit plus
    the ResourceManager for YARN cluster mode. Output, exit code and driver log live in a run folder
    ``<run_dir_root>/<dag>/<run>/<task>-<try>`` (default root ``$AIRFLOW_HOME/spark_apps``).

    Returns ``{"status": "success", "mode", "app_id", "submission_id", "run_dir", "waited_seconds",
    "triggerer_pid", "result"}``, where ``result`` is the JSON the application wrote to
    ``result_file`` (None without one). A failed, killed or timed-out application fails the task with
    the driver's error and the last ``log_tail_lines`` lines of its log.

    :param application: the .py file or jar (templated).
    :param application_args: its arguments (templated); an argument ``{result_file}`` is replaced by the
        resolved ``result_file`` path.
    :param conf: Spark properties (templated). :param name: application name (templated; default
        ``<dag>.<task>``).
    :param jars: jar paths; None (default) = ``spot_operators.spark_jars.connector_jars()``, read at
        execute time; ``[]`` = none.
    :param result_file: a local JSON file the application writes (relative: inside the run folder).
    :param main_class: JVM main class (jars); Python applications need none.
    :param app_timeout: seconds the application may run before the trigger kills it (None: no limit).
    """

    template_fields: Sequence[str] = (
        "application",
        "application_args",
        "conf",
        "name",
        "result_file",
        "env_vars",
    )

    def __init__(
        self,
        *,
        application: str,
        application_args: list[Any] | None = None,
        conf: dict[str, Any] | None = None,
        name: str | None = None,
        conn_id: str = "spot_spark",
        jars: list[str] | None = None,
        py_files: list[str] | None = None,
        driver_memory: str | None = "1g",
        env_vars: dict[str, str] | None = None,
        main_class: str | None = None,
        result_file: str | None = None,
        run_dir_root: str | None = None,
        poll_interval: float = 5.0,
        app_timeout: float | None = 24 * 3600.0,
        log_tail_lines: int = LOG_TAIL_LINES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application = application
        self.application_args = application_args
        self.conf = conf
        self.name = name
        self.conn_id = conn_id
        self.jars = jars
        self.py_files = py_files
        self.driver_memory = driver_memory
        self.env_vars = env_vars
        self.main_class = main_class
        self.result_file = result_file
        self.run_dir_root = run_dir_root
        self.poll_interval = poll_interval
        self.app_timeout = app_timeout
        self.log_tail_lines = log_tail_lines
        self._launched: LaunchedApp | None = None
        self._endpoint: SparkEndpoint | None = None
        self._submission_id: str | None = None

    # --- helpers --------------------------------------------------------------------------------

    def run_dir(self, context: Context) -> Path:
        """``<root>/<dag>/<run>/<task>[_<map index>]-<try>``: one folder per attempt, never reused."""
        ti = context["ti"]
        task = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        root = Path(self.run_dir_root).expanduser() if self.run_dir_root else default_run_root()
        return root / name_component(ti.dag_id) / name_component(ti.run_id) / f"{task}-{ti.try_number}"

    def result_path(self, run_dir: str | Path) -> Path | None:
        if not self.result_file:
            return None
        path = Path(self.result_file).expanduser()
        return path if path.is_absolute() else Path(run_dir) / path

    def _jars(self) -> list[str]:
        if self.jars is not None:
            return list(self.jars)
        from spot_operators.spark_jars import connector_jars

        return connector_jars()

    def _app_name(self) -> str:
        return self.name or f"{self.dag_id}.{self.task_id}"

    # --- execution ------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        endpoint = spark_endpoint(self.conn_id)
        self._endpoint = endpoint
        run_dir = self.run_dir(context)
        run_dir.mkdir(parents=True, exist_ok=True)
        result = self.result_path(run_dir)
        if result is not None:
            result.unlink(missing_ok=True)  # never report an earlier attempt's result
        args = [
            str(a).replace(RESULT_PLACEHOLDER, str(result)) if result is not None else str(a)
            for a in (self.application_args or [])
        ]
        name = self._app_name()
        jars = self._jars()
        common: dict[str, Any] = {
            "name": name,
            "poll_interval": self.poll_interval,
            "timeout": self.app_timeout,
            "log_tail_lines": self.log_tail_lines,
            "verify": endpoint.verify,
        }
        if endpoint.mode == "standalone":
            trigger = self._submit_standalone(endpoint, args, jars, common)
        else:
            argv = build_spark_submit_args(
                application=self.application,
                master=endpoint.master,
                deploy_mode=endpoint.deploy_mode,
                name=name,
                conf=self.conf,
                jars=jars,
                py_files=self.py_files,
                driver_memory=self.driver_memory,
                application_args=args,
                spark_binary=endpoint.spark_binary,
                queue=endpoint.queue,
            )
            (run_dir / "command.json").write_text(json.dumps(argv, indent=1))
            self._launched = LocalSparkLauncher().launch(run_dir, argv, env=self.env_vars)
            self.log.info("started %s (supervisor pid %s) in %s", argv, self._launched.pid, run_dir)
            trigger = SparkApplicationTrigger(
                mode=endpoint.mode,
                run_dir=str(run_dir),
                pid=self._launched.pid,
                pgid=self._launched.pgid,
                pid_start_time=self._launched.start_time,
                yarn_rm_url=endpoint.yarn_rm_url,
                yarn_user=endpoint.yarn_user,
                **common,
            )
        self.log.info("deferring to the triggerer until Spark application %s ends", name)
        self.defer(trigger=trigger, method_name="execute_complete")

    def _submit_standalone(
        self, endpoint: SparkEndpoint, args: list[str], jars: list[str], common: dict[str, Any]
    ) -> SparkApplicationTrigger:
        assert endpoint.rest_url
        properties = {
            "spark.master": endpoint.master,
            "spark.app.name": common["name"],
            "spark.submit.deployMode": "cluster",
            **({"spark.jars": ",".join(jars)} if jars else {}),
            **({"spark.driver.memory": self.driver_memory} if self.driver_memory else {}),
            **{str(k): str(v) for k, v in (self.conf or {}).items()},
        }
        if self.application.endswith(".py"):
            # How spark-submit runs Python drivers: PythonRunner <file> <py-files> <args...>.
            main_class = "org.apache.spark.deploy.PythonRunner"
            app_args = [self.application, ",".join(self.py_files or []), *args]
        else:
            if not self.main_class:
                raise AirflowException("main_class is required to submit a jar to a standalone cluster")
            main_class, app_args = self.main_class, args
        try:
            version = metadata.version("pyspark")
        except metadata.PackageNotFoundError:
            version = "4.0.0"
        request = standalone_create_request(
            app_resource=self.application,
            main_class=main_class,
            app_args=app_args,
            spark_properties=properties,
            spark_version=version,
            environment=self.env_vars,
        )
        self._submission_id = StandaloneRestClient(endpoint.rest_url, verify=endpoint.verify).create(request)
        self.log.info("submitted %s to %s as %s", common["name"], endpoint.rest_url, self._submission_id)
        return SparkApplicationTrigger(
            mode="standalone", submission_id=self._submission_id, rest_url=endpoint.rest_url, **common
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume on a worker with the trigger's event: return the outcome or fail with the driver's error."""
        status = event.get("status")
        name = event.get("name") or self._app_name()
        if status != "success":
            tail = event.get("log_tail") or "(no driver log available for this backend)"
            app_id = event.get("app_id") or event.get("submission_id")
            reason = event.get("error") or event.get("message")
            raise AirflowException(
                f"Spark application {name} {status} (state {event.get('state')}, app id {app_id}): {reason}"
                f"\n--- last lines of the driver log ({event.get('run_dir')}) ---\n{tail}"
            )
        result: Any = None
        path = self.result_path(event["run_dir"]) if event.get("run_dir") else None
        if path is not None:
            if not path.exists():
                raise AirflowException(f"Spark application {name} succeeded but wrote no result file {path}")
            try:
                result = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise AirflowException(f"result file {path} of {name} is not JSON: {exc}") from None
        self.log.info(
            "Spark application %s succeeded after %s s (triggerer pid %s)",
            name,
            event.get("waited_seconds"),
            event.get("triggerer_pid"),
        )
        return {
            "status": "success",
            "mode": event.get("mode"),
            "app_id": event.get("app_id"),
            "submission_id": event.get("submission_id"),
            "run_dir": event.get("run_dir"),
            "waited_seconds": event.get("waited_seconds"),
            "triggerer_pid": event.get("triggerer_pid"),
            "result": result,
        }

    def on_kill(self) -> None:
        """Kill the application when the task is killed before it deferred (after, the trigger does)."""
        endpoint = self._endpoint
        if self._submission_id and endpoint is not None and endpoint.rest_url:
            StandaloneRestClient(endpoint.rest_url, verify=endpoint.verify).kill(self._submission_id)
        if self._launched is not None:
            if endpoint is not None and endpoint.mode == "yarn" and endpoint.yarn_rm_url:
                app_id = read_local_status(self._launched.run_dir).app_id
                if app_id:
                    YarnRmClient(endpoint.yarn_rm_url, user=endpoint.yarn_user, verify=endpoint.verify).kill(
                        app_id
                    )
            kill_local(self._launched.run_dir)
