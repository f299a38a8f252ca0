"""Unit tests of the Ingest page plugin: cheap to import, registered the Airflow 3 way, behind auth.

The auth tests run the app with Airflow's real dependency (``requires_access_dag``) and the simple
auth manager in its normal mode (not all-admins), with JWTs signed by the auth manager itself; only
the revoked-token lookup (a metadata DB query) and Hive are replaced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"


def test_importing_the_plugin_loads_neither_fastapi_nor_the_api_security_module() -> None:
    """Every Airflow process imports plugins; only the api-server needs the app."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import spot_ingest_plugin; "
        "print(json.dumps([m for m in ('fastapi', 'airflow.api_fastapi.core_api.security', "
        "'spot_operators.ui.app', 'spot_operators.ingest_stats') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(PLUGINS)], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_plugin_registers_the_app_and_a_top_level_nav_view() -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse, FastAPIAppResponse
    from airflow.plugins_manager import AirflowPlugin, is_valid_plugin

    import spot_ingest_plugin

    plugin = spot_ingest_plugin.SpotIngestPlugin
    assert issubclass(plugin, AirflowPlugin) and is_valid_plugin(plugin)
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/spot-ingest"
    assert not any(app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    FastAPIAppResponse.model_validate({**app, "app": repr(app["app"])})
    (view,) = plugin.external_views
    parsed = ExternalViewResponse.model_validate(view)
    assert (parsed.name, parsed.destination, parsed.url_route) == ("Ingest", "nav", "spot-ingest")
    assert parsed.nav_top_level is True
    assert parsed.href == "spot-ingest/", "relative to the UI's <base href>, served by the mounted app"


def test_the_app_has_the_page_and_the_summary_routes_all_guarded() -> None:
    import spot_ingest_plugin
    from spot_operators.ui.app import requires_dag_run_read

    app: Any = spot_ingest_plugin.ingest_app["app"].app
    assert {route.path for route in app.routes} >= {"/", "/api/summary"}
    assert any(d.dependency is requires_dag_run_read for d in app.router.dependencies)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app at /spot-ingest with the simple auth manager in normal (login) mode."""
    from airflow.api_fastapi import app as airflow_app
    from airflow.models.revoked_token import RevokedToken
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from spot_operators.ingest_stats import HiveStats
    from spot_operators.ui import app as ui_app

    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "unit-test-secret-" + "0123456789abcdef" * 4)
    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti, session=None: False))
    config = {
        "dbname": "spot",
        "hdfs_app_path": "/user/spot",
        "kafka": {"kafka_server": "127.0.0.1", "kafka_port": 9092},
        "pipelines": {
            "flow_t": {
                "type": "flow",
                "collector_path": str(tmp_path / "collector"),
                "local_staging": str(tmp_path / "staging"),
            }
        },
    }
    (tmp_path / "collector").mkdir()
    (tmp_path / "staging").mkdir()
    (tmp_path / "conf.json").write_text(json.dumps(config))
    monkeypatch.setenv("SPOT_INGEST_CONF", str(tmp_path / "conf.json"))

    class NoHive:
        def get(self, timeout: float) -> HiveStats:
            return HiveStats(available=False, error="not in unit tests")

    monkeypatch.setattr(ui_app, "_hive_cache", lambda: NoHive())
    previous = airflow_app._AuthManagerState.instance
    airflow_app._AuthManagerState.instance = None
    airflow_app.create_auth_manager()
    root = FastAPI()
    root.mount("/spot-ingest", ui_app.create_app())
    try:
        with TestClient(root, follow_redirects=False) as test_client:
            yield test_client
    finally:
        airflow_app._AuthManagerState.instance = previous


def _token(role: str | None) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="someone", role=role))


def test_unauthenticated_requests_get_no_data(client: Any) -> None:
    response = client.get("/spot-ingest/api/summary")
    assert response.status_code == 401
    assert "pipelines" not in response.text
    bad = client.get("/spot-ingest/api/summary", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 403 and "pipelines" not in bad.text
    forged = client.get("/spot-ingest/api/summary", cookies={"_token": "eyJhbGciOiJub25lIn0.e30."})
    assert forged.status_code in (401, 403)


def test_unauthenticated_browser_is_sent_to_the_login_page(client: Any) -> None:
    response = client.get("/spot-ingest/")
    assert response.status_code == 307
    assert response.headers["location"].startswith("/auth/login?next=")
    assert "spot-ingest" in response.headers["location"]


def test_a_user_without_a_role_is_forbidden(client: Any) -> None:
    response = client.get("/spot-ingest/api/summary", headers={"Authorization": f"Bearer {_token(None)}"})
    assert response.status_code == 403


def test_a_viewer_gets_the_page_and_the_numbers(client: Any) -> None:
    token = _token("viewer")
    page = client.get("/spot-ingest/", cookies={"_token": token})
    assert page.status_code == 200
    assert 'data-testid="pipelines-table"' in page.text and 'fetch("api/summary"' in page.text
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", ""), "no external resources"
    data = client.get("/spot-ingest/api/summary", headers={"Authorization": f"Bearer {token}"}).json()
    assert [p["name"] for p in data["pipelines"]] == ["flow_t"]
    assert data["pipelines"][0]["files_total"] == 0
    assert data["hive"]["available"] is False and data["hive"]["error"] == "not in unit tests"
