"""The Ingest page of the Airflow UI (a FastAPI app mounted by ``plugins/spot_ingest_plugin.py``).

Importing this package stays cheap (no FastAPI, no Airflow API modules): every Airflow process loads
plugins, but only the api-server serves the page, and :mod:`spot_operators.ui.lazy` builds the app
from :mod:`spot_operators.ui.app` on its first request.
"""

from __future__ import annotations

URL_PREFIX = "/spot-ingest"
"""Where the api-server mounts the app (not under Airflow's reserved /api/v2, /ui, /auth, ...)."""

NAV_ROUTE = "spot-ingest"
"""The UI route of the nav entry: the page shows at ``<base_url>/plugin/spot-ingest``."""

__all__ = ["NAV_ROUTE", "URL_PREFIX"]
