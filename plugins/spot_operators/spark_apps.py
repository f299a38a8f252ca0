"""Pure logic of Spark application submission and status: no Airflow, no HTTP, no processes.

Kept apart from the hook and the trigger so every parser can be unit-tested against recorded
responses of the Spark standalone REST gateway (``/v1/submissions/...``) and the YARN ResourceManager
REST API (``/ws/v1/cluster/apps/<id>``), which do not run on the development stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

YARN_APP_ID = re.compile(r"\bapplication_\d+_\d+\b")
STANDALONE_SUBMISSION_ID = re.compile(r"\bdriver-\d+-\d+\b")
# The last line of a Python traceback ("ValueError: bad input") or a JVM exception line
# ("Exception in thread "main" java.lang.IllegalStateException: ...", "org.apache...AnalysisException: ...").
_ERROR_LINE = re.compile(
    r"^(Exception in thread \"[^\"]*\" )?([A-Za-z_][\w.$]*(Error|Exception|Exit|Interrupt)\w*)(:.*)?$"
)
LOG_TAIL_LINES = 50


class SparkAppError(RuntimeError):
    """A Spark endpoint refused a request or answered something that is not a status."""


class SparkAppState(StrEnum):
    """The one vocabulary every backend's states are mapped onto."""

    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    UNKNOWN = "UNKNOWN"


TERMINAL_STATES = frozenset({SparkAppState.SUCCEEDED, SparkAppState.FAILED, SparkAppState.KILLED})


@dataclass(frozen=True)
class SparkAppStatus:
    """Where one application stands, whichever backend (local launcher, standalone, YARN) reported it.

    :param message: the backend's own words (REST ``message``, YARN ``diagnostics``, exit code).
    :param driver_error: the driver's exception, when one could be found, for the task's error.
    :param log_tail: the last lines of the driver log (local launcher and YARN client output only).
    """

    state: SparkAppState
    message: str = ""
    driver_error: str = ""
    log_tail: list[str] = field(default_factory=list)
    app_id: str | None = None
    submission_id: str | None = None
    exit_code: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (trigger events are serialized into the metadata DB)."""
        data = asdict(self)
        data["state"] = self.state.value
        data["terminal"] = self.terminal
        return data


# --- Spark standalone REST gateway (port 6066, spark.master.rest.enabled=true) ----------------------

STANDALONE_DRIVER_STATES: dict[str, SparkAppState] = {
    "SUBMITTED": SparkAppState.SUBMITTED,
    "RUNNING": SparkAppState.RUNNING,
    "RELAUNCHING": SparkAppState.RUNNING,  # supervised driver restarting on another worker
    "FINISHED": SparkAppState.SUCCEEDED,  # the driver exited with code 0
    "FAILED": SparkAppState.FAILED,  # the driver exited non-zero
    "ERROR": SparkAppState.FAILED,  # the driver could not be launched at all
    "KILLED": SparkAppState.KILLED,
    "UNKNOWN": SparkAppState.UNKNOWN,
}


def _expect_object(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise SparkAppError(f"{what}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _check_action(payload: Mapping[str, Any], expected: str, what: str) -> None:
    action = payload.get("action")
    if action == "ErrorResponse":
        raise SparkAppError(f"{what} refused by the Spark master: {payload.get('message', '')}".strip())
    if action != expected:
        raise SparkAppError(f"{what}: expected action {expected}, got {action!r}")


def standalone_create_request(
    *,
    app_resource: str,
    main_class: str,
    app_args: Sequence[Any],
    spark_properties: Mapping[str, str],
    spark_version: str,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v1/submissions/create`` (what spark-submit's RestSubmissionClient sends)."""
    return {
        "action": "CreateSubmissionRequest",
        "appResource": app_resource,
        "mainClass": main_class,
        "appArgs": [str(a) for a in app_args],
        "clientSparkVersion": spark_version,
        "environmentVariables": {"SPARK_ENV_LOADED": "1", **dict(environment or {})},
        "sparkProperties": {str(k): str(v) for k, v in spark_properties.items()},
    }


