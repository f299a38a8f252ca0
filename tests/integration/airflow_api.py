"""A small client of the running Airflow api-server's REST API (v2), for integration tests."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"success", "failed"}


def all_admins() -> bool:
    """Whether the stack's simple auth manager runs without logins (every visitor is admin)."""
    return os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False").lower() == "true"


def credentials(user: str = "admin") -> tuple[str, str]:
    """A UI login: ``SPOT_AIRFLOW_USER``/``SPOT_AIRFLOW_PASSWORD``, else the stack's passwords file."""
    if user == "admin" and os.environ.get("SPOT_AIRFLOW_USER") and os.environ.get("SPOT_AIRFLOW_PASSWORD"):
        return os.environ["SPOT_AIRFLOW_USER"], os.environ["SPOT_AIRFLOW_PASSWORD"]
    path = Path(
        os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        or Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    )
    if not path.is_file():
        raise AssertionError(f"no password for {user!r}: {path} is missing (scripts/stack.sh up writes it)")
    passwords = json.loads(path.read_text())
    if user not in passwords:
        raise AssertionError(f"{path} has no password for {user!r}; users: {sorted(passwords)}")
    return user, str(passwords[user])


def base_url() -> str:
    return f"http://{os.environ.get('SPOT_BIND_HOST', '127.0.0.1')}:{os.environ['SPOT_AIRFLOW_PORT']}"


def access_token(user: str = "admin") -> str:
    """A JWT as the UI gets it: POST /auth/token with a login (GET without one in all-admins mode)."""
    if all_admins():
        response = httpx.get(f"{base_url()}/auth/token", timeout=30)
    else:
        name, password = credentials(user)
        response = httpx.post(
            f"{base_url()}/auth/token", json={"username": name, "password": password}, timeout=30
        )
    if response.status_code >= 400:
        raise AssertionError(f"login as {user!r} refused: {response.status_code} {response.text[:300]}")
    return str(response.json()["access_token"])


class AirflowApi:
    """Talks to the stack's api-server with a user's token (simple auth manager)."""

    def __init__(self, user: str = "admin") -> None:
        self.base = base_url()
        token = access_token(user)
        self.client = httpx.Client(
            base_url=f"{self.base}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id`` (new files are seen within its refresh)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get(f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} not parsed by the dag-processor within {timeout}s")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause ``dag_id`` and start a run; return its run id."""
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        response = self.client.post(
            f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """Poll a run until it succeeds or fails; raise with the task states on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL:
                return dict(run)
            if time.monotonic() > deadline:
                states = self.task_states(dag_id, run_id)
                raise AssertionError(f"{dag_id}/{run_id} still {run['state']} after {timeout}s: {states}")
            time.sleep(2)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        instances = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in instances}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        return entry["value"]
