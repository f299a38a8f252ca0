"""The Ingest page's FastAPI app: ``/`` (HTML) and ``/api/summary`` (JSON), behind Airflow's auth.

Auth: every route depends on Airflow's own ``requires_access_dag("GET", DagAccessEntity.RUN)``, the
check of the REST API's DAG-run read endpoints. It resolves the user from the ``Authorization:
Bearer`` header or the UI's ``_token`` cookie (which the nav's iframe sends, same origin) through the
configured auth manager, so a request without a valid token gets 401 and a user who may not read DAG
runs gets 403. The HTML route sends an unauthenticated browser to the auth manager's login page instead.
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from pathlib import Path
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from spot_operators.config import load_ingest_config
from spot_operators.ingest_stats import HiveCache, HiveStats, build_summary, query_hive
from spot_operators.ui import URL_PREFIX

HIVE_CONN_ID = "spot_hiveserver2"
HIVE_TIMEOUT_ENV = "SPOT_INGEST_UI_HIVE_TIMEOUT"
HIVE_MAX_AGE_ENV = "SPOT_INGEST_UI_HIVE_MAX_AGE"
_PAGE = Path(__file__).with_name("ingest.html")

requires_dag_run_read = requires_access_dag("GET", DagAccessEntity.RUN)
"""Airflow's check for reading DAG runs; the page shows what the collect runs did."""


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _hive_hook() -> Any:
    from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook

    return HiveServer2Hook(hiveserver2_conn_id=HIVE_CONN_ID)


@cache
def _hive_cache() -> HiveCache:
    """One cache per api-server worker: Hive is asked at most every ``max_age`` seconds."""
    return HiveCache(
        lambda: query_hive(load_ingest_config(), _hive_hook), max_age=_float_env(HIVE_MAX_AGE_ENV, 30.0)
    )


def summary(hive: HiveStats) -> dict[str, Any]:
    """The JSON document, with the config read afresh (a changed pipeline shows without a restart)."""
    return build_summary(load_ingest_config(), hive=hive)


def create_app() -> FastAPI:
    """The app the plugin mounts at :data:`~spot_operators.ui.URL_PREFIX`."""
    app = FastAPI(
        title="Spot ingest",
        description="Per pipeline ingest numbers from the collect ledgers and Hive.",
        dependencies=[Depends(requires_dag_run_read)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(HTTPException)
    async def _login_redirect(request: Request, exc: HTTPException) -> Response:
        """A browser without a session is sent to log in and back, not shown a JSON 401."""
        if exc.status_code == 401 and request.url.path.rstrip("/").endswith(URL_PREFIX):
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(login, status_code=307)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/api/summary")
    async def api_summary() -> JSONResponse:
        """Ledger numbers always; Hive's within ``SPOT_INGEST_UI_HIVE_TIMEOUT`` seconds or marked down."""
        timeout = _float_env(HIVE_TIMEOUT_ENV, 10.0)
        hive = await asyncio.to_thread(_hive_cache().get, timeout)
        document = await asyncio.to_thread(summary, hive)
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    return app