def parse_standalone_create(payload: Any) -> str:
    """Return the submission id of a ``CreateSubmissionResponse``; raise when it was not accepted."""
    data = _expect_object(payload, "standalone create")
    _check_action(data, "CreateSubmissionResponse", "standalone create")
    submission_id = data.get("submissionId")
    if not data.get("success") or not submission_id:
        raise SparkAppError(f"standalone create failed: {data.get('message', 'no submission id')}")
    return str(submission_id)


def standalone_error_text(message: str) -> str:
    """The driver's exception out of a status ``message`` ("Exception from the cluster:\\n<trace>")."""
    text = message.strip()
    prefix = "Exception from the cluster:"
    if text.startswith(prefix):
        text = text[len(prefix) :].strip()
    return text.splitlines()[0].strip() if text else ""


def parse_standalone_status(payload: Any) -> SparkAppStatus:
    """Map a ``SubmissionStatusResponse`` onto :class:`SparkAppStatus`.

    ``success: false`` means the master does not know the submission (it may have restarted and lost
    its state): UNKNOWN, and the trigger decides how long to tolerate that.
    """
    data = _expect_object(payload, "standalone status")
    _check_action(data, "SubmissionStatusResponse", "standalone status")
    message = str(data.get("message") or "")
    submission_id = data.get("submissionId")
    if not data.get("success"):
        return SparkAppStatus(
            SparkAppState.UNKNOWN,
            message=message or "the master does not know this submission",
            submission_id=submission_id,
        )
    driver_state = str(data.get("driverState") or "UNKNOWN").upper()
    state = STANDALONE_DRIVER_STATES.get(driver_state, SparkAppState.UNKNOWN)
    error = standalone_error_text(message) if state is SparkAppState.FAILED else ""
    if state is SparkAppState.FAILED and not error:
        error = f"driver state {driver_state}"
    return SparkAppStatus(
        state,
        message=message or f"driver state {driver_state}",
        driver_error=error,
        submission_id=submission_id,
    )


def parse_standalone_kill(payload: Any) -> bool:
    """True when the master accepted the kill (``KillSubmissionResponse`` with ``success``)."""
    data = _expect_object(payload, "standalone kill")
    _check_action(data, "KillSubmissionResponse", "standalone kill")
    return bool(data.get("success"))


# --- YARN ResourceManager REST API ------------------------------------------------------------------

YARN_PENDING_STATES = frozenset({"NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED"})


def yarn_remote_exception(payload: Any) -> str | None:
    """The message of a ``{"RemoteException": {...}}`` error body, if that is what ``payload`` is."""
    if isinstance(payload, Mapping) and isinstance(payload.get("RemoteException"), Mapping):
        error = payload["RemoteException"]
        return f"{error.get('exception', 'RemoteException')}: {error.get('message', '')}".strip()
    return None


def parse_yarn_app(payload: Any) -> SparkAppStatus:
    """Map ``GET /ws/v1/cluster/apps/<id>`` (``{"app": {...}}``) onto :class:`SparkAppStatus`.

    ``state`` says whether YARN is done with the application; ``finalStatus`` says how the
    application master reported it ended (a FINISHED app may have FAILED).
    """
    remote = yarn_remote_exception(payload)
    if remote is not None:
        raise SparkAppError(f"YARN ResourceManager: {remote}")
    app = _expect_object(_expect_object(payload, "YARN app").get("app"), "YARN app.app")
    yarn_state = str(app.get("state") or "").upper()
    final_status = str(app.get("finalStatus") or "UNDEFINED").upper()
    diagnostics = str(app.get("diagnostics") or "").strip()
    app_id = app.get("id")
    if yarn_state in YARN_PENDING_STATES:
        state = SparkAppState.SUBMITTED
    elif yarn_state == "RUNNING":
        state = SparkAppState.RUNNING
    elif yarn_state == "KILLED" or (yarn_state == "FINISHED" and final_status == "KILLED"):
        state = SparkAppState.KILLED
    elif yarn_state == "FINISHED" and final_status == "SUCCEEDED":
        state = SparkAppState.SUCCEEDED
    elif yarn_state in {"FINISHED", "FAILED"}:
        state = SparkAppState.FAILED
    else:
        state = SparkAppState.UNKNOWN
    message = f"YARN state {yarn_state or '?'}, final status {final_status}"
    if diagnostics:
        message += f": {diagnostics}"
    error = ""
    if state is SparkAppState.FAILED:
        error = diagnostics.splitlines()[0] if diagnostics else f"final status {final_status}"
    return SparkAppStatus(state, message=message, driver_error=error, app_id=app_id)


