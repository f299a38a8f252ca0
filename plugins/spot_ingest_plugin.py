"""Airflow plugin: the "Ingest" page (FastAPI app at /spot-ingest, a top-level nav entry in the UI).

Airflow 3 serves plugin pages from the api-server: ``fastapi_apps`` mounts the app, and an
``external_views`` entry with ``destination="nav"`` and a ``url_route`` adds a nav button that shows
the app's page in an iframe at ``<base_url>/plugin/spot-ingest`` (same origin, so the UI's session
cookie authenticates the page's requests). The app is built lazily; see ``spot_operators.ui.lazy``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from spot_operators.ui import NAV_ROUTE, URL_PREFIX
from spot_operators.ui.lazy import LazyAsgiApp

ingest_app: dict[str, Any] = {
    "app": LazyAsgiApp("spot_operators.ui.app:create_app"),
    "url_prefix": URL_PREFIX,
    "name": "Spot ingest",
}

ingest_view: dict[str, Any] = {
    "name": "Ingest",
    # Relative to the UI's <base href> (the api base_url), so it also works behind a path prefix.
    "href": URL_PREFIX.lstrip("/") + "/",
    "url_route": NAV_ROUTE,
    "destination": "nav",
    "nav_top_level": True,
}


class SpotIngestPlugin(AirflowPlugin):
    """Registers the Ingest page's app and its nav entry."""

    name = "spot_ingest"
    fastapi_apps = [ingest_app]
    external_views = [ingest_view]