def yarn_kill_body() -> dict[str, str]:
    """Body of ``PUT /ws/v1/cluster/apps/<id>/state``."""
    return {"state": "KILLED"}


def parse_yarn_kill(payload: Any) -> str:
    """The ``state`` the RM answered to a kill (``RUNNING`` while killing, then ``KILLED``)."""
    remote = yarn_remote_exception(payload)
    if remote is not None:
        raise SparkAppError(f"YARN ResourceManager refused the kill: {remote}")
    return str(_expect_object(payload, "YARN kill").get("state") or "")


# --- spark-submit output -------------------------------------------------------------------------------


def find_yarn_app_id(text: str) -> str | None:
    """The YARN application id spark-submit printed ("Submitted application application_..._0001")."""
    found = YARN_APP_ID.search(text)
    return found.group(0) if found else None


def find_submission_id(text: str) -> str | None:
    """The standalone driver id spark-submit printed ("... submitted as driver-20250101120000-0000")."""
    found = STANDALONE_SUBMISSION_ID.search(text)
    return found.group(0) if found else None


def tail_lines(lines: Iterable[str], count: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``count`` lines, without trailing newlines."""
    return [line.rstrip("\r\n") for line in list(lines)[-count:]] if count > 0 else []


def extract_driver_error(lines: Sequence[str]) -> str:
    """The driver's exception from its log: the last Python or JVM exception line, else ''.

    A PySpark driver ends with a Python traceback whose last line names the error; a JVM driver with
    ``Exception in thread "main" ...``. Lines after the exception (shutdown hooks) are skipped.
    """
    for line in reversed(lines):
        stripped = line.strip()
        match = _ERROR_LINE.match(stripped)
        if match and not stripped.startswith(("at ", "WARN", "INFO")):
            return stripped
    return ""


# --- spark-submit command line -------------------------------------------------------------------------


def build_spark_submit_args(
    *,
    application: str,
    master: str,
    deploy_mode: str | None = None,
    name: str | None = None,
    conf: Mapping[str, Any] | None = None,
    jars: Sequence[str] | None = None,
    py_files: Sequence[str] | None = None,
    driver_memory: str | None = None,
    application_args: Sequence[Any] | None = None,
    spark_binary: str = "spark-submit",
    queue: str | None = None,
) -> list[str]:
    """The spark-submit argument list (never a shell string: names and arguments are data).

    :raises ValueError: a jar or py-file path holds a comma (``--jars`` and ``--py-files`` are
        comma-separated lists), or a conf key is empty.
    """
    if not application:
        raise ValueError("application is required")
    args = [spark_binary, "--master", master]
    if deploy_mode:
        args += ["--deploy-mode", deploy_mode]
    if name:
        args += ["--name", name]
    if queue:
        args += ["--queue", queue]
    for key, value in (conf or {}).items():
        if not str(key).strip():
            raise ValueError("Spark conf keys must not be empty")
        args += ["--conf", f"{key}={value}"]
    for option, paths in (("--jars", jars), ("--py-files", py_files)):
        if paths:
            with_comma = [p for p in paths if "," in p]
            if with_comma:
                raise ValueError(f"{option} paths must not contain ',': {with_comma}")
            args += [option, ",".join(paths)]
    if driver_memory:
        args += ["--driver-memory", driver_memory]
    args.append(application)
    args += [str(a) for a in (application_args or [])]
    return args
